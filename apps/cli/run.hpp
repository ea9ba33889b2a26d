#pragma once
/// Run directories of `ppl train`, and what the other commands read from them.
///
/// A run directory holds:
///   config.json      program name, program options, training options
///   checkpoint.bin   parameters, optimiser state, step (ppl::infer checkpoints)
///   metrics.jsonl    one JSON object per logged step
///   samples.png, reconstructions.png, curve.png   written at the end of training
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/inference.hpp>
#include <ppl/programs/program.hpp>
#include <ppl/runtime/data/scenes.hpp>

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
/// default); other sets ignore it. Throws UsageError naming the dataset.
ImageData load_image_data(const std::string& name, const std::string& split, const std::string& data_dir,
                          int64_t limit, int64_t scene_size = 0);

/// Image `index` of the split (as [1, 1, H, W] with its label), for the
/// commands that take `--index`; throws UsageError naming `command`, the
/// index and the split's size when it lies outside.
ImageData load_image_at(const std::string& command, const std::string& name, const std::string& split,
                        const std::string& data_dir, int64_t index, int64_t scene_size = 0);

/// The scenes, with their ground truth, that load_image_data draws for the
/// scene data set `name` (same digits, seeds and sizes). Throws UsageError
/// for a data set that is not a scene set, or missing digits.
std::vector<runtime::data::Scene> load_scenes(const std::string& name, const std::string& split,
                                              const std::string& data_dir, int64_t limit, int64_t scene_size = 0);

/// Writes images [N, 1, H, W] as one PNG grid with `columns` columns.
void save_image_grid(const std::filesystem::path& path, const torch::Tensor& images, int64_t columns);
/// Writes images x [N, 1, H, W] and their reconstructions as one PNG grid,
/// each image followed by its reconstruction, 8 to a row.
void save_reconstructions(const std::filesystem::path& path, const torch::Tensor& x, const torch::Tensor& recon);
/// Writes one image [C, H, W] (C = 1 or 3) in [0, 1] as PNG.
void save_png(const std::filesystem::path& path, const torch::Tensor& image);
/// One image [1, H, W] or [H, W] as PNG bytes encoded in base64 (for HTML).
std::string png_base64(const torch::Tensor& image);

/// Training options of a run (stored in config.json).
struct TrainOptions {
  std::string data = "multi-mnist";
  int64_t steps = 1000;
  int64_t batch_size = 0;  ///< 0: the program's own
  int64_t checkpoint_every = 500;
  int64_t eval_every = 500;
  int64_t n_train = 0;     ///< 0: all training images
  uint64_t seed = 0;
  std::string device = "cpu";
  std::string data_dir;
  // Learning-rate schedule (infer::Adam's decay, plateau and min_lr),
  // advanced once a step with that step's loss per image.
  double lr_decay = 1.0;      ///< rates multiplied by this every step
  int64_t lr_plateau = -1;    ///< plateau patience in steps; -1: no plateau rule
  double lr_factor = 0.1;     ///< plateau reduction factor
  double lr_threshold = 0.0;  ///< improvement in nats per image the plateau rule asks for
  double min_lr = 0.0;        ///< floor of every scheduled rate
};

/// The JSON of `t` as config.json stores it under "train".
nlohmann::json train_options_to_json(const TrainOptions& t);

/// The training options stored under "train" in `config_path`, each key
/// checked for its type and range: UsageError naming the file and the key
/// ("train.steps") for a missing required key, a value of the wrong type or
/// one out of range. Keys a run of an older version lacks take their defaults.
TrainOptions train_options_from_json(const nlohmann::json& train, const std::filesystem::path& config_path);

/// Range checks of training options (steps and checkpoint interval at least
/// 1, counts at least 0, the schedule's values in range); `name(key)` says
/// in messages where the value came from, given its config key ("steps" ->
/// "--steps" for a command line). Throws UsageError.
void check_train_options(const TrainOptions& t, const std::function<std::string(std::string_view key)>& name);

/// What a checkpoint's numbers depend on, out of a run's config.json: the
/// program, its options, and the training settings that choose the data,
/// batches, draws and schedule (not steps, intervals, data folder or device).
/// `train` records it in every checkpoint.
nlohmann::json run_identity(const nlohmann::json& config);

/// UsageError when config.json (`config`, read from `config_path`) no longer
/// matches the identity recorded in `checkpoint` (edited after training):
/// names the first key that differs, with both values. Checkpoints written
/// before identities were recorded are not checked.
void check_run_identity(const nlohmann::json& config, const std::filesystem::path& config_path,
                        const std::filesystem::path& checkpoint);

/// The JSON file `path`; UsageError naming it when it is missing or is not
/// valid JSON (with the parser's position).
nlohmann::json read_json_file(const std::filesystem::path& path);

/// A run's config.json: an object with "program" (a string), "options" and
/// "train" (objects); UsageError naming the file and the key otherwise.
nlohmann::json read_config(const std::filesystem::path& path);

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


}  // namespace ppl::cli
