// The parameter store and the tensor archive format.
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <ppl/core/archive.hpp>
#include <ppl/core/atomic_file.hpp>
#include <ppl/core/check.hpp>
#include <ppl/core/param_store.hpp>

namespace ppl {

// ------------------------------------------------------------------ constraints

torch::Tensor constrain(const torch::Tensor& u, ParamConstraint c) {
  switch (c) {
    case ParamConstraint::real: return u;
    case ParamConstraint::positive: return u.exp();
    case ParamConstraint::unit_interval: return torch::sigmoid(u);
  }
  return u;
}

torch::Tensor unconstrain(const torch::Tensor& x, ParamConstraint c) {
  switch (c) {
    case ParamConstraint::real: return x;
    case ParamConstraint::positive: return x.log();
    case ParamConstraint::unit_interval: return torch::log(x) - torch::log1p(-x);
  }
  return x;
}

namespace {
std::string_view constraint_name(ParamConstraint c) {
  switch (c) {
    case ParamConstraint::real: return "real";
    case ParamConstraint::positive: return "positive";
    case ParamConstraint::unit_interval: return "unit_interval";
  }
  return "real";
}
constexpr ParamConstraint kConstraints[] = {ParamConstraint::real, ParamConstraint::positive,
                                            ParamConstraint::unit_interval};
/// The constraint that constraint_name calls `s`; none for another name.
std::optional<ParamConstraint> constraint_from(std::string_view s) {
  for (const auto c : kConstraints)
    if (constraint_name(c) == s) return c;
  return std::nullopt;
}
}  // namespace

// ------------------------------------------------------------------ ParamStore

ParamStore& param_store() {
  static ParamStore store;
  return store;
}

torch::Tensor ParamStore::get_or_create(const std::string& name, const torch::Tensor& init, ParamConstraint c) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    if (!init.defined())
      throw ArgumentError(fmt::format("param: \"{}\" is not in the param store and has no initial value", name));
    if (c != ParamConstraint::real && validation_enabled()) {
      CheckContext ctx{"param", name};
      if (c == ParamConstraint::positive) check::positive(ctx, "init", init);
      else check::elementwise(ctx, "init", init, (init > 0).logical_and(init < 1), "in (0, 1)");
    }
    torch::Tensor u;
    {
      torch::NoGradGuard no_grad;
      u = unconstrain(init.detach(), c).clone();
    }
    u.set_requires_grad(true);
    it = entries_.emplace(name, Entry{u, c}).first;
    order_.push_back(name);
  }
  return constrain(it->second.unconstrained, it->second.constraint);
}

void ParamStore::bind(const std::string& name, torch::Tensor tensor) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    entries_.emplace(name, Entry{tensor, ParamConstraint::real});
    order_.push_back(name);
    return;
  }
  auto& e = it->second;
  if (e.unconstrained.is_same(tensor)) return;
  if (e.unconstrained.sizes() != tensor.sizes())
    throw ShapeError(fmt::format("module: parameter \"{}\" has shape {}, but the param store holds shape {}", name,
                                 shape_string(tensor.sizes()), shape_string(e.unconstrained.sizes())));
  {
    torch::NoGradGuard no_grad;
    tensor.copy_(e.unconstrained);
  }
  e = Entry{tensor, ParamConstraint::real};
}

torch::Tensor ParamStore::at(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end())
    throw SiteError(fmt::format("param_store: no parameter named \"{}\" ({} parameters stored)", name, entries_.size()));
  return constrain(it->second.unconstrained, it->second.constraint);
}

torch::Tensor ParamStore::unconstrained(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(name);
  if (it == entries_.end()) throw SiteError(fmt::format("param_store: no parameter named \"{}\"", name));
  return it->second.unconstrained;
}

bool ParamStore::contains(const std::string& name) const {
  std::lock_guard lock(mutex_);
  return entries_.count(name) > 0;
}

std::vector<std::string> ParamStore::names() const {
  std::lock_guard lock(mutex_);
  return order_;
}

