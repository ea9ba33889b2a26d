// `ppl one-shot RUN`: DooD's one-shot classification (seed 000, Eq. 18-21)
// on the Omniglot 20-way 1-shot runs, or on tasks drawn from a labelled
// dataset; accuracy with its standard error as JSON, every query's scores
// as JSON (for paired comparisons of two runs) and a picture of one task.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <tuple>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/core/random.hpp>
#include <ppl/core/reflect.hpp>
#include <ppl/programs/dood/one_shot.hpp>
#include <ppl/runtime/data/registry.hpp>

#include "commands.hpp"
#include "progress.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {
namespace rd = ppl::runtime::data;
namespace dood = ppl::programs::dood;

struct OneShotArgs {
  std::string run;
  std::string runs;       // zip or folder of the one-shot runs
  std::string from_data;  // a labelled dataset instead
  std::string split = "test";
  int64_t episodes = 10;
  int64_t ways = 20;
  int64_t max_tasks = 0;
  std::string protocol = "authors";
  // The search's flags: each overrides the protocol's value where given.
  dood::OneShotOptions flags = dood::OneShotOptions::defaults();
  std::string motor_noise, renderer;
  std::vector<std::string> given;  // the options fields whose flags were given
  std::string scores_file;
  int64_t png_task = 0;
  std::string device;
  std::string data_dir;
  uint64_t seed = 0;
  bool resume = false;
};

/// One C-way task: a support per class and queries with their classes.
struct Task {
  std::string name;
  torch::Tensor support;  // [C, H, W]
  torch::Tensor queries;  // [Q, H, W]
  torch::Tensor answers;  // [Q] int64, index into support
};

std::vector<Task> omniglot_tasks(const OneShotArgs& a, int64_t size, std::string& source) {
  std::filesystem::path path = a.runs;
  if (path.empty()) {
    try {
      path = rd::find_one_shot_runs(
          data_roots(a.data_dir));
    } catch (const rd::DataError& e) {
      throw UsageError(fmt::format("one-shot: {}; pass --runs FILE.zip or set PPL_DATA", e.what()));
    }
  } else if (!std::filesystem::exists(path)) {
    throw UsageError(fmt::format("one-shot: --runs {} does not exist", path.string()));
  }
  source = path.string();
  std::vector<Task> tasks;
  try {
    for (auto& r : rd::read_one_shot_runs(path))
      tasks.push_back({r.name, rd::resize_images(r.support, size, size).clamp(0, 1),
                       rd::resize_images(r.queries, size, size).clamp(0, 1), r.answers});
  } catch (const rd::DataError& e) {
    throw UsageError(fmt::format("one-shot: {}", e.what()));
  }
  return tasks;
}

/// `episodes` tasks of min(ways, classes) classes from a labelled dataset:
/// per class one support and one other image as the query.
std::vector<Task> data_tasks(const OneShotArgs& a, const Run& run, std::string& source) {
  const auto size = run.program->image_size();
  auto data = load_image_data(a.from_data, a.split, a.data_dir.empty() ? run.train.data_dir : a.data_dir, 0, size);
  if (!data.labels.defined())
    throw UsageError(fmt::format("one-shot: --from-data {} has no labels", a.from_data));
  if (data.images.size(-1) != size)
    throw UsageError(fmt::format("one-shot: --from-data {} has {}x{} images, but the run's program expects {}x{}",
                                 a.from_data, data.images.size(-2), data.images.size(-1), size, size));
  source = data.name;
  std::map<int64_t, std::vector<int64_t>> by_class;
  auto labels = data.labels.cpu();
  for (int64_t i = 0; i < labels.size(0); ++i) by_class[labels[i].item<int64_t>()].push_back(i);
  std::vector<int64_t> classes;
  for (const auto& [label, items] : by_class)
    if (items.size() >= 2) classes.push_back(label);
  if (classes.size() < 2)
    throw UsageError(fmt::format("one-shot: --from-data {} has {} classes with two or more images, but a task needs 2",
                                 a.from_data, classes.size()));
  const auto ways = std::min<int64_t>(a.ways, static_cast<int64_t>(classes.size()));
  std::mt19937_64 rng(a.seed);
  std::vector<Task> tasks;
  for (int64_t e = 0; e < a.episodes; ++e) {
    std::shuffle(classes.begin(), classes.end(), rng);
    std::vector<int64_t> support, query;
    for (int64_t c = 0; c < ways; ++c) {
      auto items = by_class[classes[c]];
      std::shuffle(items.begin(), items.end(), rng);
      support.push_back(items[0]);
      query.push_back(items[1]);
    }
    auto pick = [&](const std::vector<int64_t>& idx) {
      return data.images.index_select(0, torch::tensor(idx, torch::kLong)).squeeze(1);
    };
    tasks.push_back({fmt::format("episode{:02d}", e + 1), pick(support), pick(query), torch::arange(ways, torch::kLong)});
  }
  return tasks;
}

