// Must not compile without a warning: a plate written without a variable
// would end at its semicolon, and the site after it would silently leave it.
#include <ppl/ppl.hpp>

void model(const torch::Tensor& x) {
  ppl::plate("data", x.size(0));
  ppl::observe("x", ppl::dist::Normal(0.0, 1.0), x);
}
