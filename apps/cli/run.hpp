#pragma once
/// Run directories of `ppl train`, and what the other commands read from them.
///
/// A run directory holds:
///   config.json      program name, program options, training options
///   checkpoint.bin   parameters, optimiser state, step (ppl::infer checkpoints)
///   metrics.jsonl    one JSON object per logged step
///   samples.png, reconstructions.png, curve.png   written at the end of training
#include <array>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/inference.hpp>
#include <ppl/programs/program.hpp>
#include <ppl/runtime/data/scenes.hpp>

#include "run_config.hpp"

namespace ppl::cli {

/// A batch of images [N, 1, H, W] in [0, 1] and optional labels [N].
struct ImageData {
  std::string name;
  torch::Tensor images;
  torch::Tensor labels;  ///< class or object count; undefined when the set has none
};

/// Loads split "train" or "test" of the dataset `name` (see `ppl data list`),
/// at most `limit` images (0: all): of a stored set, `limit` rows spread
/// evenly over the split (stored splits may be ordered by class), of a
/// generated scene set its first `limit` scenes. Scene sets (multi-mnist,
/// mnist-4, ...) are drawn at `scene_size` x `scene_size` (0: the set's
/// default); other sets ignore it. Throws UsageError naming the dataset,
/// and, for a scene set, naming `flag` (the option that gave `limit`), the
/// limit and the split's size when the limit exceeds it.
ImageData load_image_data(const std::string& name, const std::string& split, const std::string& data_dir,
                          int64_t limit, int64_t scene_size = 0, const std::string& flag = "--n");

/// Image `index` of the split (as [1, 1, H, W] with its label), for the
/// commands that take `--index`; throws UsageError naming `command`, the
/// index and the split's size when it lies outside.
ImageData load_image_at(const std::string& command, const std::string& name, const std::string& split,
                        const std::string& data_dir, int64_t index, int64_t scene_size = 0);

/// The scenes, with their ground truth, that load_image_data draws for the
/// scene data set `name` (same digits, seeds and sizes): the first `limit`
/// (0: all scene_split_size). Throws UsageError for a data set that is not a
/// scene set, missing digits, or a limit over the split's size (naming
/// `flag`, the option that gave it).
std::vector<runtime::data::Scene> load_scenes(const std::string& name, const std::string& split,
                                              const std::string& data_dir, int64_t limit, int64_t scene_size = 0,
                                              const std::string& flag = "--n");

/// The endless training stream of the scene data set `name`: scene i of a
/// SceneGenerator over the MNIST training digits with a seed that follows
/// from the run's `seed`, drawn when asked for (no fixed pool); nullopt when
/// `name` is not a scene set. Throws UsageError for missing digits.
std::optional<runtime::data::SceneGenerator> training_scene_stream(const std::string& name, const std::string& data_dir,
                                                                   int64_t scene_size, uint64_t seed);

/// Scenes first..first+n-1 of `stream` as images [n, 1, H, W] with their
/// object counts as labels.
ImageData scene_batch(const runtime::data::SceneGenerator& stream, int64_t first, int64_t n);

/// The scenes in split "train" (20,000) or "test" (2,000; "all" reads the
/// test scenes) of every scene data set.
int64_t scene_split_size(const std::string& split);

/// Scenes' images as one batch [N, 1, H, W] (float).
torch::Tensor stack_scenes(const std::vector<runtime::data::Scene>& scenes);

/// A set of boxes per image and the colour to draw them in.
struct BoxLayer {
  const std::vector<std::vector<programs::ScoredBox>>* boxes;
  std::array<float, 3> colour;
};

/// The first (up to) 36 images [N, 1, H, W] as a PNG grid of 6 columns of
/// RGB tiles scaled up to about 128 pixels, with each layer's boxes of
/// score > 1/2 drawn over them.
void save_boxed_grid(const std::filesystem::path& path, const torch::Tensor& images, const std::vector<BoxLayer>& layers);

/// Writes images [N, 1, H, W] as one PNG grid with `columns` columns.
void save_image_grid(const std::filesystem::path& path, const torch::Tensor& images, int64_t columns);
/// Writes images x [N, 1, H, W] and their reconstructions as one PNG grid,
/// each image followed by its reconstruction, 8 to a row.
void save_reconstructions(const std::filesystem::path& path, const torch::Tensor& x, const torch::Tensor& recon);
/// Writes one image [C, H, W] (C = 1 or 3) in [0, 1] as PNG.
void save_png(const std::filesystem::path& path, const torch::Tensor& image);
/// One image [1, H, W] or [H, W] as PNG bytes encoded in base64 (for HTML).
std::string png_base64(const torch::Tensor& image);

/// The program that `config` (read from `path`) names, built with its
/// options; UsageError naming the file for an unknown program or a bad option.
std::unique_ptr<programs::ImageProgram> make_program(const nlohmann::json& config, const std::filesystem::path& path);

/// An exclusive lock on a run directory (an flock on its `train.lock`, held
/// until destruction and released by the system if the process dies), so
/// that two processes never train the same run. Throws UsageError naming
/// the directory and the process that holds it.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

/// An opened run: its program with parameters loaded.
struct Run {
  std::filesystem::path dir;
  nlohmann::json config;
  std::unique_ptr<programs::ImageProgram> program;
  TrainOptions train;
  torch::Device device{torch::kCPU};
  int64_t step = 0;  ///< the training step of the checkpoint loaded
};

/// Opens `dir` for reading (ll, sample, trace): reads config.json, builds the
/// program, loads the checkpoint and moves the program's schedules to the
/// checkpoint's step (`set_step`). Throws UsageError with what to do when
/// the directory, config or checkpoint is missing or corrupt.
Run open_run(const std::filesystem::path& dir, const std::string& device_override = {});

/// Binds the program's networks to parameters just loaded from `checkpoint`
/// (runs guide and model once on a blank image) and checks that the program
/// uses exactly the loaded parameters: UsageError naming the first missing
/// and unused ones otherwise (a checkpoint of another version or
/// configuration of the program). `loaded`: the store's names after loading.
void bind_checkpoint(programs::ImageProgram& program, const torch::Device& device,
                     const std::vector<std::string>& loaded, const std::filesystem::path& checkpoint);

/// The device named by `name` ("cpu" or "cuda"); UsageError when CUDA is not available.
torch::Device parse_device(const std::string& name);

/// The optimiser spec of a program: its learning rates by parameter prefix
/// and its gradient-norm bound.
infer::Adam adam_for(const programs::ImageProgram& program);

/// Where the image of a trace comes from, for its page and JSON.
struct TraceSource {
  std::string data;   ///< the data set's name
  std::string split;  ///< "train" or "test"
  int64_t index = 0;  ///< the image's index in the split
  uint64_t seed = 0;  ///< the seed of the guide's draw
};

/// What write_trace wrote about.
struct TraceWritten {
  double elbo = 0;     ///< log p(x, z) - log q(z | x) of the draw
  std::string shapes;  ///< the model trace's table of shapes (Trace::format_shapes)
};

/// One execution of guide and model on `image` [1, 1, H, W] (`ppl trace`):
/// a guide draw and the model replayed at it, written as ppl.trace JSON
/// (random sites, parameters by name and shape) and as a self-contained
/// HTML page (images, canvases, site tables).
TraceWritten write_trace(Run& run, const torch::Tensor& image, const TraceSource& source,
                         const std::filesystem::path& json_path, const std::filesystem::path& html_path);


}  // namespace ppl::cli
