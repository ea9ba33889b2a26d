// The tensor archive format: named tensors and JSON metadata in one file,
// with a CRC-32 of the header and of every tensor's bytes.
#include <ppl/core/archive.hpp>

#include <array>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <torch/torch.h>
#include <zlib.h>

#include <ppl/core/atomic_file.hpp>
#include <ppl/core/errors.hpp>

namespace ppl {

namespace {
constexpr char kMagicV1[8] = {'P', 'P', 'L', 'T', 'E', 'N', 'S', '1'};
constexpr char kMagicV2[8] = {'P', 'P', 'L', 'T', 'E', 'N', 'S', '2'};
constexpr std::uint64_t kPrefixV1 = 16;  // magic, header length
constexpr std::uint64_t kPrefixV2 = 24;  // magic, header length, header CRC-32, 4 zero bytes

/// CRC-32 (zlib's) of `bytes` bytes at `data`, fed in blocks that fit zlib's uInt.
std::uint32_t crc32_of(const void* data, std::uint64_t bytes) {
  auto crc = ::crc32(0L, Z_NULL, 0);
  const auto* p = static_cast<const Bytef*>(data);
  while (bytes > 0) {
    const auto n = static_cast<uInt>(std::min<std::uint64_t>(bytes, std::numeric_limits<uInt>::max()));
    crc = ::crc32(crc, p, n);
    p += n;
    bytes -= n;
  }
  return static_cast<std::uint32_t>(crc);
}

std::optional<torch::ScalarType> dtype_from(const std::string& s) {
  static const std::pair<const char*, torch::ScalarType> table[] = {
      {"Float", torch::kFloat}, {"Double", torch::kDouble}, {"Long", torch::kLong},   {"Int", torch::kInt},
      {"Bool", torch::kBool},   {"Byte", torch::kByte},     {"Half", torch::kHalf},   {"BFloat16", torch::kBFloat16},
      {"Char", torch::kChar},   {"Short", torch::kShort}};
  for (auto& [n, t] : table)
    if (s == n) return t;
  return std::nullopt;
}

/// The header of an archive, read and checked, and where its data begins.
struct Header {
  nlohmann::json json;
  std::uint64_t data_start = 0;
  bool checksummed = false;
};

Header read_header(std::istream& in, std::uint64_t size, const std::string& source) {
  char magic[8] = {};
  in.read(magic, sizeof magic);
  if (!in) throw Error(fmt::format("archive: {} is not a ppl tensor archive (shorter than its 8-byte magic)", source));
  const bool v2 = std::memcmp(magic, kMagicV2, sizeof magic) == 0;
  if (!v2 && std::memcmp(magic, kMagicV1, sizeof magic) != 0)
    throw Error(fmt::format("archive: {} is not a ppl tensor archive (bad magic)", source));
  const std::uint64_t prefix = v2 ? kPrefixV2 : kPrefixV1;
  if (size < prefix) throw Error(fmt::format("archive: {} is truncated ({} bytes, shorter than its prefix)", source, size));
  std::uint64_t length = 0;
  std::uint32_t expected_crc = 0, zero = 0;
  in.read(reinterpret_cast<char*>(&length), sizeof length);
  if (v2) {
    in.read(reinterpret_cast<char*>(&expected_crc), sizeof expected_crc);
    in.read(reinterpret_cast<char*>(&zero), sizeof zero);
  }
  if (!in || length > size - prefix)
    throw Error(fmt::format("archive: {} is truncated (header of {} bytes, file of {})", source, length, size));
  std::string text(length, '\0');
  in.read(text.data(), static_cast<std::streamsize>(length));
  if (!in) throw Error(fmt::format("archive: reading the header of {} failed", source));
  if (v2 && crc32_of(text.data(), text.size()) != expected_crc)
    throw Error(fmt::format("archive: {} is damaged: its header's checksum does not match", source));
  Header h;
  h.data_start = prefix + length;
  h.checksummed = v2;
  try {
    h.json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("archive: {} has a corrupt header: {}", source, e.what()));
  }
  if (!h.json.is_object()) throw Error(fmt::format("archive: {} has a corrupt header: not a JSON object", source));
  return h;
}

/// The header's user metadata (an object; empty when absent).
nlohmann::json metadata_of(const Header& h, const std::string& source) {
  auto m = h.json.value("metadata", nlohmann::json::object());
  if (!m.is_object()) throw Error(fmt::format("archive: {} has a corrupt header: \"metadata\" is not an object", source));
  return m;
}

/// `key` of a tensor entry as T; Error naming the source, the tensor and the key otherwise.
template <class T>
T entry_field(const nlohmann::json& e, const char* key, const std::string& name, const std::string& source) {
  try {
    return e.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    throw Error(fmt::format("archive: {} has a corrupt header: tensor \"{}\" has no valid \"{}\"", source, name, key));
  }
}
}  // namespace

const torch::Tensor& TensorArchive::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  throw Error(fmt::format("archive: no tensor named \"{}\"", name));
}

