#pragma once
/// Adam with parameter groups, gradient clipping and exact checkpoints.
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include <ppl/core/archive.hpp>

namespace ppl::infer {

/// Parameters whose names start with `prefix` use learning rate `lr`.
struct ParamGroup {
  std::string prefix;
  double lr = 1e-3;
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

  /// The default learning rate; the chained setters below add the rest.
  explicit Adam(double learning_rate = 1e-3) : lr(learning_rate) {}
  Adam& group(std::string prefix, double group_lr) { groups.push_back({std::move(prefix), group_lr}); return *this; }
  Adam& baselines(double group_lr) { baseline_lr = group_lr; return *this; }
  Adam& clip(double max_norm) { clip_norm = max_norm; return *this; }
  Adam& betas(double b1, double b2) { beta1 = b1; beta2 = b2; return *this; }
};

/// `Adam` as JSON ({"lr", "beta1", "beta2", "eps", "groups": [{"prefix",
/// "lr"}], "baseline_lr" (null when unset), "clip_norm"}) and back; unknown
/// keys are a ppl::Error.
void to_json(nlohmann::json& j, const Adam& spec);
void from_json(const nlohmann::json& j, Adam& spec);

/// Adam over named tensors. Parameters join on first sight; each keeps its
/// own moments and step count, so a checkpoint resumes bit for bit.
class Optimiser {
 public:
  /// Throws ArgumentError for a negative learning rate or clip norm, or
  /// betas outside [0, 1).
  explicit Optimiser(Adam spec);

  /// The learning rate of a parameter named `name` (baseline: reached from a
  /// `.baseline` tensor). Throws ArgumentError for a negative rate.
  double learning_rate(const std::string& name, bool baseline) const;

  /// Registers a parameter (no-op when present; the tensor is refreshed).
  void add(const std::string& name, const torch::Tensor& param, bool baseline = false);
  /// Resets the gradients of every registered parameter.
  void zero_grad();
  /// Clips the gradients to `clip_norm`, checks them for NaN / infinity
  /// (NonFiniteError naming the parameter, when `check_finite`) and applies
  /// one Adam update. Returns the gradient norm before clipping (NaN when
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

 private:
  struct Slot {
    std::string name;
    torch::Tensor param, m, v;
    int64_t t = 0;
    double lr = 0;
  };
  struct Saved {
    torch::Tensor m, v;
    int64_t t = 0;
  };
  Adam spec_;
  std::vector<Slot> slots_;
  std::unordered_map<std::string, size_t> index_;
  std::unordered_map<std::string, Saved> pending_;
  std::unordered_map<std::string, torch::Tensor> pending_values_;
};

}  // namespace ppl::infer
