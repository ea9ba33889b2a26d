#pragma once
/// One-shot classification with DooD (seed 000, Appendix D.2.3, Eq. 18-21).
///
/// A query x_T is scored against the support x_c of each class c by
///   p(x_T | x_c) = int p(x_T, z_T, psi_c | x_c) d(z_T, psi_c)                         (Eq. 18)
///               ~= int p(x_T | z_T) p(z_T | psi_c) p(psi_c | x_c) d(z_T, psi_c)      (Eq. 19)
///               ~= sum_k pi_k max_{z_T} p(x_T | z_T) p(z_T | psi_k)                  (Eq. 20)
/// with psi_k ~ q(psi | x_c) (the guide), pi_k proportional to p(psi_k, x_c)
/// and sum_k pi_k = 1 (Eq. 21), and the query goes to the class of highest
/// score. The type psi = (o, l, s) is the guide's draw (with `draws` > 1 the
/// best of that many by p(psi, x_c), as the authors' code parses); the token
/// z = (o, l, s') differs only in the strokes, s' = A(s) + motor noise, with
/// the token model of B.4: A a uniform affine of the image about its centre
/// (ranges in the options), the motor noise Normal(0, motor_sd) on every
/// control point of a drawn stroke. The max over z_T is a gradient ascent
/// (Adam) over A and the motor noise. The supplement scores one way only,
/// p(x_T | x_c); so does this code.
///
/// Two protocols (docs/programs/dood.md compares them): `authors`, the search
/// of the authors' released code (12 particles, each the best of 20 guide
/// draws; 100 Adam steps at 1e-2; the motor noise's density averaged over
/// the drawn strokes; the type's renderer parameters held fixed; their affine
/// ranges), and `supplement`, the earlier reading of the supplement alone
/// (K raw guide draws; 30 steps at 0.05; the density summed over every
/// control point; renderer parameters recomputed from (l, s'); B.4's
/// ranges). `quick` is the authors' scoring with a small search, for checks.
///
/// Everything works in log space: `one_shot_scores` returns log p(x_T | x_c).
#include <cstdint>
#include <functional>
#include <string>

#include <boost/hana.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/programs/dood/dood.hpp>

namespace ppl::programs::dood {

/// A preset of the one-shot search: "authors", "supplement", "quick".
enum class OneShotProtocol { authors, supplement, quick };
/// How the motor noise's log-density of a token enters the objective:
/// "average" over the drawn strokes (each stroke's density summed over its
/// control points) or "sum" over every control point of every drawn stroke.
enum class MotorNoise { average, sum };
/// The renderer parameters (sigma, omega0, omega1) of a token: "fixed" at the
/// type's, or "recomputed" from the token's (l, s') as the model does.
enum class TokenRenderer { fixed, recomputed };

std::string to_string(OneShotProtocol p);
std::string to_string(MotorNoise m);
std::string to_string(TokenRenderer r);
/// JSON spells each enum as its string; another string throws ArgumentError
/// naming the option and the choices.
void to_json(nlohmann::json& j, OneShotProtocol p);
void from_json(const nlohmann::json& j, OneShotProtocol& p);
void to_json(nlohmann::json& j, MotorNoise m);
void from_json(const nlohmann::json& j, MotorNoise& m);
void to_json(nlohmann::json& j, TokenRenderer r);
void from_json(const nlohmann::json& j, TokenRenderer& r);

/// Options of the one-shot classifier.
struct OneShotOptions {
  BOOST_HANA_DEFINE_STRUCT(OneShotOptions,
                           (int, particles),          // K, types psi_k per support (Eq. 20)
                           (int, draws),              // guide draws per particle; the particle is the best by p(psi, x_c)
                           (int, steps),              // gradient steps of the max over z_T
                           (double, learning_rate),   // Adam's step size in the unconstrained token variables
                           (double, motor_sd),        // sd of the motor noise (B.4: 1e-3)
                           (MotorNoise, motor_noise), // averaged per drawn stroke or summed
                           (TokenRenderer, renderer), // the token's renderer parameters
                           (double, shift),           // |shift| of the affine, in image widths
                           (double, scale_low),       // scale of the affine in x and y in [scale_low, scale_high]
                           (double, scale_high),
                           (double, rotation),        // |rotation| in radians
                           (double, shear),           // |shear angle| in radians (the matrix holds its tan)
                           (int, batch));             // (query, psi_k) pairs optimised at once

