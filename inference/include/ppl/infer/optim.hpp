#pragma once
/// Adam (or RMSprop) with parameter groups, gradient clipping and exact
/// checkpoints.
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <ppl/core/archive.hpp>
#include <ppl/infer/distributed.hpp>

namespace ppl::infer {

/// Parameters whose names start with `prefix` use learning rate `lr`.
struct ParamGroup {
  std::string prefix;
  double lr = 1e-3;
};

/// Reduce the learning rates when a monitored loss stops improving (torch's
/// ReduceLROnPlateau in mode "min", with `Optimiser::step_schedule(loss)` as
/// its `step(metric)`): a loss counts as an improvement when it is below
/// best - threshold (absolute) or best - threshold * |best| (relative; torch
/// uses best * (1 - threshold), which asks for a rise when best < 0). After
/// more than `patience` calls in a row without one, every rate is multiplied
/// by `factor`, and `cooldown` calls follow in which nothing is counted.
struct Plateau {
  double factor = 0.1;
  int64_t patience = 10;
  double threshold = 1e-4;
  bool relative = true;
  int64_t cooldown = 0;
};

/// The Adam optimiser's specification (Kingma & Ba 2015, Algorithm 1):
///   m <- b1 m + (1 - b1) g,  v <- b2 v + (1 - b2) g^2,
///   theta <- theta - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
/// `Adam(1e-4).group("encoder", 3e-4).baselines(1e-3).clip(10.0)`.
struct Adam {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  /// Learning rates by parameter-name prefix; the longest matching prefix wins.
  std::vector<ParamGroup> groups{};
  /// Learning rate of the parameters reached from `.baseline` tensors (the
  /// NVIL baseline networks, conventionally 1e-3 while the rest use 1e-4);
  /// unset: they use the prefix groups or `lr`.
  std::optional<double> baseline_lr{};
  /// Rescale the gradient when its global L2 norm exceeds this (0: never).
  double clip_norm = 0.0;
  /// Learning-rate schedule, advanced by `Optimiser::step_schedule`: every
  /// call multiplies the rates by `decay` (Pyro's ClippedAdam `lrd`; 1: no
  /// decay), and `plateau`, when set, reduces them as described there.
  double decay = 1.0;
  std::optional<Plateau> plateau{};
  /// No schedule takes a rate below this; a rate that starts below it stays
  /// as it is (torch's `min_lr`).
  double min_lr = 0.0;
  /// The update rule. `rmsprop` is RMSprop as torch.optim.RMSprop computes it
  /// without momentum or centring: v <- alpha v + (1 - alpha) g^2,
  /// theta <- theta - lr g / (sqrt(v) + eps), no bias correction (beta1 and
  /// beta2 unused). Everything else (groups, clipping, schedules,
  /// checkpoints) is shared.
  enum class Rule { adam, rmsprop };
  Rule rule = Rule::adam;
  /// RMSprop's smoothing constant (torch's `alpha`).
  double alpha = 0.99;

  /// The default learning rate; the chained setters below add the rest.
  explicit Adam(double learning_rate = 1e-3) : lr(learning_rate) {}
  Adam& group(std::string prefix, double group_lr) { groups.push_back({std::move(prefix), group_lr}); return *this; }
  Adam& baselines(double group_lr) { baseline_lr = group_lr; return *this; }
  Adam& clip(double max_norm) { clip_norm = max_norm; return *this; }
  Adam& betas(double b1, double b2) { beta1 = b1; beta2 = b2; return *this; }
  Adam& decay_by(double per_step) { decay = per_step; return *this; }
  Adam& reduce_on_plateau(Plateau p = {}) { plateau = p; return *this; }
  Adam& floor(double lowest_lr) { min_lr = lowest_lr; return *this; }
  Adam& rmsprop(double smoothing = 0.99) { rule = Rule::rmsprop; alpha = smoothing; return *this; }
};

/// RMSprop's specification (Pyro's `RMSprop`): `Adam` with `rule` RMSprop,
/// so the same setters chain: `RMSprop(1e-4).clip(1.0)`.
inline Adam RMSprop(double learning_rate = 1e-2, double alpha = 0.99) { return Adam(learning_rate).rmsprop(alpha); }

/// `Adam` as JSON ({"lr", "beta1", "beta2", "eps", "groups": [{"prefix",
/// "lr"}], "baseline_lr" (null when unset), "clip_norm", "decay", "plateau"
/// ({"factor", "patience", "threshold", "relative", "cooldown"}, null when
/// unset), "min_lr", "rule" ("adam" or "rmsprop"; absent: "adam"), "alpha"})
/// and back; unknown keys are a ppl::Error.
void to_json(nlohmann::json& j, const Adam& spec);
void from_json(const nlohmann::json& j, Adam& spec);

/// Adam (or RMSprop, by `Adam::rule`) over named tensors. Parameters join on first sight; each keeps its
/// own moments and step count, so a checkpoint resumes bit for bit.
class Optimiser {
 public:
  /// Throws ArgumentError for a negative learning rate, clip norm or
  /// min_lr, betas outside [0, 1), a decay outside (0, 1], or a plateau
  /// factor outside (0, 1), negative patience, threshold or cooldown.
  explicit Optimiser(Adam spec);

