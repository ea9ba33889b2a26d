// The MCMC driver: chains on threads, initial points, progress, results.
#include <ppl/infer/mcmc/mcmc.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <random>
#include <thread>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/random.hpp>
#include <ppl/core/validation_scope.hpp>
#include <ppl/infer/mcmc/potential.hpp>

namespace ppl::infer {

// ------------------------------------------------------------------ options

void to_json(nlohmann::json& j, const McmcOptions& o) {
  j = {{"warmup", o.warmup},
       {"samples", o.samples},
       {"chains", o.chains},
       {"seed", o.seed ? nlohmann::json(*o.seed) : nlohmann::json(nullptr)},  // null: drawn
       {"progress", o.progress},
       {"parallel", o.parallel},
       {"validate_transitions", o.validate_transitions}};
}

void from_json(const nlohmann::json& j, McmcOptions& o) {
  nlohmann::json known;
  to_json(known, McmcOptions{});
  if (!j.is_object()) throw Error("McmcOptions: expected a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.contains(it.key())) throw Error(fmt::format("McmcOptions: unknown key \"{}\"", it.key()));
  try {
    o.warmup = j.value("warmup", o.warmup);
    o.samples = j.value("samples", o.samples);
    o.chains = j.value("chains", o.chains);
    if (j.contains("seed"))
      o.seed = j.at("seed").is_null() ? std::nullopt : std::optional<uint64_t>(j.at("seed").get<uint64_t>());
    o.progress = j.value("progress", o.progress);
    o.parallel = j.value("parallel", o.parallel);
    o.validate_transitions = j.value("validate_transitions", o.validate_transitions);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("McmcOptions: {}", e.what()));
  }
}

namespace mcmc {

void check_options(const McmcOptions& o) {
  if (o.warmup < 0) throw ArgumentError(fmt::format("Mcmc: warmup is {}, but must be nonnegative", o.warmup));
  if (o.samples < 1) throw ArgumentError(fmt::format("Mcmc: samples is {}, but must be at least 1", o.samples));
  if (o.chains < 1) throw ArgumentError(fmt::format("Mcmc: chains is {}, but must be at least 1", o.chains));
}

namespace {

using Clock = std::chrono::steady_clock;

/// SplitMix64: decorrelated seeds for the chains from one seed.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::string clock_string(double seconds) {
  if (!(seconds >= 0) || seconds > 1e7) return "--:--";
  const auto s = static_cast<int64_t>(seconds);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{:02}:{:02}", s / 60, s % 60);
}

/// One progress bar per chain on stderr, redrawn in place on a terminal (at
/// most ten times a second), else a plain line per chain at every tenth.
class ProgressBoard {
 public:
  ProgressBoard(std::string_view kernel, int64_t chains, int64_t warmup, int64_t total, bool enabled)
      : kernel_(kernel), warmup_(warmup), total_(total), enabled_(enabled), tty_(::isatty(STDERR_FILENO) != 0),
        rows_(static_cast<size_t>(chains)) {
    for (auto& r : rows_) r.begin = Clock::now();
  }

  void update(int64_t chain, int64_t done, int64_t divergences, double step_size) {
    if (!enabled_) return;
    std::lock_guard lock(mutex_);
    auto& r = rows_[static_cast<size_t>(chain)];
    r.done = done;
    r.divergences = divergences;
    r.step_size = step_size;
    if (tty_) {
      const auto now = Clock::now();
      if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
      last_draw_ = now;
      redraw();
    } else {
      const int64_t tenth = done * 10 / total_;
      if (tenth == r.tenth) return;
      r.tenth = tenth;
      std::fprintf(stderr, "%s\n", line(chain).c_str());
      std::fflush(stderr);
    }
  }

 private:
  struct Row {
    int64_t done = 0, divergences = 0, tenth = 0;
    double step_size = 0;
    Clock::time_point begin;
  };

