// NUTS on eight schools and on a logistic regression, for the comparison
// with Stan in bench/compare/nuts_vs_stan (see bench/compare/README.md).
//
//   ppl_bench_mcmc run eight_schools|logistic DATA.json OUT.json [--chains C] [--warmup W] [--samples S]
//                  [--seed N] [--validate]
//       samples the model given its data with NUTS (chains one after another,
//       one libtorch thread) and writes the draws and times as JSON;
//   ppl_bench_mcmc evaluate DRAWS.json...
//       reads draws written by this program or by bench/compare/stan_nuts.R
//       (any JSON of the same form), and prints for each the smallest
//       bulk- and tail-ESS, the largest R-hat, effective draws per second
//       and the posterior means side by side (one JSON line per file first).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ppl/inference.hpp>

namespace d = ppl::dist;
namespace infer = ppl::infer;
namespace mcmc = ppl::infer::mcmc;
using nlohmann::json;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

/// Eight schools, non-centred: mu ~ N(0, 5), tau ~ HalfCauchy(5),
/// theta_tilde_j ~ N(0, 1), y_j ~ N(mu + tau theta_tilde_j, sigma_j).
void eight_schools(const torch::Tensor& sigma, const torch::Tensor& y) {
  auto mu = ppl::sample("mu", d::Normal(torch::tensor(0.0, kF64), 5.0));
  auto tau = ppl::sample("tau", d::HalfCauchy(torch::tensor(5.0, kF64)));
  auto schools = ppl::plate("schools", y.size(0));
  auto theta_tilde = ppl::sample("theta_tilde", d::Normal(torch::tensor(0.0, kF64), 1.0));
  ppl::sample("y", d::Normal(mu + tau * theta_tilde, sigma), {.obs = y});
}

/// Logistic regression: w ~ N(0, I_D), b ~ N(0, 1), y_n ~ Bernoulli(logits = x_n . w + b).
void logistic(const torch::Tensor& x, const torch::Tensor& y) {
  auto w = ppl::sample("w", d::Normal(torch::zeros({x.size(1)}, kF64), 1.0).to_event(1));
  auto b = ppl::sample("b", d::Normal(torch::tensor(0.0, kF64), 1.0));
  auto data = ppl::plate("data", x.size(0));
  ppl::sample("y", d::Bernoulli(d::logits(x.matmul(w) + b)), {.obs = y});
}

torch::Tensor tensor_of(const json& j) {
  if (j.is_array() && !j.empty() && j[0].is_array()) {
    std::vector<torch::Tensor> rows;
    for (const auto& r : j) rows.push_back(tensor_of(r));
    return torch::stack(rows);
  }
  return torch::tensor(j.get<std::vector<double>>(), kF64);
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  return json::parse(in);
}

template <class Model>
json sample(Model model, const torch::Tensor& a, const torch::Tensor& b, const infer::McmcOptions& options) {
  infer::Nuts kernel(model);
  infer::Mcmc mcmc(kernel, options);
  mcmc.run(a, b);
  const auto summary = mcmc.summary();
  json params = json::object();
  for (const auto& [name, v] : mcmc.samples()) {
    const torch::Tensor flat = v.reshape({v.size(0), v.size(1), -1});
    for (int64_t e = 0; e < flat.size(2); ++e) {
      std::vector<std::vector<double>> chains;
      for (int64_t c = 0; c < flat.size(0); ++c) {
        const torch::Tensor col = flat[c].select(1, e).contiguous();
        chains.emplace_back(col.data_ptr<double>(), col.data_ptr<double>() + col.numel());
      }
      const std::string element = v.dim() == 2 ? name : fmt::format("{}[{}]", name, e);
      params[element] = chains;
    }
  }
  json out = {{"implementation", "ppl"},
              {"chains", options.chains},
              {"warmup", options.warmup},
              {"draws", options.samples},
              {"divergences", mcmc.divergences()},
              {"warmup_seconds", summary.warmup_seconds},
              {"sampling_seconds", summary.sampling_seconds},
              {"step_size", summary.step_size},
              {"mean_tree_depth", summary.mean_tree_depth},
              {"params", params}};
  return out;
}

