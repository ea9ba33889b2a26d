// A worker for the data-parallel tests (distributed_test.sh).
//
//   distributed_probe train MODE OUT   5 SVI steps on 8 data points: alone, or
//                                      as one rank of the group in the
//                                      torchrun environment (its slice of the
//                                      points); writes the parameters and the
//                                      baseline statistics to the archive OUT
//   distributed_probe compare A B TOL  the tensors of two archives agree within TOL
//   distributed_probe port             prints a free port
//   distributed_probe join             joins the group in the environment, then exits
//   distributed_probe reduce           as a rank of the group in the environment:
//                                      all-reduces of float and double tensors
//                                      (contiguous or not, sizes not divisible
//                                      by the group's, growing from call to
//                                      call), checked against the sums
//                                      computed here; prints how they went
//
// MODE map: a MAP fit of a regression (deterministic gradients: the group's
// steps equal the lone process's up to the order of float sums; each rank's
// share of the data is scaled to the whole set by its plate, so the ranks'
// mean loss is the lone process's).
// MODE score: a global Bernoulli latent fitted with the score-function ELBO
// and its decaying baseline (the ranks must share one set of statistics).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <ppl/core/archive.hpp>
#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

/// The number of data points of the whole data set: each rank's share is
/// scaled up to it, so that its loss estimates the whole objective.
int64_t g_total = 8;

void map_model(const torch::Tensor& x, const torch::Tensor& y) {
  auto w = ppl::sample("w", d::Normal(torch::zeros({3}, kF64), 1.0).to_event(1));
  auto data = ppl::plate("data", g_total, {.subsample_size = x.size(0)});
  ppl::sample("y", d::Normal(x.matmul(w), 0.5), {.obs = y});
}
void map_guide(const torch::Tensor&, const torch::Tensor&) {
  auto w = ppl::param("w_map", torch::tensor({0.1, -0.2, 0.3}, kF64));
  ppl::sample("w", d::Delta(w).to_event(1));
}

void score_model(const torch::Tensor& x, const torch::Tensor&) {
  auto c = ppl::sample("c", d::Bernoulli(torch::tensor(0.3, kF64)));
  auto data = ppl::plate("data", g_total, {.subsample_size = x.size(0)});
  ppl::sample("y", d::Normal(2.0 * c, 1.0), {.obs = x.select(1, 0)});
}
void score_guide(const torch::Tensor&, const torch::Tensor&) {
  auto a = ppl::param("a", torch::tensor(0.0, kF64));
  ppl::sample("c", d::Bernoulli(d::logits(a)));
}

int train(const std::string& mode, const std::string& out) {
  torch::manual_seed(5);
  const auto x = torch::randn({8, 3}, kF64);
  const auto y = x.matmul(torch::tensor({1.0, -1.0, 0.5}, kF64)) + 0.5 * torch::randn({8}, kF64);
  std::shared_ptr<infer::ProcessGroup> group;
  if (const auto env = infer::distributed_from_environment(); env && env->world_size > 1)
    group = infer::init_process_group(*env);
  const int rank = group ? group->rank() : 0, world = group ? group->size() : 1;
  const int64_t share = 8 / world;
  const auto xs = x.narrow(0, rank * share, share), ys = y.narrow(0, rank * share, share);
  ppl::param_store().clear();
  ppl::TensorArchive archive;
  auto run = [&](auto model, auto guide) {
    infer::Svi svi(model, guide, infer::Elbo(), infer::Adam(0.1));
    if (group) svi.distribute(group);
    for (int step = 0; step < 5; ++step) {
      ppl::random::SeedScope seed(100 + step * 10 + rank);
      svi.step(xs, ys);
    }
    archive = infer::checkpoint_archive(svi.elbo(), svi.optimiser(), svi.steps());
  };
  if (mode == "map") run(map_model, map_guide);
  else if (mode == "score") run(score_model, score_guide);
  else {
    std::fprintf(stderr, "distributed_probe: unknown mode %s\n", mode.c_str());
    return 2;
  }
  // The generator state differs by rank on purpose; the rest must not.
  std::erase_if(archive.tensors, [](const auto& t) { return t.first == "rng/cpu"; });
  ppl::save_archive(archive, out);
  return 0;
}