  std::string line(int64_t chain) const {
    const auto& r = rows_[static_cast<size_t>(chain)];
    const double elapsed = std::chrono::duration<double>(Clock::now() - r.begin).count();
    const double rate = elapsed > 0 ? static_cast<double>(r.done) / elapsed : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - r.done) / rate : -1.0;
    const char* phase = r.done < warmup_ ? "warmup" : (r.done < total_ ? "sample" : "done");
    const int width = 24;
    const auto filled = static_cast<size_t>(total_ > 0 ? width * r.done / total_ : width);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    return fmt::format("{} chain {} [{}] {}/{} {}  {:.1f} it/s  ETA {}  step {:.3g}  divergences {}", kernel_, chain,
                       bar, r.done, total_, phase, rate, clock_string(eta), r.step_size, r.divergences);
  }

  void redraw() {
    if (drawn_) std::fprintf(stderr, "\033[%zuA", rows_.size());
    for (size_t c = 0; c < rows_.size(); ++c)
      std::fprintf(stderr, "\r%s\033[K\n", line(static_cast<int64_t>(c)).c_str());
    std::fflush(stderr);
    drawn_ = true;
  }

  std::string kernel_;
  int64_t warmup_, total_;
  bool enabled_, tty_, drawn_ = false;
  std::vector<Row> rows_;
  Clock::time_point last_draw_{};
  std::mutex mutex_;
};

/// One libtorch intra-op thread on a chain's own thread while it lives.
class SingleIntraOpThread {
 public:
  SingleIntraOpThread() : previous_(at::get_num_threads()) { at::set_num_threads(1); }
  ~SingleIntraOpThread() { at::set_num_threads(previous_); }

 private:
  int previous_;
};

/// A starting point: the given init values (unconstrained), other
/// coordinates uniform in (-radius, radius); up to 100 tries for a finite
/// potential and gradient.
std::vector<double> initial_point(ModelPotential& potential, const std::vector<LatentSite>& sites, double radius,
                                  std::string_view who, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-radius, radius);
  bool random = false;
  for (const auto& s : sites) random = random || (!s.init_given && radius > 0);
  const int tries = random ? 100 : 1;
  std::string reason = "the log-density is not finite there";
  std::vector<double> q, grad;
  for (int attempt = 0; attempt < tries; ++attempt) {
    q.clear();
    for (const auto& s : sites) {
      if (s.init_given) {
        const auto init = s.init.to(torch::kDouble).contiguous();
        q.insert(q.end(), init.data_ptr<double>(), init.data_ptr<double>() + init.numel());
      } else {
        for (int64_t i = 0; i < s.numel(); ++i) q.push_back(radius > 0 ? uniform(rng) : 0.0);
      }
    }
    try {
      if (std::isfinite(potential(q, grad))) return q;
    } catch (const ArgumentError& e) {
      reason = e.what();
    }
  }
  throw Error(fmt::format("{}: no initial point with a finite log-density and gradient after {} tr{} ({}); give "
                          "init values or a smaller init_radius",
                          who, tries, tries == 1 ? "y" : "ies", reason));
}

/// Element names of a site of shape `shape`: "mu", "theta[3]", "L[1,0]".
std::vector<std::string> element_names(const std::string& site, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(n));
  if (shape.empty()) return {site};
  std::vector<int64_t> index(shape.size(), 0);
  for (int64_t k = 0; k < n; ++k) {
    out.push_back(fmt::format("{}[{}]", site, fmt::join(index, ",")));
    for (size_t d = shape.size(); d-- > 0;) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/// What one chain keeps.
struct ChainRecord {
  std::vector<double> draws;  ///< [S * D], unconstrained
  std::vector<TransitionStats> stats;
  ChainResult result;
};

}  // namespace

