// Traces, their JSON form and the shapes table; tensors as JSON.
#include <cmath>
#include <limits>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/check.hpp>
#include <ppl/core/tensor_json.hpp>
#include <ppl/core/trace.hpp>

namespace ppl {

// ------------------------------------------------------------------ tensor JSON

namespace {

struct DtypeName {
  torch::ScalarType type;
  const char* name;
};
constexpr DtypeName kDtypes[] = {{torch::kFloat, "float32"}, {torch::kDouble, "float64"}, {torch::kHalf, "float16"},
                                 {torch::kBFloat16, "bfloat16"}, {torch::kLong, "int64"}, {torch::kInt, "int32"},
                                 {torch::kShort, "int16"}, {torch::kChar, "int8"}, {torch::kByte, "uint8"},
                                 {torch::kBool, "bool"}};

const char* dtype_name(torch::ScalarType t) {
  for (auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw Error(fmt::format("tensor JSON: unsupported dtype {}", c10::toString(t)));
}

torch::ScalarType dtype_from_name(const std::string& s) {
  for (auto& d : kDtypes)
    if (s == d.name) return d.type;
  throw Error(fmt::format("tensor JSON: unknown dtype \"{}\"", s));
}

nlohmann::json number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}

double number_from(const nlohmann::json& j) {
  if (j.is_string()) {
    const auto s = j.get<std::string>();
    if (s == "nan") return NAN;
    if (s == "inf") return INFINITY;
    if (s == "-inf") return -INFINITY;
    throw Error(fmt::format("tensor JSON: \"{}\" is not a number", s));
  }
  return j.get<double>();
}

template <class T, class F>
nlohmann::json nest(const T* data, c10::IntArrayRef shape, size_t dim, size_t& pos, F convert) {
  if (dim == shape.size()) return convert(data[pos++]);
  auto arr = nlohmann::json::array();
  for (int64_t i = 0; i < shape[dim]; ++i) arr.push_back(nest(data, shape, dim + 1, pos, convert));
  return arr;
}

void flatten(const nlohmann::json& j, std::vector<const nlohmann::json*>& out) {
  if (j.is_array()) {
    for (const auto& e : j) flatten(e, out);
  } else {
    out.push_back(&j);
  }
}

}  // namespace

int64_t json_whole_number(const nlohmann::json& j, std::string_view what) {
  if (j.is_number_integer() && !(j.is_number_unsigned() && j.get<uint64_t>() > uint64_t{INT64_MAX}))
    return j.get<int64_t>();
  throw Error(fmt::format("{} is {}, but must be a whole number of at most {}", what, j.dump(), INT64_MAX));
}

nlohmann::json tensor_to_json(const torch::Tensor& t) {
  nlohmann::json j;
  if (!t.defined()) return nullptr;
  const auto c = t.detach().to(torch::kCPU).contiguous();
  j["dtype"] = dtype_name(c.scalar_type());
  j["shape"] = c.sizes().vec();
  size_t pos = 0;
  if (c.scalar_type() == torch::kBool) {
    auto b = c.to(torch::kByte);
    j["data"] = nest(b.data_ptr<uint8_t>(), c.sizes(), 0, pos, [](uint8_t v) { return nlohmann::json(v != 0); });
  } else if (c10::isIntegralType(c.scalar_type(), false)) {
    auto l = c.to(torch::kLong);
    j["data"] = nest(l.data_ptr<int64_t>(), c.sizes(), 0, pos, [](int64_t v) { return nlohmann::json(v); });
  } else {
    auto d = c.to(torch::kDouble);  // exact for every floating type here
    j["data"] = nest(d.data_ptr<double>(), c.sizes(), 0, pos, number);
  }
  return j;
}

torch::Tensor tensor_from_json(const nlohmann::json& j) {
  if (j.is_null()) return {};
  if (!j.is_object() || !j.contains("dtype") || !j.contains("shape") || !j.contains("data"))
    throw Error("tensor JSON: expected an object with \"dtype\", \"shape\" and \"data\"");
  const auto dtype = dtype_from_name(j.at("dtype").get<std::string>());
  const auto& js = j.at("shape");
  if (!js.is_array()) throw Error(fmt::format("tensor JSON: \"shape\" is {}, but must be an array", js.dump()));
  std::vector<int64_t> shape;
  for (const auto& d : js) shape.push_back(json_whole_number(d, "tensor JSON: a size in \"shape\""));
  std::vector<const nlohmann::json*> flat;
  flatten(j.at("data"), flat);
  // Sizes are checked before they are multiplied (the product never overflows).
  int64_t n = 1;
  for (const auto d : shape) {
    if (d < 0) throw Error(fmt::format("tensor JSON: shape {} has a negative size", shape_string(shape)));
    if (d > 0 && n > std::numeric_limits<int64_t>::max() / d) {
      n = -1;
      break;
    }
    n *= d;
  }
  if (n < 0)
    throw Error(fmt::format("tensor JSON: shape {} needs more values than the {} \"data\" holds", shape_string(shape),
                            flat.size()));
  if (static_cast<int64_t>(flat.size()) != n)
    throw Error(fmt::format("tensor JSON: shape {} needs {} values, but \"data\" holds {}", shape_string(shape), n,
                            flat.size()));
  torch::Tensor out;
  if (dtype == torch::kBool) {
    out = torch::empty({n}, torch::kBool);
    auto* p = out.data_ptr<bool>();
    for (int64_t i = 0; i < n; ++i) p[i] = flat[i]->get<bool>();
  } else if (c10::isIntegralType(dtype, false)) {
    out = torch::empty({n}, torch::kLong);
    auto* p = out.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i) p[i] = json_whole_number(*flat[i], "tensor JSON: a value of an integer tensor");
  } else {
    out = torch::empty({n}, torch::kDouble);
    auto* p = out.data_ptr<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = number_from(*flat[i]);
  }
  return out.to(dtype).reshape(shape);
}