/// A picture of one task, one column per class: the support (row 1), the
/// query of that class (row 2) and the support it was given, framed green
/// when right and red when wrong (row 3).
void save_task_png(const std::filesystem::path& path, const Task& task, const torch::Tensor& predictions) {
  const int64_t c = task.support.size(0);
  auto rgb = [](const torch::Tensor& gray) { return gray.unsqueeze(0).expand({3, -1, -1}).clone(); };
  std::vector<torch::Tensor> rows[3];
  for (int64_t j = 0; j < c; ++j) {
    rows[0].push_back(rgb(task.support[j].cpu()));
    auto blank = torch::zeros_like(rows[0].back());
    const auto hits = (task.answers == j).nonzero();
    if (hits.size(0) == 0) {
      rows[1].push_back(blank);
      rows[2].push_back(blank);
      continue;
    }
    const auto q = hits[0][0].item<int64_t>();
    const auto chosen = predictions[q].item<int64_t>();
    rows[1].push_back(rgb(task.queries[q].cpu()));
    auto framed = rgb(task.support[chosen].cpu());
    auto colour = chosen == j ? torch::tensor({0.1f, 0.9f, 0.1f}) : torch::tensor({0.95f, 0.1f, 0.1f});
    const int64_t h = framed.size(1), w = framed.size(2), b = std::max<int64_t>(1, h / 25);
    auto paint = [&](torch::Tensor region) { region.copy_(colour.view({3, 1, 1}).expand_as(region)); };
    paint(framed.narrow(1, 0, b));
    paint(framed.narrow(1, h - b, b));
    paint(framed.narrow(2, 0, b));
    paint(framed.narrow(2, w - b, b));
    rows[2].push_back(framed);
  }
  std::vector<torch::Tensor> all;
  for (auto& row : rows) all.insert(all.end(), row.begin(), row.end());
  save_image_grid(path, torch::stack(all), c);
}

/// The flags of the search, each with the options field it sets.
constexpr std::array<std::pair<const char*, const char*>, 13> kSearchFlags = {{{"particles", "--particles"},
                                                                               {"draws", "--draws"},
                                                                               {"steps", "--steps"},
                                                                               {"learning_rate", "--lr"},
                                                                               {"motor_sd", "--motor-sd"},
                                                                               {"motor_noise", "--motor-noise"},
                                                                               {"renderer", "--renderer"},
                                                                               {"shift", "--shift"},
                                                                               {"scale_low", "--scale-low"},
                                                                               {"scale_high", "--scale-high"},
                                                                               {"rotation", "--rotation"},
                                                                               {"shear", "--shear"},
                                                                               {"batch", "--batch"}}};

