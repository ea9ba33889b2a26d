#pragma once
/// A batched, shuffled, seeded loader over an in-memory dataset, with a worker
/// thread that prepares the next batch while the caller uses the current one.
#include <cstdint>
#include <future>
#include <optional>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <ppl/runtime/data/dataset.hpp>

namespace ppl::runtime::data {

/// Options of a Loader (chained setters).
struct LoaderOptions {
  std::int64_t batch_size = 64;
  bool shuffle = true;
  std::uint64_t seed = 0;
  bool drop_last = false;
  LoaderOptions& with_batch_size(std::int64_t v) { batch_size = v; return *this; }
  LoaderOptions& with_shuffle(bool v) { shuffle = v; return *this; }
  LoaderOptions& with_seed(std::uint64_t v) { seed = v; return *this; }
  LoaderOptions& with_drop_last(bool v) { drop_last = v; return *this; }
};

/// LoaderOptions to JSON: {"batch_size", "shuffle", "seed", "drop_last"}.
void to_json(nlohmann::json& j, const LoaderOptions& o);
/// LoaderOptions from JSON; missing keys keep their defaults. Throws
/// nlohmann::json::exception for a wrongly typed value.
void from_json(const nlohmann::json& j, LoaderOptions& o);

/// One batch: images [B, H, W], labels [B], and the dataset indices [B].
struct Batch {
  torch::Tensor images;
  torch::Tensor labels;
  torch::Tensor indices;
};

/// The permutation of 0..n-1 used for epoch `epoch` under `seed` (Fisher-Yates
/// over a splitmix64 stream: the same on every platform).
std::vector<std::int64_t> seeded_permutation(std::int64_t n, std::uint64_t seed, std::uint64_t epoch);

/// Iterates a dataset in batches. Epoch e visits the items in
/// seeded_permutation(N, seed, e) order (file order without shuffle); the
/// sequence of batches depends only on the dataset, the options and e.
class Loader {
 public:
  /// Throws std::invalid_argument for a non-positive batch size or a dataset
  /// whose images and labels disagree in length.
  Loader(Dataset dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  /// Batches per epoch.
  std::int64_t batches_per_epoch() const;

  /// Starts epoch `epoch` (reshuffles) and begins prefetching its first batch.
  void start_epoch(std::uint64_t epoch);

  /// The next batch of the current epoch, or nullopt at its end. The first
  /// call without start_epoch starts epoch 0.
  std::optional<Batch> next();

  /// The dataset iterated.
  const Dataset& dataset() const { return dataset_; }

 private:
  Batch make_batch(std::int64_t b) const;
  void prefetch(std::int64_t b);

  Dataset dataset_;
  LoaderOptions options_;
  std::vector<std::int64_t> order_;
  std::int64_t cursor_ = 0;
  bool started_ = false;
  std::future<Batch> pending_;
};

}  // namespace ppl::runtime::data
