// `ppl trace RUN --data NAME --index I [--json FILE] [--html FILE]`: one
// execution of guide and model on one image, as JSON and as a readable,
// self-contained HTML page.
#include <cstdio>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include <ppl/core/atomic_file.hpp>

#include "commands.hpp"
#include "run.hpp"

namespace ppl::cli {
namespace {

struct TraceArgs {
  std::string run;
  std::string data;
  std::string split = "test";
  int64_t index = 0;
  std::string json;
  std::string html;
  std::string device;
  uint64_t seed = 0;
};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

/// A short text for a tensor: its values when small, else mean / min / max.
std::string summary(const torch::Tensor& t) {
  if (!t.defined()) return "-";
  auto c = t.detach().cpu().to(torch::kDouble).reshape({-1});
  if (c.numel() == 0) return "[]";
  if (c.numel() <= 6) {
    std::vector<std::string> v;
    for (int64_t i = 0; i < c.numel(); ++i) v.push_back(fmt::format("{:.4g}", c[i].item<double>()));
    return fmt::format("[{}]", fmt::join(v, ", "));
  }
  return fmt::format("mean {:.4g}, min {:.4g}, max {:.4g}", c.mean().item<double>(), c.min().item<double>(),
                     c.max().item<double>());
}

std::string site_rows(const Trace& tr, bool params) {
  std::ostringstream out;
  for (const auto& s : tr) {
    if (s.is_random() == params) continue;
    std::vector<std::string> plates;
    for (const auto& p : s.plates) plates.push_back(fmt::format("{}({})@{}", p.name, p.subsample_size, p.dim));
    std::string dist = "-";
    if (s.dist) {
      std::vector<std::string> params;
      for (const auto& [name, value] : s.dist->named_params()) params.push_back(fmt::format("{}: {}", name, summary(value)));
      dist = fmt::format("<b>{}</b><br><small>{}</small>", s.dist->type_name(), escape(fmt::format("{}", fmt::join(params, "; "))));
    }
    out << "<tr><td><code>" << escape(s.name) << "</code></td><td>" << to_string(s.kind) << (s.observed ? " (observed)" : "")
        << (s.reparameterised ? " (reparam.)" : "") << "</td><td>" << dist << "</td><td>"
        << shape_string(s.value.sizes()) << "</td><td>" << escape(summary(s.value)) << "</td><td>"
        << (s.is_random() ? fmt::format("{:.4f}", s.log_prob_sum().item<double>()) : std::string("-")) << "</td><td>"
        << escape(fmt::format("{}", fmt::join(plates, " "))) << "</td><td>" << escape(s.location.short_string())
        << "</td></tr>\n";
  }
  return out.str();
}

std::string figure(const std::string& caption, const torch::Tensor& image) {
  return fmt::format("<figure><img src=\"data:image/png;base64,{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                     png_base64(image), escape(caption), escape(caption));
}

}  // namespace

TraceWritten write_trace(Run& run, const torch::Tensor& image, const TraceSource& a,
                         const std::filesystem::path& json_path, const std::filesystem::path& html_path) {
  const auto& name = a.data;
  auto& program = *run.program;
  auto x = image.to(run.device);
  random::SeedScope seed(a.seed);
  torch::NoGradGuard no_grad;
  auto guide_fn = [&](const torch::Tensor& img) { return program.guide(img); };
  auto model_fn = [&](const torch::Tensor& img) { return program.model(img); };
  auto guide_trace = ppl::trace(guide_fn, x);
  auto model_trace = ppl::trace(handlers::replay(model_fn, guide_trace), x);
  const double elbo = model_trace.log_prob_sum().item<double>() - guide_trace.log_prob_sum().item<double>();

  // Parameters live in checkpoint.bin: the JSON lists them by name and
  // shape and keeps the traces to their random choices.
  nlohmann::json params = nlohmann::json::array();
  std::set<std::string> seen;
  auto random_sites = [&](const Trace& tr) {
    Trace out;
    for (const auto& s : tr) {
      if (s.is_random()) out.add(s);
      else if (seen.insert(s.name).second) params.push_back({{"name", s.name}, {"shape", s.value.sizes().vec()}});
    }
    return out;
  };
  nlohmann::json j = {{"program", program.name()}, {"step", run.step}, {"data", name}, {"split", a.split}, {"index", a.index},
                      {"elbo", elbo}, {"guide", random_sites(guide_trace).to_json()},
                      {"model", random_sites(model_trace).to_json()}};
  j["params"] = params;
  write_atomic(json_path, j.dump());

  std::ostringstream html;
  html << "<!doctype html><html><head><meta charset=\"utf-8\"><title>ppl trace: " << escape(program.name()) << " on "
       << escape(name) << " #" << a.index << "</title><style>"
       << "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}"
       << "td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}th{background:#f0f0f0}"
       << "figure{display:inline-block;margin:0 1em 1em 0;text-align:center}"
       << "img{width:150px;height:150px;image-rendering:pixelated;border:1px solid #888}</style></head><body>\n";
  html << "<h1>Trace of <code>" << escape(program.name()) << "</code> on " << escape(name) << " " << escape(a.split)
       << " image " << a.index << "</h1>\n";
  html << "<p>Run <code>" << escape(run.dir.string()) << "</code>; one guide draw z ~ q(z|x), the model replayed at z. "
       << fmt::format("log p(x, z) - log q(z | x) = <b id=\"elbo\">{:.3f}</b>", elbo) << ".</p>\n<div id=\"images\">";
  html << figure("input x", x[0].cpu());
  html << figure("reconstruction", model_trace.result<torch::Tensor>()[0].clamp(0, 1).cpu());
  auto steps = program.step_canvases(model_trace);
  for (int64_t t = 0; steps.defined() && t < steps.size(0); ++t)
    html << figure(fmt::format("canvas after step {}", t + 1), steps[t][0].cpu());
  html << "</div>\n";
  const std::string header =
      "<tr><th>site</th><th>kind</th><th>distribution</th><th>shape</th><th>value</th><th>log_prob</th><th>plates</th>"
      "<th>source</th></tr>\n";
  html << "<h2>Guide sites</h2><table id=\"guide\">" << header << site_rows(guide_trace, false) << "</table>\n";
  html << "<h2>Model sites</h2><table id=\"model\">" << header << site_rows(model_trace, false) << "</table>\n";
  html << "<details><summary>Parameters (" << params.size() << ")</summary><table id=\"params\">"
       << header << site_rows(guide_trace, true) << "</table></details>\n";
  html << "<p>Full values: <code>" << escape(json_path.filename().string()) << "</code> (ppl.trace JSON).</p></body></html>\n";
  write_atomic(html_path, html.str());
  return {elbo, model_trace.format_shapes()};
}

namespace {

void run_trace(const TraceArgs& a) {
  auto run = open_run(a.run, a.device);
  const auto name = a.data.empty() ? run.train.data : a.data;
  const auto data = load_image_at("trace", name, a.split, run.train.data_dir, a.index, run.program->image_size());
  const auto json_path =
      a.json.empty() ? run.dir / fmt::format("trace_{}_{}.json", name, a.index) : std::filesystem::path(a.json);
  const auto html_path =
      a.html.empty() ? run.dir / fmt::format("trace_{}_{}.html", name, a.index) : std::filesystem::path(a.html);
  const auto written = write_trace(run, data.images, {name, a.split, a.index, a.seed}, json_path, html_path);
  std::printf("%selbo %.3f\nwrote %s and %s\n", written.shapes.c_str(), written.elbo, json_path.string().c_str(),
              html_path.string().c_str());
}

RegisterCommand register_trace{"trace", [](CLI::App& app) {
  auto a = std::make_shared<TraceArgs>();
  auto* cmd = app.add_subcommand("trace", "One execution trace of guide and model on one image, as JSON and HTML");
  cmd->add_option("run", a->run, "run directory")->required();
  cmd->add_option("--data", a->data, "dataset (default: the run's)");
  cmd->add_option("--split", a->split, "train or test")->capture_default_str();
  cmd->add_option("--index", a->index, "image index in the split")->capture_default_str();
  cmd->add_option("--json", a->json, "JSON file (default: RUN/trace_DATA_I.json)");
  cmd->add_option("--html", a->html, "HTML file (default: RUN/trace_DATA_I.html)");
  cmd->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  cmd->add_option("--seed", a->seed, "random seed")->capture_default_str();
  cmd->callback([a] { run_trace(*a); });
}};

}  // namespace
}  // namespace ppl::cli