/// The protocol's options with the flags given on the command line in
/// place of its values; UsageError naming the flag and its value.
dood::OneShotOptions one_shot_options(const OneShotArgs& a) {
  auto flag_of = [](const std::string& message) {
    for (const auto& [field, flag] : kSearchFlags)
      if (message.find(fmt::format(" {} is ", field)) != std::string::npos) return std::string(flag);
    return std::string("--protocol");
  };
  try {
    auto o = dood::OneShotOptions::preset(nlohmann::json(a.protocol).get<dood::OneShotProtocol>());
    const auto& f = a.flags;
    auto given = [&](const char* field) { return std::find(a.given.begin(), a.given.end(), field) != a.given.end(); };
    if (given("particles")) o.particles = f.particles;
    if (given("draws")) o.draws = f.draws;
    if (given("steps")) o.steps = f.steps;
    if (given("learning_rate")) o.learning_rate = f.learning_rate;
    if (given("motor_sd")) o.motor_sd = f.motor_sd;
    if (given("motor_noise")) o.motor_noise = nlohmann::json(a.motor_noise).get<dood::MotorNoise>();
    if (given("renderer")) o.renderer = nlohmann::json(a.renderer).get<dood::TokenRenderer>();
    if (given("shift")) o.shift = f.shift;
    if (given("scale_low")) o.scale_low = f.scale_low;
    if (given("scale_high")) o.scale_high = f.scale_high;
    if (given("rotation")) o.rotation = f.rotation;
    if (given("shear")) o.shear = f.shear;
    if (given("batch")) o.batch = f.batch;
    o.check();
    return o;
  } catch (const ArgumentError& e) {
    throw UsageError(fmt::format("one-shot: {} ({})", e.what(), flag_of(e.what())));
  }
}

/// Thrown from the progress callback on Ctrl-C / SIGTERM: the search stops
/// within a batch of pairs, keeping the tasks finished before it.
struct SearchInterrupted {
  std::size_t finished;  // tasks in the partial file
  std::string partial;
};

/// The states of the generators a search draws from: the thread's seeded CPU
/// generator, torch's default CPU one and, on a GPU, its default there. Saved
/// after each task, so a resumed search draws what an uninterrupted one would.
nlohmann::json generator_states(const torch::Device& device) {
  auto state_of = [](at::Generator g) {
    const auto t = random::generator_state(g).contiguous();
    const auto* bytes = t.data_ptr<uint8_t>();
    return std::vector<uint8_t>(bytes, bytes + t.numel());
  };
  nlohmann::json j;
  if (auto g = random::generator_for(torch::kCPU)) j["thread_cpu"] = state_of(*g);
  j["default_cpu"] = state_of(at::detail::getDefaultCPUGenerator());
  if (!device.is_cpu()) j["default_device"] = state_of(at::globalContext().defaultGenerator(device));
  return j;
}

/// Restores the states saved by generator_states (read back from `path`),
/// each checked (kind and size) before any is set.
void restore_generator_states(const std::map<std::string, torch::Tensor>& saved, const torch::Device& device,
                              const std::string& path) {
  std::vector<std::tuple<at::Generator, torch::Tensor, std::string>> states;
  auto add = [&](at::Generator g, const std::string& key) {
    const auto it = saved.find(key);
    auto what = fmt::format("one-shot: --resume: {} (\"generators\".\"{}\")", path, key);
    random::check_generator_state(g, it == saved.end() ? nullptr : &it->second, what);
    states.emplace_back(g, it->second, std::move(what));
  };
  if (saved.count("thread_cpu"))
    if (auto g = random::generator_for(torch::kCPU)) add(*g, "thread_cpu");
  add(at::detail::getDefaultCPUGenerator(), "default_cpu");
  if (!device.is_cpu() && saved.count("default_device"))
    add(at::globalContext().defaultGenerator(device), "default_device");
  for (auto& [g, t, what] : states) random::set_generator_state(g, t, what);
}