std::vector<torch::Tensor> ParamStore::parameters(const std::vector<std::string>& names) const {
  std::lock_guard lock(mutex_);
  std::vector<torch::Tensor> out;
  for (const auto& n : names.empty() ? order_ : names) {
    auto it = entries_.find(n);
    if (it == entries_.end()) throw SiteError(fmt::format("param_store: no parameter named \"{}\"", n));
    out.push_back(it->second.unconstrained);
  }
  return out;
}

size_t ParamStore::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void ParamStore::clear() {
  std::lock_guard lock(mutex_);
  entries_.clear();
  order_.clear();
}

namespace {
constexpr const char* kStoreKind = "ppl.param_store";
}  // namespace

TensorArchive ParamStore::to_archive() const {
  TensorArchive archive;
  nlohmann::json constraints = nlohmann::json::object();
  {
    std::lock_guard lock(mutex_);
    for (const auto& name : order_) {
      const auto& e = entries_.at(name);
      archive.tensors.emplace_back(name, e.unconstrained.detach().clone());
      constraints[name] = std::string(constraint_name(e.constraint));
    }
  }
  archive.metadata["kind"] = kStoreKind;
  archive.metadata["constraints"] = constraints;
  return archive;
}

void ParamStore::load(const TensorArchive& archive, const std::string& source) {
  const auto kind = archive.metadata.value("kind", std::string(kStoreKind));
  if (kind != kStoreKind)
    throw Error(fmt::format("param_store: {} holds a \"{}\", not a parameter store (\"{}\")", source, kind,
                            kStoreKind));
  const auto constraints = archive.metadata.value("constraints", nlohmann::json::object());
  // Check every name before changing any, so a bad archive leaves the store as it was.
  std::vector<ParamConstraint> parsed;
  parsed.reserve(archive.tensors.size());
  std::lock_guard lock(mutex_);
  for (const auto& [name, t] : archive.tensors) {
    const auto c = constraints.value(name, std::string(constraint_name(ParamConstraint::real)));
    const auto known = constraint_from(c);
    if (!known) {
      std::vector<std::string_view> names;
      for (const auto k : kConstraints) names.push_back(constraint_name(k));
      throw Error(fmt::format("param_store: \"{}\" in {} has the unknown constraint \"{}\" (expected one of {})",
                              name, source, c, fmt::join(names, ", ")));
    }
    parsed.push_back(*known);
    auto it = entries_.find(name);
    if (it != entries_.end() && it->second.unconstrained.sizes() != t.sizes())
      throw ShapeError(fmt::format("param_store: \"{}\" in {} has shape {}, but the store holds shape {}", name,
                                   source, shape_string(t.sizes()), shape_string(it->second.unconstrained.sizes())));
  }
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < archive.tensors.size(); ++i) {
    const auto& [name, t] = archive.tensors[i];
    auto it = entries_.find(name);
    if (it != entries_.end()) {
      it->second.unconstrained.copy_(t);
      it->second.constraint = parsed[i];
    } else {
      auto u = t.detach().clone();
      u.set_requires_grad(true);
      entries_.emplace(name, Entry{u, parsed[i]});
      order_.push_back(name);
    }
  }
}

void ParamStore::save(const std::filesystem::path& path) const { save_archive(to_archive(), path); }

void ParamStore::load(const std::filesystem::path& path) { load(load_archive(path), path.string()); }

// ------------------------------------------------------------------ archive

namespace {
constexpr char kMagic[8] = {'P', 'P', 'L', 'T', 'E', 'N', 'S', '1'};
}

const torch::Tensor& TensorArchive::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  throw Error(fmt::format("archive: no tensor named \"{}\"", name));
}

