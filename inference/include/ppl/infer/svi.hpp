#pragma once
/// Stochastic variational inference: the ELBO loop with Adam.
#include <filesystem>
#include <string>
#include <utility>

#include <ppl/core/param_store.hpp>
#include <ppl/infer/elbo.hpp>
#include <ppl/infer/optim.hpp>

namespace ppl::infer {

/// One optimisation step on the traces of a runner: evaluates `elbo`,
/// registers the parameters of the param sites (ppl::param_store()) and of
/// the baseline networks with `optimiser`, backpropagates and updates.
/// Returns the loss, -objective. Throws what Elbo::evaluate throws, and
/// NonFiniteError naming a parameter whose gradient is NaN or infinite.
double svi_step(Elbo& elbo, Optimiser& optimiser, const Runner& run);

/// `value` summed over the ranks of `group`.
double sum_over_ranks(ProcessGroup& group, double value);

/// `Svi svi(model, guide, Elbo(), Adam(1e-3)); double loss = svi.step(x);`
template <class Model, class Guide>
class Svi {
 public:
  /// Throws ArgumentError for a negative learning rate or betas outside [0, 1).
  Svi(Model model, Guide guide, Elbo elbo, Adam optimiser)
      : model_(std::move(model)), guide_(std::move(guide)), elbo_(std::move(elbo)), optimiser_(std::move(optimiser)) {}

  /// One gradient step on `model` and `guide` called with `args`; returns
  /// the loss (negative ELBO estimate, beta-weighted). The optimiser's
  /// learning-rate schedule (Adam's `decay_by`, `reduce_on_plateau`)
  /// advances with this loss, unless `schedule_by_caller()` was called.
  template <class... Args>
  double step(Args&&... args) {
    double loss = svi_step(elbo_, optimiser_, elbo_.loss_runner(model_, guide_, args...));
    ++steps_;
    if (group_ && group_->size() > 1) {
      // The ranks' mean loss; and after the first step, on which every
      // parameter has been registered, every rank holds rank 0's.
      loss = sum_over_ranks(*group_, loss) / group_->size();
      if (!synced_) optimiser_.broadcast_parameters(0);
      synced_ = true;
    }
    if (auto_schedule_ && optimiser_.scheduled()) optimiser_.step_schedule(loss);
    return loss;
  }

  /// Data-parallel training (docs/inference.md): each rank calls `step` on
  /// its own share of the data; gradients are averaged over the ranks and the
  /// baselines' statistics pooled, so every rank takes the same step, and
  /// `step` returns the ranks' mean loss. After the first step every rank
  /// holds rank 0's parameters. A model with global latents scales its data
  /// terms to the whole data set (a plate of the full size with
  /// `subsample_size` the rank's share), so that each rank's loss estimates
  /// the whole objective. Returns *this.
  Svi& distribute(std::shared_ptr<ProcessGroup> group) {
    group_ = group;
    elbo_.set_process_group(group);
    optimiser_.set_process_group(group);
    return *this;
  }
  /// The process group (null when training alone).
  const std::shared_ptr<ProcessGroup>& process_group() const { return group_; }

  /// The caller advances the schedule itself (`optimiser().step_schedule`),
  /// e.g. with a loss per data point or a validation loss; `step` no longer
  /// does. Returns *this.
  Svi& schedule_by_caller() {
    auto_schedule_ = false;
    return *this;
  }

  /// The ELBO estimate without gradient (no step taken).
  template <class... Args>
  double evaluate(Args&&... args) {
    return elbo_.estimate(model_, guide_, args...);
  }

  /// The objective, with its running baseline statistics.
  Elbo& elbo() { return elbo_; }
  /// The optimiser, with its per-parameter state.
  Optimiser& optimiser() { return optimiser_; }
  /// Steps taken (restored by `load_checkpoint`).
  int64_t steps() const { return steps_; }
  /// Sets the step counter (used by `load_checkpoint`).
  void set_steps(int64_t n) { steps_ = n; }

 private:
  Model model_;
  Guide guide_;
  Elbo elbo_;
  Optimiser optimiser_;
  int64_t steps_ = 0;
  bool auto_schedule_ = true;
  std::shared_ptr<ProcessGroup> group_;
  bool synced_ = false;
};

}  // namespace ppl::infer