/// What an unfinished search must share with the command that resumes it.
nlohmann::json search_identity(const OneShotArgs& a, const dood::OneShotOptions& options, const std::string& source,
                               const torch::Device& device) {
  nlohmann::json j = {{"source", source},
                      {"protocol", a.protocol},
                      {"options", options_to_json(options)},
                      {"seed", a.seed},
                      {"device", device.str()}};
  if (!a.from_data.empty()) j.update({{"split", a.split}, {"episodes", a.episodes}, {"ways", a.ways}});
  return j;
}

/// The finished tasks of an unfinished search, read back for --resume.
struct Partial {
  nlohmann::json tasks = nlohmann::json::array(), queries = nlohmann::json::array();
  double seconds = 0;
  // What the finished tasks add up to: their queries and the right ones,
  // and the (query, psi_k) pairs they optimised.
  dood::Accuracy accuracy{0, 0};
  int64_t pairs = 0;
  std::map<std::string, torch::Tensor> generators;  // generator_states' bytes
};

Partial read_partial(const std::filesystem::path& path, const nlohmann::json& identity,
                     const std::vector<Task>& tasks, int64_t particles) {
  nlohmann::json j;
  try {
    std::ifstream in(path);
    j = nlohmann::json::parse(in);
    for (const auto& [key, value] : identity.items())
      if (j.at("search").at(key) != value)
        throw UsageError(fmt::format("one-shot: --resume: {} was made with {} {}, but this command has {}; resume "
                                     "with the same {}, or delete the file to start afresh",
                                     path.string(), key, j.at("search").at(key).dump(), value.dump(), key));
    Partial p;
    p.tasks = j.at("tasks");
    p.queries = j.at("queries");
    p.seconds = j.at("seconds").get<double>();
    for (const auto& [key, value] : j.at("generators").items()) {
      auto bytes = value.get<std::vector<uint8_t>>();
      p.generators[key] =
          torch::from_blob(bytes.data(), {static_cast<int64_t>(bytes.size())}, torch::kUInt8).clone();
    }
    if (p.tasks.size() > tasks.size())
      throw UsageError(fmt::format("one-shot: --resume: {} holds {} finished tasks, but this command has {}",
                                   path.string(), p.tasks.size(), tasks.size()));
    for (std::size_t i = 0; i < p.tasks.size(); ++i)
      if (p.tasks[i].at("name").get<std::string>() != tasks[i].name)
        throw UsageError(fmt::format("one-shot: --resume: task {} of {} is {}, but this command's is {}", i + 1,
                                     path.string(), p.tasks[i].at("name").dump(), tasks[i].name));
    for (const auto& t : p.tasks) p.pairs += t.at("queries").get<int64_t>() * t.at("ways").get<int64_t>() * particles;
    for (const auto& q : p.queries) p.accuracy.correct += q.at("correct").get<bool>();
    p.accuracy.queries = static_cast<int64_t>(p.queries.size());
    return p;
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("one-shot: --resume: cannot read {}: {}; delete it to start afresh", path.string(),
                                 e.what()));
  }
}