  /// The authors' protocol: K = 12, 20 draws each, 100 steps at 1e-2,
  /// motor_sd 1e-3 averaged per stroke, the type's renderer parameters, and
  /// their affine ranges (see `preset`); batch 200.
  static OneShotOptions defaults();
  /// The options of a protocol. authors: as `defaults()`, with the ranges of
  /// the authors' code: shift 0.1 (their 0.2 in [-1, 1] coordinates), scale
  /// [0.6, 1.4], rotation 0.25 pi degrees (their angle goes through
  /// deg2rad), shear atan(0.3 pi) (their shear enters the matrix as the value
  /// itself, at most 0.3 pi). supplement: K = 5 raw draws, 30 steps at 0.05,
  /// the density summed, renderer parameters recomputed, B.4's ranges (shift
  /// 0.2, scale [0.8, 1.2], rotation and shear pi/4). quick: the authors'
  /// scoring with K = 2, 5 draws, 10 steps at 0.05.
  static OneShotOptions preset(OneShotProtocol protocol);
  OneShotOptions& with_particles(int v) { particles = v; return *this; }
  OneShotOptions& with_draws(int v) { draws = v; return *this; }
  OneShotOptions& with_steps(int v) { steps = v; return *this; }
  OneShotOptions& with_learning_rate(double v) { learning_rate = v; return *this; }
  OneShotOptions& with_motor_sd(double v) { motor_sd = v; return *this; }
  OneShotOptions& with_motor_noise(MotorNoise v) { motor_noise = v; return *this; }
  OneShotOptions& with_renderer(TokenRenderer v) { renderer = v; return *this; }
  OneShotOptions& with_shift(double v) { shift = v; return *this; }
  OneShotOptions& with_scale(double low, double high) { scale_low = low; scale_high = high; return *this; }
  OneShotOptions& with_rotation(double v) { rotation = v; return *this; }
  OneShotOptions& with_shear(double v) { shear = v; return *this; }
  OneShotOptions& with_batch(int v) { batch = v; return *this; }
  /// Throws ArgumentError naming the first field out of range (particles,
  /// draws, batch >= 1; steps >= 0; learning_rate, motor_sd, shift, rotation
  /// > 0; scale_low < 1 < scale_high, scale_low > 0; 0 < shear < pi/2).
  void check() const;
  /// The affine's uniform log-density inside the ranges (a constant).
  double affine_log_density() const;
};

/// Character types psi = (o, l, s) of a batch, with what Eq. 20-21 needs.
struct CharacterTypes {
  torch::Tensor on;         ///< [N, T] o_t in {0, 1}
  torch::Tensor layout;     ///< [N, T, 4] l_t
  torch::Tensor strokes;    ///< [N, T, P, 2] s_t, control points in the glimpse frame
  torch::Tensor sigma;      ///< [N, T] the renderer parameters the model gives (l_t, s_t)
  torch::Tensor omega0;     ///< [N, T]
  torch::Tensor omega1;     ///< [N] (the first step's, as the model composites)
  torch::Tensor log_joint;  ///< [N] log p(psi, x_c), the unnormalised log pi of Eq. 21
  torch::Tensor obs_scale;  ///< [1, H, W] the scale of the Laplace likelihood p(x | z)