/// Rank r's tensor k of call c: values that differ by rank, call and element.
torch::Tensor piece(int r, int c, int k, torch::Dtype dtype, int64_t n) {
  return (torch::arange(n, torch::TensorOptions().dtype(dtype)) * (0.001 * (k + 1)) + (r + 1) * 0.37 + c).sin();
}

int reduce() {
  const auto env = infer::distributed_from_environment();
  if (!env) throw ppl::Error("reduce: no WORLD_SIZE in the environment");
  auto group = infer::init_process_group(*env);
  const int rank = group->rank(), world = group->size();
  int bad = 0;
  // Sizes chosen so that the shares are uneven and later calls need more room.
  const std::vector<int64_t> sizes = {1, 7, 1001, 300'000, 2'500'001};
  for (int c = 0; c < 3; ++c) {
    std::vector<torch::Tensor> tensors, expected;
    for (int k = 0; k < static_cast<int>(sizes.size()) && k <= c + 2; ++k) {
      const auto dtype = k % 2 == 0 ? torch::kFloat : torch::kDouble;
      auto t = piece(rank, c, k, dtype, sizes[static_cast<size_t>(k)]);
      if (k == 2) t = t.view({-1, 7}).t();  // not contiguous
      tensors.push_back(t);
      torch::Tensor sum;
      for (int r = 0; r < world; ++r) {
        auto p = piece(r, c, k, dtype, sizes[static_cast<size_t>(k)]);
        sum = sum.defined() ? sum + p : p;
      }
      expected.push_back(k == 2 ? sum.view({-1, 7}).t() : sum);
    }
    group->all_reduce_sum(tensors);
    for (size_t k = 0; k < tensors.size(); ++k) {
      // Two ranks: a + b is exact whichever way round; more ranks may sum in
      // another order, within a few ulps.
      const double tol = world == 2 ? 0.0 : 1e-5;
      const double diff = (tensors[k] - expected[k]).abs().max().item<double>();
      if (!(diff <= tol)) {
        std::printf("rank %d call %d tensor %zu differs by %g\n", rank, c, k, diff);
        ++bad;
      }
    }
  }
  std::printf("rank %d: %s (shared memory %s)\n", rank, bad ? "wrong sums" : "sums agree",
              group->shared_memory() ? "on" : "off");
  return bad ? 1 : 0;
}

int compare(const std::string& a, const std::string& b, double tol) {
  const auto x = ppl::load_archive(a), y = ppl::load_archive(b);
  int bad = 0;
  for (const auto& [name, t] : x.tensors) {
    const auto& u = y.at(name);
    const auto a = t.to(torch::kDouble), b = u.to(torch::kDouble);
    // Equal values (infinities included) differ by 0.
    const double diff = a.numel() == 0 ? 0.0 : torch::where(a == b, torch::zeros_like(a), (a - b).abs()).max().item<double>();
    if (!(diff <= tol)) {
      std::printf("%s differs by %g\n", name.c_str(), diff);
      ++bad;
    }
  }
  if (x.tensors.size() != y.tensors.size()) {
    std::printf("the archives hold %zu and %zu tensors\n", x.tensors.size(), y.tensors.size());
    ++bad;
  }
  std::printf(bad ? "differ\n" : "agree\n");
  return bad ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  torch::set_num_threads(1);
  try {
    const std::string what = argc > 1 ? argv[1] : "";
    if (what == "train" && argc == 4) return train(argv[2], argv[3]);
    if (what == "compare" && argc == 5) return compare(argv[2], argv[3], std::atof(argv[4]));
    if (what == "reduce") return reduce();
    if (what == "port") {
      std::printf("%d\n", infer::free_port());
      return 0;
    }
    if (what == "join") {
      const auto env = infer::distributed_from_environment();
      if (!env) throw ppl::Error("join: no WORLD_SIZE in the environment");
      auto o = *env;
      o.rendezvous_timeout = std::chrono::milliseconds(3000);
      infer::init_process_group(o);
      return 0;
    }
    std::fprintf(stderr, "usage: distributed_probe train map|score OUT | compare A B TOL | port | join\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "distributed_probe: error: %s\n", e.what());
    return 2;
  }
}