Results run_chains(const Kernel& kernel, const ModelRunner& runner, const McmcOptions& options) {
  check_options(options);
  const std::string who(kernel.name());
  const auto sites = model_latent_sites(runner, who, kernel.init_values(), kernel.max_plate_nesting());
  const int64_t dim = latent_dim(sites);
  const int64_t chains = options.chains, warmup = options.warmup, samples = options.samples;
  uint64_t seed = 0;
  if (options.seed) {
    seed = *options.seed;
  } else {
    seed = static_cast<uint64_t>(
        at::randint(int64_t{1} << 62, {}, random::generator_for(torch::kCPU), torch::kLong).item<int64_t>());
  }

  ProgressBoard board(who, chains, warmup, warmup + samples, options.progress);
  std::vector<ChainRecord> records(static_cast<size_t>(chains));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(chains));
  std::atomic<bool> stop{false};

  const auto run_chain = [&](int64_t c) {
    try {
      const uint64_t chain_seed = mix(seed + mix(static_cast<uint64_t>(c)));
      random::SeedScope seeded(chain_seed);
      torch::AutoGradMode grad_mode(true);
      ModelPotential potential(runner, sites);
      std::mt19937_64 init_rng(mix(chain_seed ^ 0x5eedULL));
      auto q0 = initial_point(potential, sites, kernel.init_radius(), who, init_rng);
      auto chain = kernel.chain(potential, mix(chain_seed));
      auto& record = records[static_cast<size_t>(c)];
      record.draws.reserve(static_cast<size_t>(samples * dim));
      record.stats.reserve(static_cast<size_t>(samples));
      const auto begin = Clock::now();
      std::optional<ValidationScope> unchecked;
      if (!options.validate_transitions) unchecked.emplace(false);
      chain->start(std::move(q0), warmup);
      auto sampling_begin = begin;
      int64_t divergences = 0;
      for (int64_t i = 0; i < warmup + samples && !stop.load(std::memory_order_relaxed); ++i) {
        if (i == warmup) {
          sampling_begin = Clock::now();
          divergences = 0;
        }
        const auto stats = chain->step();
        divergences += stats.diverging ? 1 : 0;
        if (i < warmup) {
          record.result.warmup_divergences += stats.diverging ? 1 : 0;
        } else {
          const auto& q = chain->position();
          record.draws.insert(record.draws.end(), q.begin(), q.end());
          record.stats.push_back(stats);
        }
        board.update(c, i + 1, divergences, chain->step_size());
      }
      const auto end = Clock::now();
      record.result.step_size = chain->step_size();
      const auto inverse = chain->inverse_mass_matrix();
      auto metric = torch::tensor(inverse, torch::kDouble);
      if (static_cast<int64_t>(inverse.size()) != dim) metric = metric.reshape({dim, dim});
      record.result.inverse_mass_matrix = metric;
      record.result.warmup_seconds = std::chrono::duration<double>(sampling_begin - begin).count();
      record.result.sampling_seconds = std::chrono::duration<double>(end - sampling_begin).count();
    } catch (...) {
      errors[static_cast<size_t>(c)] = std::current_exception();
      stop = true;
    }
  };

  if (options.parallel && chains > 1) {
    std::vector<std::thread> threads;
    threads.reserve(static_cast<size_t>(chains));
    for (int64_t c = 0; c < chains; ++c)
      threads.emplace_back([&run_chain, c] {
        SingleIntraOpThread one_thread;
        run_chain(c);
      });
    for (auto& t : threads) t.join();
  } else {
    for (int64_t c = 0; c < chains && !stop; ++c) run_chain(c);
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);

  Results out;
  out.done_ = true;
  torch::NoGradGuard no_grad;
  std::vector<double> all;
  all.reserve(static_cast<size_t>(chains * samples * dim));
  for (const auto& r : records) all.insert(all.end(), r.draws.begin(), r.draws.end());
  const auto u = torch::tensor(all, torch::kDouble).reshape({chains * samples, dim});
  const auto values = constrain(sites, u);
  for (size_t i = 0; i < sites.size(); ++i) {
    auto shape = sites[i].shape;
    shape.insert(shape.begin(), {chains, samples});
    out.samples_[sites[i].name] = values[i].first.to(sites[i].options.dtype()).reshape(shape);
  }
  const auto stat = [&](const auto& field) {
    std::vector<double> v;
    v.reserve(static_cast<size_t>(chains * samples));
    for (const auto& r : records)
      for (const auto& s : r.stats) v.push_back(field(s));
    return torch::tensor(v, torch::kDouble).reshape({chains, samples});
  };
  out.stats_["accept_prob"] = stat([](const TransitionStats& s) { return s.accept_prob; });
  out.stats_["diverging"] = stat([](const TransitionStats& s) { return s.diverging ? 1.0 : 0.0; });
  out.stats_["num_steps"] = stat([](const TransitionStats& s) { return static_cast<double>(s.num_steps); });
  out.stats_["tree_depth"] = stat([](const TransitionStats& s) { return static_cast<double>(s.tree_depth); });
  out.stats_["energy"] = stat([](const TransitionStats& s) { return s.energy; });
  out.stats_["step_size"] = stat([](const TransitionStats& s) { return s.step_size; });
  for (auto& r : records) out.chains_.push_back(std::move(r.result));
  return out;
}