  int64_t size() const { return on.size(0); }
  /// The types at `index` (int64 [M]), obs_scale shared.
  CharacterTypes select(const torch::Tensor& index) const;
};

/// Of types in groups of `draws` consecutive rows (row m * draws + d), the
/// row of highest log_joint in each group: M = N / draws types. Throws
/// ArgumentError when draws < 1 or does not divide the rows.
CharacterTypes best_of(const CharacterTypes& types, int64_t draws);

/// Draws `particles` types per support image from the guide, psi_k ~ q(psi | x_c),
/// each the best of `draws` guide draws by log p(psi, x_c) (`best_of`), and
/// scores each with the model replayed at it, log p(psi_k, x_c) (Eq. 20-21),
/// with the unweighted model (beta off; the program's training flag is restored).
/// The draws of one support run at once, one support after another.
/// supports: [C, H, W] or [C, 1, H, W], H = W = the program's image_size.
/// Returns N = C * particles types, ordered class-major (row c * K + k).
/// Throws ArgumentError naming `particles`, `draws` or `supports` when out of range.
CharacterTypes sample_types(Dood& program, const torch::Tensor& supports, int particles, int draws = 1);

/// The token variables z_T given a type: the affine A through unconstrained
/// values (`raw` [N, 7]: shift x, y, scale x, y, rotation, shear x, y; each
/// mapped into its range by a sigmoid) and the motor noise in units of
/// motor_sd (`noise` [N, T, P, 2]).
struct TokenVariables {
  torch::Tensor raw;
  torch::Tensor noise;
  /// The identity affine (inside the options' ranges) and zero noise for `types`.
  static TokenVariables identity(const CharacterTypes& types, const OneShotOptions& options);
  /// The affine A that `raw` stands for (always inside the options' ranges).
  TokenAffine affine(const OneShotOptions& options) const;
};

/// The token's control points s' in image coordinates [N, T, P, 2]:
/// A(glimpse_to_image(s, l)) + motor_sd * noise.
torch::Tensor token_points(const CharacterTypes& types, const TokenVariables& token, int64_t image_size,
                           const OneShotOptions& options);

/// The control points in the glimpse frame of layouts l [N, 4] of points
/// [N, P, 2] in image coordinates: the inverse of `glimpse_to_image`.
torch::Tensor image_to_glimpse(const torch::Tensor& points, const torch::Tensor& l, int64_t image_size);

/// The motor noise's log-density of tokens from per-stroke log-densities
/// [N, T] (each summed over the stroke's control points) and o [N, T]: the
/// mean over the drawn strokes (`MotorNoise::average`, 0 with none drawn) or
/// their sum (`MotorNoise::sum`), [N].
torch::Tensor motor_log_density(const torch::Tensor& per_stroke, const torch::Tensor& on, MotorNoise how);

/// The objective of Eq. 20's max for each pair n: log p(x_n | z_n) + log p(z_n | psi_n),
/// [N]. log p(x | z) is the model's Laplace likelihood of the canvas the
/// model draws at z = (o, l, s') (renderer parameters the type's, or from
/// (l, s') as in the model, by `options.renderer`); log p(z | psi) is the
/// affine's uniform density plus the motor noise's density on the strokes
/// that are drawn (`motor_log_density`). queries: [N, 1, H, W].
torch::Tensor token_objective(Dood& program, const torch::Tensor& queries, const CharacterTypes& types,
                              const TokenVariables& token, const OneShotOptions& options);

/// The canvas the model draws at each type's token z = (o, l, s'), [N, 1, H,
/// W]: the type's layouts and on/off draws, the token's control points
/// (`token_points`) taken back to the glimpse frame, renderer parameters the
/// type's or recomputed from (l, s') (`options.renderer`).
torch::Tensor token_canvas(Dood& program, const CharacterTypes& types, const TokenVariables& token,
                           const OneShotOptions& options);

/// Token variables drawn from the token model (B.4) for each type: every
/// affine parameter uniform in the options' range, the motor noise standard
/// Normal (in units of motor_sd).
TokenVariables sample_token_variables(const CharacterTypes& types, const OneShotOptions& options);

/// Character-conditioned generation (supplement Fig. 17): for each support
/// image, its type psi ~ q(psi | x_c) (the best of `options.draws` guide
/// draws by log p(psi, x_c)), then `tokens` new tokens drawn through the
/// token model (`sample_token_variables`) and rendered (`token_canvas`).
/// supports: [C, H, W] or [C, 1, H, W]. Returns [C, tokens, 1, H, W].
/// Throws ArgumentError naming `tokens` (< 1), `supports` or the options.
torch::Tensor generate_tokens(Dood& program, const torch::Tensor& supports, int tokens,
                              const OneShotOptions& options);

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

/// An accuracy with its binomial standard error.
struct Accuracy {
  int64_t correct = 0, queries = 0;
  /// correct / queries (0 without queries).
  double value() const;
  /// sqrt(a (1 - a) / queries) for a = value() (0 without queries).
  double standard_error() const;
};

}  // namespace ppl::programs::dood