void write_archive(const TensorArchive& archive, std::ostream& out) {
  nlohmann::json header;
  header["metadata"] = archive.metadata;
  header["tensors"] = nlohmann::json::array();
  std::vector<torch::Tensor> blobs;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : archive.tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    const std::uint64_t bytes = c.numel() * c.element_size();
    header["tensors"].push_back({{"name", name},
                                 {"dtype", std::string(c10::toString(c.scalar_type()))},
                                 {"shape", c.sizes().vec()},
                                 {"offset", offset},
                                 {"bytes", bytes},
                                 {"crc32", crc32_of(c.data_ptr(), bytes)}});
    offset += bytes;
    blobs.push_back(c);
  }
  const auto text = header.dump();
  const std::uint64_t length = text.size();
  const std::uint32_t header_crc = crc32_of(text.data(), text.size()), zero = 0;

  out.write(kMagicV2, sizeof kMagicV2);
  out.write(reinterpret_cast<const char*>(&length), sizeof length);
  out.write(reinterpret_cast<const char*>(&header_crc), sizeof header_crc);
  out.write(reinterpret_cast<const char*>(&zero), sizeof zero);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& b : blobs)
    out.write(static_cast<const char*>(b.data_ptr()), static_cast<std::streamsize>(b.numel() * b.element_size()));
}

void save_archive(const TensorArchive& archive, const std::filesystem::path& path) {
  write_atomic(path, [&](std::ostream& out) { write_archive(archive, out); });
}

TensorArchive read_archive(std::istream& in, std::uint64_t size, const std::string& source) {
  const auto header = read_header(in, size, source);
  const std::uint64_t payload = size - header.data_start;
  TensorArchive archive;
  archive.metadata = metadata_of(header, source);
  const auto tensors = header.json.find("tensors");
  if (tensors == header.json.end() || !tensors->is_array())
    throw Error(fmt::format("archive: {} has a corrupt header: no \"tensors\" list", source));
  std::set<std::string> seen;
  for (const auto& e : *tensors) {
    if (!e.is_object()) throw Error(fmt::format("archive: {} has a corrupt header: a tensor entry is not an object", source));
    const auto name = entry_field<std::string>(e, "name", "?", source);
    if (!seen.insert(name).second)
      throw Error(fmt::format("archive: {} has a corrupt header: tensor \"{}\" appears twice", source, name));
    const auto offset = entry_field<std::uint64_t>(e, "offset", name, source);
    const auto bytes = entry_field<std::uint64_t>(e, "bytes", name, source);
    const auto shape = entry_field<std::vector<std::int64_t>>(e, "shape", name, source);
    const auto dtype_name = entry_field<std::string>(e, "dtype", name, source);
    const auto dtype = dtype_from(dtype_name);
    if (!dtype) throw Error(fmt::format("archive: {} has a tensor of unknown dtype \"{}\"", source, dtype_name));
    // Bounds in a form that cannot wrap around: offset + bytes <= payload.
    if (offset > payload || bytes > payload - offset)
      throw Error(fmt::format("archive: {} is truncated: tensor \"{}\" needs {} bytes at offset {} of its data, the "
                              "file holds {}",
                              source, name, bytes, offset, payload));
    // The shape must account for exactly `bytes`, counted without overflow.
    const auto element = static_cast<std::uint64_t>(c10::elementSize(*dtype));
    const std::uint64_t limit = bytes / element;  // the most elements `bytes` can hold
    std::uint64_t count = 1;
    for (const auto d : shape) {
      if (d < 0) throw Error(fmt::format("archive: {}: tensor \"{}\" has a negative dimension {}", source, name, d));
      if (d == 0) count = 0;
    }
    for (const auto d : shape) {
      if (count == 0) break;
      if (static_cast<std::uint64_t>(d) > limit / count) {
        count = limit + 1;
        break;
      }
      count *= static_cast<std::uint64_t>(d);
    }
    if (count > limit || count * element != bytes)
      throw Error(fmt::format("archive: {}: tensor \"{}\" of shape [{}] does not hold the {} bytes the header gives it",
                              source, name, fmt::join(shape, ", "), bytes));
    auto t = torch::empty(shape, torch::TensorOptions().dtype(*dtype));
    in.seekg(static_cast<std::streamoff>(header.data_start + offset));
    if (bytes > 0) in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes));
    if (!in) throw Error(fmt::format("archive: reading tensor \"{}\" from {} failed", name, source));
    if (header.checksummed && bytes > 0) {
      const auto crc = entry_field<std::uint32_t>(e, "crc32", name, source);
      if (crc32_of(t.data_ptr(), bytes) != crc)
        throw Error(fmt::format("archive: {} is damaged: tensor \"{}\" does not match its checksum", source, name));
    }
    archive.tensors.emplace_back(name, t);
  }
  return archive;
}

TensorArchive load_archive(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!in || ec) throw Error(fmt::format("archive: cannot open {} (no such file or not readable)", path.string()));
  return read_archive(in, size, path.string());
}

nlohmann::json read_archive_metadata(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (!in || ec) throw Error(fmt::format("archive: cannot open {} (no such file or not readable)", path.string()));
  return metadata_of(read_header(in, size, path.string()), path.string());
}

}  // namespace ppl
