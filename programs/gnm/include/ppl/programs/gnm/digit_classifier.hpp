#pragma once
/// The digit classifier of S-Acc's scene reader: the MNIST normalisation of
/// digit crops, the CNN, its training and its cache.
#include <cstdint>
#include <filesystem>

#include <torch/torch.h>

#include <ppl/runtime/data/dataset.hpp>

namespace ppl::programs::gnm {

/// Side of the classifier's input and of the box a digit is scaled into (the
/// MNIST convention: a 20 x 20 box centred in 28 x 28).
inline constexpr int64_t kDigitInput = 28, kDigitBox = 20;

/// The version of the classifier's architecture, training and normalisation;
/// cached weights are keyed by it, so changing any of them must change it.
inline constexpr const char* kDigitClassifierVersion = "digit-cnn-v4";

/// Normalises digit crops for the classifier: the bounding box of the pixels
/// above `threshold`, padded to a square (centred), resized to 20 x 20 and
/// centred in 28 x 28, intensities divided by the crop's maximum. `crops`
/// [B, h, w] (or [h, w]) in [0, 1]; returns [B, 1, 28, 28] (or [1, 1, 28, 28]).
/// A crop with no pixel above the threshold gives a blank image. The same
/// function normalises training digits and crops read from scenes. Throws
/// std::invalid_argument for a rank other than 2 or 3.
torch::Tensor normalise_digits(const torch::Tensor& crops, double threshold = 0.25);

/// The classifier of S-Acc: conv(1 -> 32, 3 x 3) - ReLU - max-pool 2 -
/// conv(32 -> 64, 3 x 3) - ReLU - max-pool 2 - linear(64 * 7 * 7 -> 128) -
/// ReLU - dropout(0.3, training only) - linear(128 -> 10), on normalised
/// digits [B, 1, 28, 28].
struct DigitClassifierImpl : torch::nn::Module {
  DigitClassifierImpl();
  /// Class logits [B, 10].
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(DigitClassifier);

/// A trained classifier and how it was obtained.
struct TrainedClassifier {
  DigitClassifier net{nullptr};
  double held_out_accuracy = 0;  ///< on the held-out digits, normalised as for training
  int64_t train_digits = 0, held_out_digits = 0;
  bool from_cache = false;
  std::filesystem::path cache_file;  ///< empty when not cached
  double train_seconds = 0;          ///< 0 when loaded from the cache
};

/// Trains the classifier, with its optimiser fixed here: Adam (lr 1e-3, then
/// 3e-4 for the last 5 epochs), batches of 64, 20 epochs over `train`
/// (digits [N, h, w] in [0, 1], labels 0-9), dropout 0.3 before the last
/// layer. Each epoch sees every digit once, shrunk to a random side between
/// 10 and 28 pixels (kept whole with probability 0.3: scenes show digits at
/// such sizes) and normalised; each batch is moved by a small random affine
/// map (rotation up to 12 degrees, scale 0.9-1.1, shift up to 1.4 pixels).
/// Seeded, so one machine trains the same weights every time (another CPU's
/// arithmetic may give slightly different ones); the global torch generator
/// is left as it was.
/// Reports the accuracy on `held_out` (normalised at full size). Throws
/// std::invalid_argument for empty or malformed datasets.
TrainedClassifier train_digit_classifier(const runtime::data::Dataset& train, const runtime::data::Dataset& held_out);

/// Where load_digit_classifier caches the classifier trained on `train`
/// and `held_out` digits under the cache folder `cache`.
std::filesystem::path digit_classifier_file(const std::filesystem::path& cache, int64_t train, int64_t held_out);

/// The classifier trained on the train split of the `mnist` digits and
/// tested on their test split, loaded from
/// digit_classifier_file (`<cache>/gnm_eval/<version>-<train>-<test>.pt`)
/// when that file exists and loads, else trained and written there
/// atomically. `cache` empty: never cached. Throws runtime::data::DataError when the digits are absent
/// and ppl::Error when the cache file cannot be written or read.
TrainedClassifier load_digit_classifier(const runtime::data::Dataset& train, const runtime::data::Dataset& held_out,
                                        const std::filesystem::path& cache);

}  // namespace ppl::programs::gnm