  /// The learning rate of a parameter named `name` (baseline: reached from a
  /// `.baseline` tensor), as the schedule has left it.
  double learning_rate(const std::string& name, bool baseline) const;

  /// Data-parallel training: `update` first averages every gradient over the
  /// group's ranks (in buckets of at most 16 MB, all in flight at once), so
  /// every rank takes the same step. Every rank must hold the same parameters
  /// in the same order (ppl::Error otherwise).
  void set_process_group(std::shared_ptr<ProcessGroup> group) { group_ = std::move(group); }
  /// Copies every registered parameter of rank `root` into the other ranks'.
  void broadcast_parameters(int root = 0);

  /// Advances the learning-rate schedule by one call with the loss to
  /// monitor (e.g. the loss `Svi::step` returned, or a validation loss);
  /// returns true when the plateau rule reduced the rates. A NaN loss is an
  /// ArgumentError. Without `decay` or `plateau` nothing changes.
  bool step_schedule(double loss);
  /// True when the spec has a schedule (a decay below 1 or a plateau rule).
  bool scheduled() const { return spec_.decay != 1.0 || spec_.plateau.has_value(); }
  /// The factor the schedule has applied to every rate so far (1 at first);
  /// a rate is max(rate * scale, min_lr), or the rate itself below min_lr.
  double lr_scale() const { return scale_; }
  /// Times the plateau rule has reduced the rates.
  int64_t reductions() const { return reductions_; }

  /// Registers a parameter (no-op when present; the tensor is refreshed).
  void add(const std::string& name, const torch::Tensor& param, bool baseline = false);
  /// Resets the gradients of every registered parameter.
  void zero_grad();
  /// Clips the gradients to `clip_norm`, checks them for NaN / infinity
  /// (NonFiniteError naming the parameter, when `check_finite`) and applies
  /// one Adam (or RMSprop) update. Returns the gradient norm before clipping (NaN when
  /// neither clipping nor checking asked for it).
  double update(bool check_finite = true);

  /// Number of parameters registered.
  size_t size() const { return slots_.size(); }
  /// Names of the registered parameters, in order.
  std::vector<std::string> names() const;
  /// The specification given at construction.
  const Adam& spec() const { return spec_; }

  /// The registered parameters by name, in order.
  std::vector<std::pair<std::string, torch::Tensor>> parameters() const;
  /// A value copied into the parameter `name` when it registers (restores
  /// baseline networks that live outside the param store).
  void set_pending_value(const std::string& name, torch::Tensor value);

  /// Writes "<prefix><name>/m", "/v", "/t" for every parameter.
  void save_state(TensorArchive& archive, const std::string& prefix = "adam/") const;
  /// Reads the state back; a parameter registered later takes its saved state.
  void load_state(const TensorArchive& archive, const std::string& prefix = "adam/");
  /// Writes the schedule's state ("<prefix>scale", "best", "bad", "cooldown",
  /// "reductions").
  void save_schedule(TensorArchive& archive, const std::string& prefix = "schedule/") const;
  /// Reads it back; an archive without it leaves the schedule at its start.
  void load_schedule(const TensorArchive& archive, const std::string& prefix = "schedule/");

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, m, v;
    int64_t t = 0;
    double lr = 0;  ///< before the schedule
  };
  double scheduled(double lr) const;
  double base_rate(const std::string& name, bool baseline) const;
  struct Saved {
    torch::Tensor m, v;
    int64_t t = 0;
  };
  static void check_moments(const std::string& name, const torch::Tensor& param, const Saved& saved);
  /// Sums the gradients over the process group (see set_process_group).
  void reduce_gradients();
  std::shared_ptr<ProcessGroup> group_;
  Adam spec_;
  std::vector<Slot> slots_;
  std::unordered_map<std::string, size_t> index_;
  std::unordered_map<std::string, Saved> pending_;
  std::unordered_map<std::string, torch::Tensor> pending_values_;
  double scale_ = 1.0;
  double best_ = std::numeric_limits<double>::infinity();
  int64_t bad_ = 0, cooldown_left_ = 0, reductions_ = 0;
};

}  // namespace ppl::infer