void save_archive(const TensorArchive& archive, const std::filesystem::path& path) {
  nlohmann::json header;
  header["metadata"] = archive.metadata;
  header["tensors"] = nlohmann::json::array();
  std::vector<torch::Tensor> blobs;
  uint64_t offset = 0;
  for (const auto& [name, t] : archive.tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = c.numel() * c.element_size();
    header["tensors"].push_back({{"name", name},
                                 {"dtype", std::string(c10::toString(c.scalar_type()))},
                                 {"shape", c.sizes().vec()},
                                 {"offset", offset},
                                 {"bytes", bytes}});
    offset += bytes;
    blobs.push_back(c);
  }
  const auto text = header.dump();
  const uint64_t length = text.size();

  write_atomic(path, [&](std::ostream& out) {
    out.write(kMagic, sizeof kMagic);
    out.write(reinterpret_cast<const char*>(&length), sizeof length);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& b : blobs)
      out.write(static_cast<const char*>(b.data_ptr()), static_cast<std::streamsize>(b.numel() * b.element_size()));
  });
}

namespace {
torch::ScalarType dtype_from(const std::string& s, const std::filesystem::path& path) {
  static const std::pair<const char*, torch::ScalarType> table[] = {
      {"Float", torch::kFloat}, {"Double", torch::kDouble}, {"Long", torch::kLong},   {"Int", torch::kInt},
      {"Bool", torch::kBool},   {"Byte", torch::kByte},     {"Half", torch::kHalf},   {"BFloat16", torch::kBFloat16},
      {"Char", torch::kChar},   {"Short", torch::kShort}};
  for (auto& [n, t] : table)
    if (s == n) return t;
  throw Error(fmt::format("archive: {} has a tensor of unknown dtype \"{}\"", path.string(), s));
}
}  // namespace

TensorArchive load_archive(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("archive: cannot open {} (no such file or not readable)", path.string()));
  const auto size = std::filesystem::file_size(path);
  char magic[8] = {};
  uint64_t length = 0;
  in.read(magic, sizeof magic);
  if (!in || std::memcmp(magic, kMagic, sizeof kMagic) != 0)
    throw Error(fmt::format("archive: {} is not a ppl tensor archive (bad magic)", path.string()));
  in.read(reinterpret_cast<char*>(&length), sizeof length);
  if (!in || length > size - 16)
    throw Error(fmt::format("archive: {} is truncated (header of {} bytes, file of {})", path.string(), length, size));
  std::string text(length, '\0');
  in.read(text.data(), static_cast<std::streamsize>(length));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("archive: {} has a corrupt header: {}", path.string(), e.what()));
  }
  const uint64_t data_start = 16 + length;
  TensorArchive archive;
  try {
    archive.metadata = header.value("metadata", nlohmann::json::object());
    for (const auto& e : header.at("tensors")) {
      const auto name = e.at("name").get<std::string>();
      const auto offset = e.at("offset").get<uint64_t>();
      const auto bytes = e.at("bytes").get<uint64_t>();
      if (offset > size || bytes > size || data_start + offset + bytes > size)
        throw Error(fmt::format("archive: {} is truncated: tensor \"{}\" needs bytes {}..{}, the file has {}",
                                path.string(), name, data_start + offset, data_start + offset + bytes, size));
      const auto shape = e.at("shape").get<std::vector<int64_t>>();
      const auto dtype = dtype_from(e.at("dtype").get<std::string>(), path);
      // The shape is checked against the declared bytes before anything is
      // allocated (a product of the non-zero sizes over 2^48 never fits).
      const uint64_t element = c10::elementSize(dtype);
      uint64_t count = 1;
      bool fits = true, empty = false;
      for (const auto d : shape) {
        if (d < 0 || (d > 0 && count > (uint64_t{1} << 48) / static_cast<uint64_t>(d))) fits = false;
        else if (d == 0) empty = true;
        else count *= static_cast<uint64_t>(d);
      }
      if (empty) count = 0;
      if (!fits || count * element != bytes)
        throw Error(fmt::format("archive: {}: tensor \"{}\" of shape [{}] does not fill the {} bytes the header says",
                                path.string(), name, fmt::join(shape, ", "), bytes));
      auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
      in.seekg(static_cast<std::streamoff>(data_start + offset));
      if (bytes > 0) in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes));
      if (!in) throw Error(fmt::format("archive: reading tensor \"{}\" from {} failed", name, path.string()));
      archive.tensors.emplace_back(name, t);
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("archive: {} has a malformed header: {}", path.string(), e.what()));
  }
  return archive;
}

}  // namespace ppl