// ------------------------------------------------------------------ Site

const torch::Tensor& Site::log_prob() const {
  if (log_prob_.defined()) return log_prob_;
  if (!is_random()) {
    log_prob_ = torch::zeros({}, value.defined() ? value.options().requires_grad(false) : torch::TensorOptions());
    return log_prob_;
  }
  if (!dist) throw Error(fmt::format("site \"{}\" has no distribution, so its log_prob cannot be computed", name));
  torch::Tensor lp;
  try {
    lp = dist->log_prob(value);
  } catch (const c10::Error& e) {
    // libtorch's own refusal (a dtype its CPU kernels lack, say), as one line naming the site.
    throw Error(fmt::format("site \"{}\": {} log_prob: {}", name, dist->type_name(), e.what_without_backtrace()));
  }
  if (mask.defined()) lp = torch::where(mask, lp, torch::zeros({}, lp.options()));
  if (scale != 1.0) lp = lp * scale;
  if (scale_tensor.defined()) lp = lp * scale_tensor;
  log_prob_ = lp;
  return log_prob_;
}

torch::Tensor Site::log_prob_sum() const {
  const auto& lp = log_prob();
  return lp.dim() == 0 ? lp : lp.sum();
}

// ------------------------------------------------------------------ Trace

void Trace::add(Site site) {
  const auto [it, inserted] = index_.try_emplace(site.name, sites_.size());
  if (!inserted)
    throw SiteError(fmt::format("trace: site \"{}\" is used twice in one execution ({} and {})", site.name,
                                sites_[it->second].location.short_string(), site.location.short_string()));
  sites_.push_back(std::move(site));
}

const Site* Trace::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &sites_[it->second];
}

