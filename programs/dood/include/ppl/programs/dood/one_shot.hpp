#pragma once
/// One-shot classification with DooD (seed 000, Appendix D.2.3, Eq. 18-21).
///
/// A query x_T is scored against the support x_c of each class c by
///   p(x_T | x_c) = int p(x_T, z_T, psi_c | x_c) d(z_T, psi_c)                         (Eq. 18)
///               ~= int p(x_T | z_T) p(z_T | psi_c) p(psi_c | x_c) d(z_T, psi_c)      (Eq. 19)
///               ~= sum_k pi_k max_{z_T} p(x_T | z_T) p(z_T | psi_k)                  (Eq. 20)
/// with psi_k ~ q(psi | x_c) (the guide), pi_k proportional to p(psi_k, x_c)
/// and sum_k pi_k = 1 (Eq. 21), and the query goes to the class of highest
/// score. The type psi = (o, l, s) is the guide's draw; the token
/// z = (o, l, s') differs only in the strokes, s' = A(s) + motor noise, with
/// the token model of B.4 (`sample_token_affine`, `token_log_prob` in
/// dood.hpp): A a uniform affine of the image about its centre, the motor
/// noise Normal(0, motor_sd) on every control point of a drawn stroke. The
/// max over z_T is a gradient ascent (Adam) over A and the motor noise.
/// The supplement scores one way only, p(x_T | x_c); so does this code.
///
/// Everything works in log space: `one_shot_scores` returns log p(x_T | x_c).
#include <cstdint>
#include <functional>

#include <boost/hana.hpp>
#include <torch/torch.h>

#include <ppl/programs/dood/dood.hpp>

namespace ppl::programs::dood {

/// Options of the one-shot classifier.
struct OneShotOptions {
  BOOST_HANA_DEFINE_STRUCT(OneShotOptions,
                           (int, particles),        // K, guide samples psi_k per support (Eq. 20)
                           (int, steps),            // gradient steps of the max over z_T
                           (double, learning_rate), // Adam's step size in the unconstrained token variables
                           (double, motor_sd),      // sd of the motor noise (B.4: 1e-3)
                           (int, batch));           // (query, psi_k) pairs optimised at once

  /// K = 5, 30 steps, learning rate 0.05, motor_sd 1e-3, batch 200.
  static OneShotOptions defaults();
  OneShotOptions& with_particles(int v) { particles = v; return *this; }
  OneShotOptions& with_steps(int v) { steps = v; return *this; }
  OneShotOptions& with_learning_rate(double v) { learning_rate = v; return *this; }
  OneShotOptions& with_motor_sd(double v) { motor_sd = v; return *this; }
  OneShotOptions& with_batch(int v) { batch = v; return *this; }
  /// Throws ArgumentError naming the first field out of range (particles,
  /// batch >= 1; steps >= 0; learning_rate, motor_sd > 0).
  void check() const;
};

/// Character types psi = (o, l, s) of a batch, with what Eq. 20-21 needs.
struct CharacterTypes {
  torch::Tensor on;         ///< [N, T] o_t in {0, 1}
  torch::Tensor layout;     ///< [N, T, 4] l_t
  torch::Tensor strokes;    ///< [N, T, P, 2] s_t, control points in the glimpse frame
  torch::Tensor log_joint;  ///< [N] log p(psi, x_c), the unnormalised log pi of Eq. 21
  torch::Tensor obs_scale;  ///< [1, H, W] the scale of the Laplace likelihood p(x | z)

  int64_t size() const { return on.size(0); }
  /// The types at `index` (int64 [M]), obs_scale shared.
  CharacterTypes select(const torch::Tensor& index) const;
};

/// Draws `particles` types per support image from the guide, psi_k ~ q(psi | x_c),
/// and scores each with the model replayed at it, log p(psi_k, x_c) (Eq. 20-21),
/// with the unweighted model (beta off; the program's training flag is restored).
/// supports: [C, H, W] or [C, 1, H, W], H = W = the program's image_size.
/// Returns N = C * particles types, ordered class-major (row c * K + k).
/// Throws ArgumentError naming `particles` or `supports` when out of range.
CharacterTypes sample_types(Dood& program, const torch::Tensor& supports, int particles);

/// The token variables z_T given a type: the affine A of B.4 through
/// unconstrained values (`raw` [N, 7]: shift x, y, scale x, y, rotation,
/// shear x, y; each mapped into its range by a sigmoid, 0 being the identity)
/// and the motor noise in units of motor_sd (`noise` [N, T, P, 2]).
struct TokenVariables {
  torch::Tensor raw;
  torch::Tensor noise;
  /// The identity affine and zero noise for `types`.
  static TokenVariables identity(const CharacterTypes& types);
  /// The affine A that `raw` stands for (always inside B.4's ranges).
  TokenAffine affine() const;
};

/// The token's control points s' in image coordinates [N, T, P, 2]:
/// A(glimpse_to_image(s, l)) + motor_sd * noise.
torch::Tensor token_points(const CharacterTypes& types, const TokenVariables& token, int64_t image_size,
                           double motor_sd);

/// The control points in the glimpse frame of layouts l [N, 4] of points
/// [N, P, 2] in image coordinates: the inverse of `glimpse_to_image`.
torch::Tensor image_to_glimpse(const torch::Tensor& points, const torch::Tensor& l, int64_t image_size);

/// The objective of Eq. 20's max for each pair n: log p(x_n | z_n) + log p(z_n | psi_n),
/// [N]. log p(x | z) is the model's Laplace likelihood of the canvas the
/// model draws at z = (o, l, s') (renderer parameters from (l, s') as in the
/// model); log p(z | psi) is the affine's uniform density plus the motor
/// noise's density on the strokes that are drawn. queries: [N, 1, H, W].
torch::Tensor token_objective(Dood& program, const torch::Tensor& queries, const CharacterTypes& types,
                              const TokenVariables& token, double motor_sd);

/// The max over z_T of Eq. 20 for each (query, type) pair, by `steps` Adam
/// steps on the token variables from the identity token.
struct TokenFit {
  torch::Tensor initial;  ///< [N] the objective at the identity token
  torch::Tensor best;     ///< [N] the highest objective met (>= initial)
  TokenVariables token;   ///< the token variables where `best` was met
};
TokenFit fit_tokens(Dood& program, const torch::Tensor& queries, const CharacterTypes& types,
                    const OneShotOptions& options);

/// log p(x_T | x_c) of Eq. 20 for every query and class: [Q, C] from types
/// [C * K] drawn by `sample_types` (row c * K + k): the log-sum-exp over k of
/// log pi_k + max_z [log p(x_T | z) + log p(z | psi_k)], log pi_k =
/// log_softmax_k log p(psi_k, x_c) (Eq. 21). queries: [Q, H, W] or [Q, 1, H, W].
/// `progress(done, total)` is called after each batch of pairs.
torch::Tensor score_types(Dood& program, const torch::Tensor& queries, const CharacterTypes& types,
                          const OneShotOptions& options,
                          const std::function<void(int64_t, int64_t)>& progress = {});

/// sample_types then score_types: log p(x_T | x_c), [Q, C]. Throws
/// ArgumentError naming the options field, `supports` or `queries` at fault.
torch::Tensor one_shot_scores(Dood& program, const torch::Tensor& supports, const torch::Tensor& queries,
                              const OneShotOptions& options,
                              const std::function<void(int64_t, int64_t)>& progress = {});

/// The class of highest score for each query: argmax over classes of [Q, C] scores, [Q] int64.
torch::Tensor classify(const torch::Tensor& scores);

}  // namespace ppl::programs::dood
