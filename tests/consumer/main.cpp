// Written only against <ppl/ppl.hpp> and the names of the design contract.
#include <iostream>

#include <ppl/ppl.hpp>

namespace d = ppl::dist;

torch::Tensor model(const torch::Tensor& x) {
  auto mu = ppl::param("mu", torch::zeros({2}));
  auto data = ppl::plate("data", x.size(0));
  auto z = ppl::sample("z", d::Normal(mu, 1.0).to_event(1));
  ppl::observe("x", d::Normal(z, 0.5).to_event(1), x);
  return z;
}

int main() {
  auto x = torch::randn({4, 2});
  auto tr = ppl::trace(model, x);
  std::cout << tr.format_shapes();
  const bool ok = tr.site("z").value.sizes() == c10::IntArrayRef({4, 2}) && tr.log_prob_sum().isfinite().item<bool>();
  std::cout << (ok ? "consumer ok" : "consumer FAILED") << "\n";
  return ok ? 0 : 1;
}