void one_shot(const OneShotArgs& a) {
  const auto options = one_shot_options(a);
  auto run = open_run(a.run, a.device);
  auto* program = dynamic_cast<dood::Dood*>(run.program.get());
  if (!program)
    throw UsageError(fmt::format("one-shot: {} is a run of {}, but one-shot classification needs a dood run", a.run,
                                 run.program->name()));
  std::string source;
  auto tasks = a.from_data.empty() ? omniglot_tasks(a, program->image_size(), source) : data_tasks(a, run, source);
  if (a.max_tasks > 0 && static_cast<int64_t>(tasks.size()) > a.max_tasks) tasks.resize(a.max_tasks);
  if (a.png_task < 0 || a.png_task >= static_cast<int64_t>(tasks.size()))
    throw UsageError(fmt::format("one-shot: --png-task {} is outside the {} tasks", a.png_task, tasks.size()));

  // After each task the finished ones and the generators' states go to
  // `partial_path`, so a killed search loses at most the task it was in.
  const auto stem = a.from_data.empty() ? std::string("one_shot") : fmt::format("one_shot_{}", a.from_data);
  const auto partial_path = run.dir / (stem + ".partial.json");
  const auto identity = search_identity(a, options, source, run.device);
  const bool unfinished = std::filesystem::exists(partial_path);
  if (unfinished && !a.resume)
    throw UsageError(fmt::format("one-shot: {} holds the finished tasks of an unfinished search; pass --resume to "
                                 "continue it, or delete it to start afresh",
                                 partial_path.string()));
  if (!unfinished && a.resume)
    throw UsageError(fmt::format("one-shot: --resume needs the unfinished search {}; none found (the last search of "
                                 "this run finished, or none was started)",
                                 partial_path.string()));
  auto partial = unfinished ? read_partial(partial_path, identity, tasks, options.particles) : Partial{};

  int64_t total = 0;
  for (const auto& t : tasks) total += t.queries.size(0) * t.support.size(0) * options.particles;
  random::SeedScope seed(a.seed);
  if (unfinished) {
    restore_generator_states(partial.generators, run.device, partial_path.string());
    std::fprintf(stderr, "one-shot: resuming %s after %zu of %zu tasks\n", partial_path.string().c_str(),
                 partial.tasks.size(), tasks.size());
  }
  dood::Accuracy overall = partial.accuracy;
  int64_t done = partial.pairs;
  ProgressBar bar(fmt::format("one-shot {} K={} draws={} steps={}", a.protocol, options.particles, options.draws,
                              options.steps),
                  total, done);
  install_interrupt_handler();
  const auto begin = std::chrono::steady_clock::now();
  auto seconds_so_far = [&] {
    return partial.seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  };
  nlohmann::json per_task = partial.tasks, per_query = partial.queries;
  torch::Tensor png_predictions;
  if (a.png_task < static_cast<int64_t>(per_task.size()))
    png_predictions = torch::tensor(per_task[a.png_task].at("predictions").get<std::vector<int64_t>>(), torch::kLong);
  for (std::size_t i = per_task.size(); i < tasks.size(); ++i) {
    const auto& task = tasks[i];
    const auto status =
        fmt::format("{} ({}/{}), accuracy so far {}/{}", task.name, i + 1, tasks.size(), overall.correct, overall.queries);
    const auto task_begin = std::chrono::steady_clock::now();
    auto scores = dood::one_shot_scores(*program, task.support.to(run.device), task.queries.to(run.device), options,
                                        [&](int64_t n, int64_t) {
                                          if (interrupted()) throw SearchInterrupted{i, partial_path.string()};
                                          bar.update(done + n, status);
                                        });
    done += task.queries.size(0) * task.support.size(0) * options.particles;
    scores = scores.to(torch::kCPU, torch::kDouble);
    auto predictions = dood::classify(scores);
    const dood::Accuracy accuracy{(predictions == task.answers).sum().item<int64_t>(), task.queries.size(0)};
    overall.correct += accuracy.correct;
    overall.queries += accuracy.queries;
    if (static_cast<int64_t>(i) == a.png_task) png_predictions = predictions;
    const auto as_vector = [](const torch::Tensor& t) {
      auto c = t.contiguous();
      return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
    };
    for (int64_t q = 0; q < task.queries.size(0); ++q) {
      auto row = scores[q].contiguous();
      per_query.push_back({{"task", task.name},
                           {"query", q},
                           {"answer", task.answers[q].item<int64_t>()},
                           {"prediction", predictions[q].item<int64_t>()},
                           {"correct", predictions[q].item<int64_t>() == task.answers[q].item<int64_t>()},
                           {"scores", std::vector<double>(row.data_ptr<double>(), row.data_ptr<double>() + row.numel())}});
    }
    per_task.push_back(
        {{"name", task.name},
         {"ways", task.support.size(0)},
         {"queries", accuracy.queries},
         {"correct", accuracy.correct},
         {"accuracy", accuracy.value()},
         {"standard_error", accuracy.standard_error()},
         {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - task_begin).count()},
         {"predictions", as_vector(predictions)},
         {"answers", as_vector(task.answers)}});
    if (i + 1 < tasks.size()) {
      nlohmann::json saved = {{"search", identity},
                              {"tasks", per_task},
                              {"queries", per_query},
                              {"seconds", seconds_so_far()},
                              {"generators", generator_states(run.device)}};
      write_atomic(partial_path, saved.dump());
    }
  }
  bar.finish(fmt::format("accuracy {}/{}", overall.correct, overall.queries));
  const double seconds = seconds_so_far();
  const auto png = run.dir / (stem + ".png");
  save_task_png(png, tasks[a.png_task], png_predictions);
  const auto scores_path = a.scores_file.empty() ? run.dir / (stem + "_scores.json") : std::filesystem::path(a.scores_file);
  nlohmann::json head = {{"run", a.run},
                         {"source", source},
                         {"task", a.from_data.empty() ? "omniglot one-shot runs" : "generated from a labelled dataset"},
                         {"protocol", a.protocol},
                         {"options", options_to_json(options)},
                         {"seed", a.seed}};
  auto scores_json = head;
  scores_json["score"] = "log p(x_T | x_c) of Eq. 20 per class; the prediction is the highest";
  scores_json["queries"] = per_query;
  write_atomic(scores_path, scores_json.dump(1));
  auto out = head;
  out.update({{"tasks", per_task},
              {"correct", overall.correct},
              {"queries", overall.queries},
              {"accuracy", overall.value()},
              {"standard_error", overall.standard_error()},
              {"seconds", seconds},
              {"png", png.filename().string()},
              {"scores", scores_path.string()}});
  write_atomic(run.dir / (stem + ".json"), out.dump(2));
  std::error_code ignored;
  std::filesystem::remove(partial_path, ignored);
  // On the terminal: accuracies only (the file also has every prediction).
  for (auto& t : out["tasks"]) {
    t.erase("predictions");
    t.erase("answers");
  }
  std::printf("%s\n", out.dump(2).c_str());
}