// ------------------------------------------------------------------ results

void Results::require_run() const {
  if (!done_) throw Error("Mcmc: no draws yet; call run(args...) first");
}

const std::map<std::string, torch::Tensor>& Results::samples() const {
  require_run();
  return samples_;
}

std::map<std::string, torch::Tensor> Results::flat_samples() const {
  require_run();
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, v] : samples_) out[name] = v.flatten(0, 1);
  return out;
}

const std::map<std::string, torch::Tensor>& Results::sample_stats() const {
  require_run();
  return stats_;
}

const std::vector<ChainResult>& Results::chains() const {
  require_run();
  return chains_;
}

int64_t Results::divergences() const {
  require_run();
  return static_cast<int64_t>(stats_.at("diverging").sum().item<double>());
}

Summary Results::summary(const std::vector<double>& probs) const {
  require_run();
  for (double p : probs)
    if (!(p >= 0 && p <= 1)) throw ArgumentError(fmt::format("Mcmc::summary: quantile {} is not in [0, 1]", p));
  Summary s;
  s.probs = probs;
  const auto& diverging = stats_.at("diverging");
  s.chains = diverging.size(0);
  s.draws = diverging.size(1);
  for (const auto& [name, v] : samples_) {
    const auto shape = v.sizes().slice(2).vec();
    const auto flat = v.to(torch::kDouble).reshape({s.chains, s.draws, -1}).contiguous();
    const auto names = element_names(name, shape);
    const auto* data = flat.data_ptr<double>();
    const auto k = static_cast<int64_t>(names.size());
    for (int64_t e = 0; e < k; ++e) {
      Chains chains(static_cast<size_t>(s.chains), std::vector<double>(static_cast<size_t>(s.draws)));
      for (int64_t c = 0; c < s.chains; ++c)
        for (int64_t i = 0; i < s.draws; ++i) chains[c][i] = data[(c * s.draws + i) * k + e];
      s.rows.push_back(summarize(names[static_cast<size_t>(e)], chains, probs));
    }
  }
  for (int64_t c = 0; c < s.chains; ++c) {
    const auto& r = chains_[static_cast<size_t>(c)];
    s.divergences.push_back(static_cast<int64_t>(diverging[c].sum().item<double>()));
    s.step_size.push_back(r.step_size);
    s.mean_accept_prob.push_back(stats_.at("accept_prob")[c].mean().item<double>());
    s.mean_tree_depth.push_back(stats_.at("tree_depth")[c].mean().item<double>());
    s.warmup_seconds.push_back(r.warmup_seconds);
    s.sampling_seconds.push_back(r.sampling_seconds);
  }
  return s;
}

}  // namespace mcmc
}  // namespace ppl::infer