int run(int argc, char** argv) {
  if (argc < 5) throw std::runtime_error("usage: ppl_bench_mcmc run MODEL DATA.json OUT.json [options]");
  const std::string model = argv[2];
  const auto data = read_json(argv[3]);
  infer::McmcOptions options{.warmup = 1000, .samples = 1000, .chains = 4, .seed = 1, .progress = true,
                             .parallel = false};
  for (int i = 5; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto next = [&] {
      if (i + 1 >= argc) throw std::runtime_error(flag + " needs a value");
      return std::stoll(argv[++i]);
    };
    if (flag == "--chains") options.chains = next();
    else if (flag == "--warmup") options.warmup = next();
    else if (flag == "--samples") options.samples = next();
    else if (flag == "--seed") options.seed = static_cast<uint64_t>(next());
    else if (flag == "--validate") options.validate_transitions = true;
    else throw std::runtime_error("unknown flag " + flag);
  }
  torch::set_num_threads(1);
  json out;
  if (model == "eight_schools") {
    out = sample(eight_schools, tensor_of(data.at("sigma")), tensor_of(data.at("y")), options);
  } else if (model == "logistic") {
    out = sample(logistic, tensor_of(data.at("X")), tensor_of(data.at("y")), options);
  } else {
    throw std::runtime_error("unknown model " + model + " (eight_schools, logistic)");
  }
  out["model"] = model;
  std::ofstream(argv[4]) << out.dump() << "\n";
  return 0;
}

int evaluate(int argc, char** argv) {
  struct Result {
    std::string implementation;
    std::map<std::string, mcmc::SummaryRow> rows;
  };
  std::vector<Result> results;
  std::vector<std::string> names;
  for (int i = 2; i < argc; ++i) {
    const auto j = read_json(argv[i]);
    Result r{j.at("implementation").get<std::string>(), {}};
    double min_bulk = 1e300, min_tail = 1e300, max_rhat = 0;
    std::string slowest;
    for (const auto& [name, chains] : j.at("params").items()) {
      const auto row = mcmc::summarize(name, chains.get<mcmc::Chains>(), {});
      if (row.ess_bulk < min_bulk) slowest = name;
      min_bulk = std::min(min_bulk, row.ess_bulk);
      min_tail = std::min(min_tail, row.ess_tail);
      max_rhat = std::max(max_rhat, row.rhat);
      if (results.empty()) names.push_back(name);
      r.rows[name] = row;
    }
    double sampling = 0, warmup = 0;
    for (double s : j.at("sampling_seconds").get<std::vector<double>>()) sampling += s;
    for (double s : j.at("warmup_seconds").get<std::vector<double>>()) warmup += s;
    const json line = {{"implementation", r.implementation},
                       {"model", j.value("model", "")},
                       {"chains", j.at("chains")},
                       {"draws", j.at("draws")},
                       {"divergences", j.value("divergences", -1)},
                       {"min_ess_bulk", min_bulk},
                       {"slowest", slowest},
                       {"min_ess_tail", min_tail},
                       {"max_rhat", max_rhat},
                       {"warmup_seconds", warmup},
                       {"sampling_seconds", sampling},
                       {"ess_per_second", min_bulk / sampling},
                       {"ess_per_second_with_warmup", min_bulk / (sampling + warmup)}};
    std::cout << line.dump() << "\n";
    results.push_back(std::move(r));
  }
  std::cout << fmt::format("{:<16}", "posterior mean");
  for (const auto& r : results) std::cout << fmt::format(" {:>12}", r.implementation);
  std::cout << "\n";
  for (const auto& name : names) {
    std::cout << fmt::format("{:<16}", name);
    for (const auto& r : results) {
      const auto it = r.rows.find(name);
      std::cout << (it == r.rows.end() ? fmt::format(" {:>12}", "-") : fmt::format(" {:>12.4f}", it->second.mean));
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "run") return run(argc, argv);
    if (command == "evaluate") return evaluate(argc, argv);
    std::cerr << "usage: ppl_bench_mcmc run MODEL DATA.json OUT.json [--chains C] [--warmup W] [--samples S] [--seed N] "
                 "[--validate]\n       ppl_bench_mcmc evaluate DRAWS.json...\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "ppl_bench_mcmc: " << e.what() << "\n";
    return 1;
  }
}