const Site& Trace::site(const std::string& name) const {
  if (const Site* s = find(name)) return *s;
  std::vector<std::string> names;
  for (const auto& s : sites_) names.push_back(fmt::format("\"{}\"", s.name));
  throw SiteError(fmt::format("trace: no site named \"{}\" (sites: {})", name,
                              names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "))));
}

torch::Tensor Trace::log_prob_sum() const {
  // One stack and one sum for the whole trace: per-site sums and additions
  // would each add an autograd node per site.
  std::vector<torch::Tensor> terms;
  terms.reserve(sites_.size());
  for (const auto& s : sites_)
    if (s.is_random()) terms.push_back(s.log_prob_sum());
  if (terms.empty()) return torch::zeros({});
  if (terms.size() == 1) return terms[0];
  return torch::stack(terms).sum();
}

nlohmann::json Trace::to_json() const {
  nlohmann::json sites = nlohmann::json::array();
  for (const auto& s : sites_) {
    nlohmann::json j;
    j["name"] = s.name;
    j["kind"] = std::string(to_string(s.kind));
    j["observed"] = s.observed;
    j["reparameterised"] = s.reparameterised;
    j["distribution"] = s.dist ? s.dist->to_json() : nlohmann::json(nullptr);
    j["value"] = tensor_to_json(s.value);
    j["log_prob"] = s.is_random() ? tensor_to_json(s.log_prob()) : nlohmann::json(nullptr);
    auto plates = nlohmann::json::array();
    for (const auto& p : s.plates)
      plates.push_back({{"name", p.name}, {"size", p.size}, {"subsample_size", p.subsample_size}, {"dim", p.dim}});
    j["plates"] = std::move(plates);
    j["scale"] = s.scale;
    if (s.scale_tensor.defined()) j["scale_tensor"] = tensor_to_json(s.scale_tensor);
    j["mask"] = tensor_to_json(s.mask);
    if (s.enumeration.active()) {
      auto visible = nlohmann::json::array();
      for (const auto& [d, v] : s.enumeration.visible) visible.push_back({d, v});
      j["enumeration"] = {{"first_dim", s.enumeration.first_dim},
                          {"dim", s.enumeration.dim},
                          {"variable", s.enumeration.variable},
                          {"visible", std::move(visible)}};
    }
    j["location"] = {{"file", std::string(s.location.file())},
                     {"line", s.location.line()},
                     {"function", std::string(s.location.function())}};
    sites.push_back(std::move(j));
  }
  return {{"format", "ppl.trace"}, {"version", 1}, {"sites", std::move(sites)}};
}

Trace Trace::from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("format") || j.at("format") != "ppl.trace")
    throw Error("trace JSON: expected an object with \"format\": \"ppl.trace\"");
  if (!j.contains("version") || j.at("version") != 1)
    throw Error(fmt::format("trace JSON: version {} is not supported (this build reads version 1)",
                            j.contains("version") ? j.at("version").dump() : std::string("(none)")));
  if (!j.contains("sites") || !j.at("sites").is_array())
    throw Error("trace JSON: expected \"sites\": an array of sites");
  Trace trace;
  std::size_t index = 0;
  for (const auto& js : j.at("sites")) {
    Site s;
    // A site without a usable name is named by its place in "sites".
    s.name = js.is_object() && js.contains("name") && js.at("name").is_string() ? js.at("name").get<std::string>()
                                                                                : fmt::format("#{}", index);
    ++index;
    try {
      if (!js.is_object() || !js.contains("name") || !js.at("name").is_string())
        throw Error("expected an object with a string \"name\"");
      const auto kind = js.at("kind").get<std::string>();
      bool known = false;
      for (const auto k : {SiteKind::sample, SiteKind::observe, SiteKind::param, SiteKind::deterministic})
        if (to_string(k) == kind) {
          s.kind = k;
          known = true;
        }
      if (!known)
        throw Error(fmt::format("kind is \"{}\", but must be sample, observe, param or deterministic", kind));
      s.observed = js.value("observed", false);
      s.reparameterised = js.value("reparameterised", false);
      if (!js.at("distribution").is_null()) s.dist = dist::from_json(js.at("distribution"));
      s.value = tensor_from_json(js.at("value"));
      for (const auto& p : js.value("plates", nlohmann::json::array()))
        s.plates.push_back(
            {p.at("name").get<std::string>(), json_whole_number(p.at("size"), "a plate's \"size\""),
             json_whole_number(p.contains("subsample_size") ? p.at("subsample_size") : p.at("size"),
                               "a plate's \"subsample_size\""),
             json_whole_number(p.at("dim"), "a plate's \"dim\"")});
      s.scale = js.value("scale", 1.0);
      if (js.contains("scale_tensor")) s.scale_tensor = tensor_from_json(js.at("scale_tensor"));
      if (js.contains("mask")) s.mask = tensor_from_json(js.at("mask"));
      if (js.contains("enumeration")) {
        const auto& e = js.at("enumeration");
        s.enumeration.first_dim = e.at("first_dim").get<int64_t>();
        s.enumeration.dim = e.value("dim", int64_t{0});
        s.enumeration.variable = e.value("variable", int64_t{-1});
        for (const auto& dv : e.value("visible", nlohmann::json::array()))
          s.enumeration.visible.emplace_back(dv.at(0).get<int64_t>(), dv.at(1).get<int64_t>());
        if (s.enumeration.first_dim >= 0)
          throw Error(fmt::format("enumeration: first_dim is {}, but must be negative", s.enumeration.first_dim));
      }
      if (js.contains("location")) {
        const auto& l = js.at("location");
        const auto line = l.contains("line") ? json_whole_number(l.at("line"), "\"location.line\"") : 0;
        if (line < 0 || line > INT32_MAX) throw Error(fmt::format("\"location.line\" is {}, but must be a line number", line));
        s.location = SourceLocation::owning(l.value("file", ""), static_cast<int>(line), l.value("function", ""));
      }
      if (js.contains("log_prob") && !js.at("log_prob").is_null()) s.set_log_prob(tensor_from_json(js.at("log_prob")));
      if (s.is_random() && !s.dist && (!js.contains("log_prob") || js.at("log_prob").is_null()))
        throw Error(fmt::format("a {} site needs a distribution or a log_prob, and has neither", kind));
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("trace JSON: site \"{}\": {}", s.name, e.what()));
    } catch (const c10::Error& e) {
      // Tensors whose shapes do not go together (a distribution's parameters, say).
      throw Error(fmt::format("trace JSON: site \"{}\": {}", s.name, e.what_without_backtrace()));
    } catch (const Error& e) {
      throw Error(fmt::format("trace JSON: site \"{}\": {}", s.name, e.what()));
    }
    trace.add(std::move(s));
  }
  return trace;
}