RegisterCommand register_one_shot{"one-shot", [](CLI::App& app) {
  auto a = std::make_shared<OneShotArgs>();
  auto* cmd = app.add_subcommand(
      "one-shot", "One-shot classification with a trained DooD run (Eq. 18-21): accuracy on the Omniglot 20-way runs");
  cmd->add_option("run", a->run, "run directory of a trained dood")->required();
  cmd->add_option("--runs", a->runs, "zip or folder of the one-shot runs (default: found under the data roots, "
                                     "e.g. ../shared/data/omniglot/one_shot_runs_01-10.zip, or $PPL_DATA)");
  cmd->add_option("--from-data", a->from_data, "draw tasks from this labelled dataset instead (see `ppl data list`)");
  cmd->add_option("--split", a->split, "split of --from-data")->capture_default_str();
  cmd->add_option("--episodes", a->episodes, "tasks drawn with --from-data")->capture_default_str();
  cmd->add_option("--ways", a->ways, "classes per task drawn with --from-data (at most the classes it has)")
      ->capture_default_str();
  cmd->add_option("--max-tasks", a->max_tasks, "evaluate only the first N tasks (0: all)")->capture_default_str();
  const auto authors = dood::OneShotOptions::defaults();
  const auto supplement = dood::OneShotOptions::preset(dood::OneShotProtocol::supplement);
  const auto quick = dood::OneShotOptions::preset(dood::OneShotProtocol::quick);
  cmd->add_option("--protocol", a->protocol,
                  "the search: authors (their released code), supplement (the supplement alone), or quick (the "
                  "authors' scoring with a small search, for checks); the flags below override its values")
      ->capture_default_str();
  const auto three = [](auto x, auto y, auto z) { return fmt::format(" (authors {}, supplement {}, quick {})", x, y, z); };
  cmd->add_option("--particles,--k", a->flags.particles,
                  "types psi_k per support (K of Eq. 20)" + three(authors.particles, supplement.particles, quick.particles));
  cmd->add_option("--draws", a->flags.draws,
                  "guide draws per particle, the particle the best by p(psi, x_c)" +
                      three(authors.draws, supplement.draws, quick.draws));
  cmd->add_option("--steps", a->flags.steps,
                  "gradient steps of the max over the token" + three(authors.steps, supplement.steps, quick.steps));
  cmd->add_option("--lr", a->flags.learning_rate,
                  "learning rate of that maximisation (Adam)" +
                      three(authors.learning_rate, supplement.learning_rate, quick.learning_rate));
  cmd->add_option("--motor-sd", a->flags.motor_sd, fmt::format("sd of the motor noise (all: {})", authors.motor_sd));
  cmd->add_option("--motor-noise", a->motor_noise,
                  "the motor noise's log-density: average (over the drawn strokes) or sum (over every control point)" +
                      three("average", "sum", "average"));
  cmd->add_option("--renderer", a->renderer,
                  "the token's renderer parameters: fixed (the type's) or recomputed (from the token's strokes)" +
                      three("fixed", "recomputed", "fixed"));
  cmd->add_option("--shift", a->flags.shift, "|shift| of the token affine, image widths" +
                                                 three(authors.shift, supplement.shift, quick.shift));
  cmd->add_option("--scale-low", a->flags.scale_low, "lowest scale of the token affine" +
                                                         three(authors.scale_low, supplement.scale_low, quick.scale_low));
  cmd->add_option("--scale-high", a->flags.scale_high,
                  "highest scale of the token affine" + three(authors.scale_high, supplement.scale_high, quick.scale_high));
  const auto angle = [](double radians) { return fmt::format("{:.4g}", radians); };
  cmd->add_option("--rotation", a->flags.rotation,
                  "|rotation| of the token affine, radians" +
                      three(angle(authors.rotation), angle(supplement.rotation), angle(quick.rotation)));
  cmd->add_option("--shear", a->flags.shear,
                  "|shear angle| of the token affine, radians (the matrix holds its tan)" +
                      three(angle(authors.shear), angle(supplement.shear), angle(quick.shear)));
  cmd->add_option("--batch", a->flags.batch, fmt::format("(query, psi_k) pairs optimised at once (all: {})", authors.batch));
  cmd->add_option("--scores", a->scores_file,
                  "where every query's scores go as JSON (default: RUN/one_shot_scores.json, with --from-data "
                  "RUN/one_shot_DATA_scores.json)");
  cmd->add_option("--png-task", a->png_task, "index of the task drawn in RUN/one_shot.png")->capture_default_str();
  cmd->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  cmd->add_option("--data-dir", a->data_dir, "data root searched first");
  cmd->add_option("--seed", a->seed, "random seed")->capture_default_str();
  cmd->add_flag("--resume", a->resume,
                "continue the unfinished search of this run (RUN/one_shot.partial.json) after its last finished task");
  cmd->callback([a, cmd] {
    for (const auto& [field, flag] : kSearchFlags)
      if (cmd->count(flag) > 0) a->given.emplace_back(field);
    try {
      one_shot(*a);
    } catch (const SearchInterrupted& stop) {
      // main exits with 128 + the signal.
      if (stop.finished > 0)
        std::fprintf(stderr, "\none-shot: interrupted; %zu finished task%s kept in %s (continue with --resume)\n",
                     stop.finished, stop.finished == 1 ? "" : "s", stop.partial.c_str());
      else
        std::fprintf(stderr, "\none-shot: interrupted in the first task; nothing to keep\n");
    }
  });
}};

}  // namespace
}  // namespace ppl::cli
