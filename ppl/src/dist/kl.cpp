// Analytic KL divergences: one row per pair of families with a closed form.
#include <functional>
#include <type_traits>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <torch/torch.h>

#include <ppl/dist.hpp>

#include "detail.hpp"

namespace ppl::dist {
namespace {

using Fn = std::function<torch::Tensor(const Distribution&, const Distribution&)>;

struct Rule {
  std::string_view p, q;
  Fn f;
};

template <class P, class Q = P>
Rule rule(std::string_view p, std::string_view q, std::type_identity_t<torch::Tensor (*)(const P&, const Q&)> f) {
  return {p, q, [f](const Distribution& a, const Distribution& b) {
            return f(static_cast<const P&>(a), static_cast<const Q&>(b));
          }};
}

torch::Tensor lbeta(const torch::Tensor& a, const torch::Tensor& b) {
  return torch::lgamma(a) + torch::lgamma(b) - torch::lgamma(a + b);
}

torch::Tensor normal_kl(const torch::Tensor& mp, const torch::Tensor& sp, const torch::Tensor& mq,
                        const torch::Tensor& sq) {
  const auto var_ratio = (sp / sq).pow(2);
  const auto t1 = ((mp - mq) / sq).pow(2);
  return 0.5 * (var_ratio + t1 - 1 - var_ratio.log());
}

torch::Tensor gamma_kl(const torch::Tensor& ap, const torch::Tensor& bp, const torch::Tensor& aq,
                       const torch::Tensor& bq) {
  return (ap - aq) * torch::digamma(ap) - torch::lgamma(ap) + torch::lgamma(aq) + aq * (bp.log() - bq.log()) +
         ap * (bq - bp) / bp;
}

/// sum_k p_k (log p_k - log q_k) over the last dimension, 0 where p_k = 0.
torch::Tensor categorical_kl(const torch::Tensor& probs_p, const torch::Tensor& logp, const torch::Tensor& logq) {
  const auto t = probs_p * (logp - logq);
  return torch::where(probs_p == 0, torch::zeros({}, t.options()), t).sum(-1);
}

const std::vector<Rule>& rules() {
  static const std::vector<Rule> table = {
      rule<Normal>("Normal", "Normal",
                   [](const Normal& p, const Normal& q) { return normal_kl(p.loc(), p.scale(), q.loc(), q.scale()); }),
      rule<LogNormal>("LogNormal", "LogNormal",
                      [](const LogNormal& p, const LogNormal& q) {
                        return normal_kl(p.loc(), p.scale(), q.loc(), q.scale());
                      }),
      rule<HalfNormal>("HalfNormal", "HalfNormal",
                       [](const HalfNormal& p, const HalfNormal& q) {
                         const auto var_ratio = (p.scale() / q.scale()).pow(2);
                         return 0.5 * (var_ratio - 1 - var_ratio.log());
                       }),
      rule<Laplace>("Laplace", "Laplace",
                    [](const Laplace& p, const Laplace& q) {
                      const auto ratio = p.scale() / q.scale();
                      const auto diff = (p.loc() - q.loc()).abs();
                      return -ratio.log() + diff / q.scale() + ratio * torch::exp(-diff / p.scale()) - 1;
                    }),
      rule<Exponential>("Exponential", "Exponential",
                        [](const Exponential& p, const Exponential& q) {
                          const auto ratio = q.rate() / p.rate();
                          return ratio - ratio.log() - 1;
                        }),
      rule<Gamma>("Gamma", "Gamma",
                  [](const Gamma& p, const Gamma& q) {
                    return gamma_kl(p.concentration(), p.rate(), q.concentration(), q.rate());
                  }),
      // 1 / x maps InverseGamma(a, b) to Gamma(a, b); KL is invariant under it.
      rule<InverseGamma>("InverseGamma", "InverseGamma",
                         [](const InverseGamma& p, const InverseGamma& q) {
                           return gamma_kl(p.concentration(), p.rate(), q.concentration(), q.rate());
                         }),
      rule<Chi2>("Chi2", "Chi2",
                 [](const Chi2& p, const Chi2& q) {
                   const auto half = torch::full({}, 0.5, p.df().options());
                   return gamma_kl(p.df() / 2, half, q.df() / 2, half);
                 }),
      rule<Beta>("Beta", "Beta",
                 [](const Beta& p, const Beta& q) {
                   const auto &a1 = p.concentration1(), &b1 = p.concentration0();
                   const auto &a2 = q.concentration1(), &b2 = q.concentration0();
                   return lbeta(a2, b2) - lbeta(a1, b1) + (a1 - a2) * torch::digamma(a1) +
                          (b1 - b2) * torch::digamma(b1) + (a2 - a1 + b2 - b1) * torch::digamma(a1 + b1);
                 }),
      rule<Uniform>("Uniform", "Uniform",
                    [](const Uniform& p, const Uniform& q) {
                      const auto kl = ((q.high() - q.low()) / (p.high() - p.low())).log();
                      const auto outside = (q.low() > p.low()).logical_or(q.high() < p.high());
                      return torch::where(outside, torch::full({}, INFINITY, kl.options()), kl);
                    }),
      rule<ContinuousBernoulli>("ContinuousBernoulli", "ContinuousBernoulli",
                                [](const ContinuousBernoulli& p, const ContinuousBernoulli& q) {
                                  const auto lp = p.logits(), lq = q.logits();
                                  return p.mean() * (lp - lq) + torch::log_sigmoid(-lp) - torch::log_sigmoid(-lq) +
                                         p.log_normalizer() - q.log_normalizer();
                                }),
      rule<Bernoulli>("Bernoulli", "Bernoulli",
                      [](const Bernoulli& p, const Bernoulli& q) {
                        const auto lp = p.logits(), lq = q.logits();
                        const auto pp = torch::sigmoid(lp);
                        return pp * (torch::log_sigmoid(lp) - torch::log_sigmoid(lq)) +
                               (1 - pp) * (torch::log_sigmoid(-lp) - torch::log_sigmoid(-lq));
                      }),
      rule<Geometric>("Geometric", "Geometric",
                      [](const Geometric& p, const Geometric& q) {
                        // sum_k (1-p)^k p [log(p/q) + k log((1-p)/(1-q))], E[k] = (1-p)/p.
                        const auto lp = p.logits(), lq = q.logits();
                        const auto log_p = torch::log_sigmoid(lp), log_q = torch::log_sigmoid(lq);
                        const auto log_fail_p = torch::log_sigmoid(-lp), log_fail_q = torch::log_sigmoid(-lq);
                        return log_p - log_q + (log_fail_p - log_p).exp() * (log_fail_p - log_fail_q);
                      }),
      rule<Poisson>("Poisson", "Poisson",
                    [](const Poisson& p, const Poisson& q) {
                      return torch::xlogy(p.rate(), p.rate()) - torch::xlogy(p.rate(), q.rate()) - p.rate() + q.rate();
                    }),
      rule<Categorical>("Categorical", "Categorical",
                        [](const Categorical& p, const Categorical& q) {
                          return categorical_kl(p.probs(), p.logits(), q.logits());
                        }),
      rule<OneHotCategorical>("OneHotCategorical", "OneHotCategorical",
                              [](const OneHotCategorical& p, const OneHotCategorical& q) {
                                return categorical_kl(p.probs(), p.logits(), q.logits());
                              }),
      rule<Dirichlet>("Dirichlet", "Dirichlet",
                      [](const Dirichlet& p, const Dirichlet& q) {
                        const auto &a = p.concentration(), &b = q.concentration();
                        const auto a0 = a.sum(-1), b0 = b.sum(-1);
                        return torch::lgamma(a0) - torch::lgamma(a).sum(-1) - torch::lgamma(b0) +
                               torch::lgamma(b).sum(-1) +
                               ((a - b) * (torch::digamma(a) - torch::digamma(a0).unsqueeze(-1))).sum(-1);
                      }),
      rule<MultivariateNormal>(
          "MultivariateNormal", "MultivariateNormal",
          [](const MultivariateNormal& p, const MultivariateNormal& q) {
            if (p.dim() != q.dim())
              throw ShapeError(fmt::format("kl: MultivariateNormal of dimension {} against one of dimension {}",
                                           p.dim(), q.dim()));
            // (tr(Sq^-1 Sp) + |Lq^-1 (mq - mp)|^2 - D + log det Sq - log det Sp) / 2.
            const auto lp = p.scale_tril(), lq = q.scale_tril();
            const auto trace = detail::solve_lower(lq, lp).pow(2).sum({-2, -1});
            const auto maha = detail::solve_lower(lq, (q.loc() - p.loc()).unsqueeze(-1)).squeeze(-1).pow(2).sum(-1);
            const auto log_det = lq.diagonal(0, -2, -1).log().sum(-1) - lp.diagonal(0, -2, -1).log().sum(-1);
            return 0.5 * (trace + maha - static_cast<double>(p.dim())) + log_det;
          }),
      rule<Independent>("Independent", "Independent",
                        [](const Independent& p, const Independent& q) {
                          if (p.reinterpreted_batch_dims() != q.reinterpreted_batch_dims())
                            throw ShapeError(fmt::format("kl: Independent over {} dimensions against one over {}",
                                                         p.reinterpreted_batch_dims(), q.reinterpreted_batch_dims()));
                          return kl(p.base(), q.base());
                        }),
  };
  return table;
}

const Rule* find_rule(const Distribution& p, const Distribution& q) {
  for (const auto& r : rules())
    if (r.p == p.type_name() && r.q == q.type_name()) return &r;
  return nullptr;
}

}  // namespace

bool has_kl(const Distribution& p, const Distribution& q) {
  if (p.type_name() == "Independent" && q.type_name() == "Independent")
    return has_kl(static_cast<const Independent&>(p).base(), static_cast<const Independent&>(q).base());
  return find_rule(p, q) != nullptr;
}

torch::Tensor kl(const Distribution& p, const Distribution& q) {
  if (p.event_dims() != q.event_dims())
    throw ShapeError(fmt::format("kl: {} has {} event dimensions but {} has {}", p.type_name(), p.event_dims(),
                                 q.type_name(), q.event_dims()));
  const auto* r = find_rule(p, q);
  if (!r) {
    std::vector<std::string> pairs;
    for (const auto& x : rules()) pairs.push_back(fmt::format("{}-{}", x.p, x.q));
    throw ArgumentError(fmt::format("kl: no closed form for KL({} || {}); closed forms exist for {}", p.type_name(),
                                    q.type_name(), fmt::join(pairs, ", ")));
  }
  auto k = r->f(p, q);
  if (p.mask_tensor().defined()) k = torch::where(p.mask_tensor(), k, torch::zeros({}, k.options()));
  return detail::sum_rightmost(k, p.event_dims());
}

}  // namespace ppl::dist