std::string Trace::format_shapes() const {
  struct Row {
    std::string name, kind, dist, batch, event, value, log_prob, plates;
  };
  std::vector<Row> rows{{"site", "kind", "dist", "batch", "event", "value", "log_prob", "plates"}};
  for (const auto& s : sites_) {
    Row r;
    r.name = s.name;
    r.kind = std::string(to_string(s.kind)) + (s.observed && s.kind == SiteKind::sample ? "*" : "");
    if (s.enumeration.enumerated()) r.kind += fmt::format(" enum@{}", s.enumeration.dim);
    r.dist = s.dist ? std::string(s.dist->type_name()) : "-";
    r.batch = s.dist ? shape_string(s.dist->batch_shape()) : "-";
    r.event = s.dist ? shape_string(s.dist->event_shape()) : "-";
    r.value = s.value.defined() ? shape_string(s.value.sizes()) : "-";
    r.log_prob = s.is_random() ? shape_string(s.log_prob().sizes()) : "-";
    std::vector<std::string> ps;
    for (const auto& p : s.plates) ps.push_back(fmt::format("{}({})@{}", p.name, p.subsample_size, p.dim));
    r.plates = fmt::format("{}", fmt::join(ps, " "));
    rows.push_back(std::move(r));
  }
  std::array<size_t, 8> width{};
  for (const auto& r : rows) {
    const std::array<const std::string*, 8> f{&r.name, &r.kind, &r.dist, &r.batch, &r.event, &r.value, &r.log_prob, &r.plates};
    for (size_t i = 0; i < 8; ++i) width[i] = std::max(width[i], f[i]->size());
  }
  std::ostringstream out;
  for (const auto& r : rows) {
    const std::array<const std::string*, 8> f{&r.name, &r.kind, &r.dist, &r.batch, &r.event, &r.value, &r.log_prob, &r.plates};
    std::string line;
    for (size_t i = 0; i < 8; ++i) line += fmt::format("{:<{}}  ", *f[i], width[i]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
  return out.str();
}

}  // namespace ppl
