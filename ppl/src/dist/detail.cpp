// Numerical helpers shared by the distribution families.
#include <torch/torch.h>

#include <ppl/core/random.hpp>

#include "detail.hpp"

namespace ppl::dist::detail {

torch::Tensor clamp_probs(const torch::Tensor& p) {
  const double e = eps_of(p);
  return p.clamp(e, 1 - e);
}
torch::Tensor probs_to_logits(const torch::Tensor& p) {
  auto c = clamp_probs(p);
  return torch::log(c) - torch::log1p(-c);
}
torch::Tensor full_like_scalar(const torch::Tensor& t, double v) { return torch::full({}, v, t.options()); }

torch::Tensor gamma_draws(const torch::Tensor& alpha, c10::IntArrayRef sizes) {
  return random::standard_gamma(alpha.expand(sizes)).clamp_min(tiny_of(alpha));
}

torch::Tensor solve_lower(const torch::Tensor& l, const torch::Tensor& b) {
  auto batch = at::infer_size(l.sizes().slice(0, l.dim() - 2), b.sizes().slice(0, b.dim() - 2));
  auto ls = batch, bs = batch;
  ls.insert(ls.end(), {l.size(-2), l.size(-1)});
  bs.insert(bs.end(), {b.size(-2), b.size(-1)});
  return torch::linalg_solve_triangular(l.expand(ls), b.expand(bs), /*upper=*/false);
}

void positive_finite(const CheckContext& ctx, std::string_view arg, const torch::Tensor& value) {
  check::positive(ctx, arg, value);
  check::finite(ctx, arg, value);
}

void check_categorical_weights(const CheckContext& ctx, bool logits, const torch::Tensor& w) {
  if (logits) {
    check::not_nan(ctx, "logits", w);
    // Every category at -inf leaves nothing to draw.
    check::elementwise(ctx, "max(logits)", w.amax(-1), w.amax(-1) > -INFINITY, "greater than -inf");
  } else {
    check::nonnegative(ctx, "probs", w);
    check::finite(ctx, "probs", w);
    check::elementwise(ctx, "sum(probs)", w.sum(-1), w.sum(-1) > 0, "positive");
  }
}
torch::Tensor category_probs(bool logits, const torch::Tensor& w) {
  return logits ? torch::softmax(w, -1) : w / w.sum(-1, true);
}
torch::Tensor category_log_probs(bool logits, const torch::Tensor& w) {
  return logits ? w - w.logsumexp(-1, true) : clamp_probs(category_probs(false, w)).log();
}
torch::Tensor draw_categories(const torch::Tensor& probs, c10::IntArrayRef sizes) {
  torch::NoGradGuard no_grad;
  const auto k = probs.size(-1);
  const auto p = probs.detach().reshape({-1, k});
  const int64_t rows = p.size(0);
  const int64_t n = rows == 0 ? 0 : c10::multiply_integers(sizes) / rows;
  auto idx = random::multinomial(p, std::max<int64_t>(n, 1));  // [rows, n]
  if (n == 0) idx = idx.narrow(1, 0, 0);
  return idx.t().reshape(sizes);
}

}  // namespace ppl::dist::detail
