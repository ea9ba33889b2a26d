// The param store, modules, the tensor archive and options reflection.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <unistd.h>

#include <fmt/format.h>

#include <catch2/catch.hpp>

#include <ppl/ppl.hpp>

namespace d = ppl::dist;

namespace {
std::filesystem::path temp_path(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / "ppl_store_test";
  std::filesystem::create_directories(dir);
  return dir / name;
}

struct NetImpl : torch::nn::Module {
  NetImpl() : fc(register_module("fc", torch::nn::Linear(3, 2))) {}
  torch::Tensor forward(const torch::Tensor& x) { return fc(x); }
  torch::nn::Linear fc;
};
TORCH_MODULE(Net);

struct Inner {
  BOOST_HANA_DEFINE_STRUCT(Inner, (int, steps), (std::string, name));
};
struct Options {
  BOOST_HANA_DEFINE_STRUCT(Options, (double, lr), (bool, baseline), (std::vector<int>, sizes), (Inner, inner));
};
}  // namespace

TEST_CASE("param creates a learnable tensor once, with constraints", "[param]") {
  ppl::param_store().clear();
  auto a = ppl::param("scale", torch::tensor({2.0, 0.5}), ppl::ParamConstraint::positive);
  CHECK(torch::allclose(a, torch::tensor({2.0, 0.5})));
  auto u = ppl::param_store().unconstrained("scale");
  CHECK(u.requires_grad());
  CHECK(torch::allclose(u, torch::log(torch::tensor({2.0, 0.5}))));
  // Second use ignores init and returns the stored value.
  auto b = ppl::param("scale", torch::tensor({9.0, 9.0}), ppl::ParamConstraint::positive);
  CHECK(torch::allclose(b, a));
  auto tr = ppl::trace([] { return ppl::param("scale", torch::Tensor{}, ppl::ParamConstraint::positive); });
  CHECK(tr.site("scale").kind == ppl::SiteKind::param);
  CHECK_THROWS_WITH(ppl::param("neg", torch::tensor(-1.0), ppl::ParamConstraint::positive),
                    Catch::Contains("param: init is -1, but must be positive and finite (site \"neg\", store_test.cpp:"));
  CHECK_THROWS_WITH(ppl::param_store().at("missing"), Catch::Contains("no parameter named \"missing\""));
}

TEST_CASE("param takes any constraint: simplex weights and a Cholesky factor, kept unconstrained", "[param]") {
  namespace c = ppl::constraints;
  ppl::param_store().clear();
  const auto w0 = torch::tensor({0.2, 0.3, 0.5}, torch::kDouble);
  const auto l0 = torch::tensor({{1.0, 0.0, 0.0}, {0.5, 2.0, 0.0}, {-0.3, 0.1, 0.7}}, torch::kDouble);
  auto w = ppl::param("weights", w0, c::simplex);
  auto l = ppl::param("scale_tril", l0, c::lower_cholesky);
  auto b = ppl::param("bounded", torch::tensor(1.5, torch::kDouble), c::interval(1.0, 2.0));
  CHECK(torch::allclose(w, w0));
  CHECK(torch::allclose(l, l0));
  CHECK(b.item<double>() == Approx(1.5));
  // The store keeps the unconstrained coordinates: K - 1 for a simplex, D(D+1)/2 for a factor.
  CHECK(ppl::param_store().unconstrained("weights").sizes() == c10::IntArrayRef({2}));
  CHECK(ppl::param_store().unconstrained("scale_tril").sizes() == c10::IntArrayRef({6}));
  CHECK(ppl::param_store().constraint("bounded") == c::interval(1.0, 2.0));
  // Any step on the unconstrained leaves keeps the values inside their constraints.
  {
    torch::NoGradGuard g;
    for (const auto& p : ppl::param_store().parameters()) p.add_(torch::randn_like(p) * 5);
  }
  CHECK(c::simplex.check(ppl::param_store().at("weights")).item<bool>());
  CHECK(c::lower_cholesky.check(ppl::param_store().at("scale_tril")).item<bool>());
  CHECK(c::interval(1.0, 2.0).check(ppl::param_store().at("bounded")).item<bool>());
  // Gradients reach the unconstrained leaves through the transform.
  ppl::param("weights", torch::Tensor{}, c::simplex)[0].backward();
  CHECK(ppl::param_store().unconstrained("weights").grad().abs().sum().item<double>() > 0);
  // init is checked against the constraint, and must not sit on its boundary.
  CHECK_THROWS_WITH(ppl::param("out", torch::tensor(2.5), c::interval(1.0, 2.0)),
                    Catch::Contains("param: init is 2.5, but must be in [1, 2] (site \"out\", store_test.cpp:"));
  CHECK_THROWS_WITH(ppl::param("edge", torch::tensor({0.0, 1.0}), c::simplex),
                    Catch::Contains("param: init is [0, 1], but must be in the simplex (nonnegative, summing to 1), "
                                    "off the boundary"));
  CHECK_THROWS_WITH(ppl::param("bad", torch::tensor({0.5, 0.6}), c::simplex),
                    Catch::Contains("init is [0.5, 0.6], but must be in the simplex"));
  CHECK_THROWS_WITH(ppl::param("flag", torch::tensor(1.0), c::boolean),
                    Catch::Contains("param: the constraint boolean is discrete, but a learnable parameter needs one "
                                    "with a bijection from the reals (site \"flag\", store_test.cpp:"));
  CHECK_FALSE(ppl::param_store().contains("out"));
}

TEST_CASE("a parameter asked for again with another constraint or shape is an error naming both calls",
          "[param]") {
  ppl::param_store().clear();
  auto s = ppl::param("s", torch::tensor(-2.0));
  CHECK(s.item<double>() == -2.0);
  CHECK_THROWS_WITH(ppl::param("s", torch::tensor(1.0), ppl::constraints::positive),
                    Catch::Matches(".*param: \"s\" was created with constraint real \\(store_test\\.cpp:[0-9]+\\), "
                                   "but is asked for with constraint positive \\(store_test\\.cpp:[0-9]+\\).*"));
  CHECK_THROWS_AS(ppl::param("s", torch::tensor(1.0), ppl::ParamConstraint::positive), ppl::ArgumentError);
  ppl::param("m", torch::zeros({2}));
  CHECK_THROWS_WITH(ppl::param("m", torch::zeros({3})),
                    Catch::Contains("param: \"m\" was created with shape [2] (store_test.cpp:") &&
                        Catch::Contains("but is asked for with an init of shape [3] (store_test.cpp:"));
  CHECK_THROWS_AS(ppl::param("m", torch::zeros({3})), ppl::ShapeError);
  // The same constraint with other bounds is another constraint.
  ppl::param("i", torch::tensor(0.5), ppl::constraints::interval(0.0, 1.0));
  CHECK_THROWS_WITH(ppl::param("i", torch::tensor(0.5), ppl::constraints::interval(0.0, 2.0)),
                    Catch::Contains("created with constraint interval(0, 1)") &&
                        Catch::Contains("asked for with constraint interval(0, 2)"));
  CHECK_NOTHROW(ppl::param("i", torch::tensor(0.7), ppl::constraints::interval(0.0, 1.0)));
}

TEST_CASE("archives record parameterised constraints, and old archives with constraint names still load",
          "[param][archive]") {
  namespace c = ppl::constraints;
  ppl::param_store().clear();
  ppl::param("w", torch::tensor({0.1, 0.6, 0.3}), c::simplex);
  ppl::param("b", torch::tensor(1.25), c::interval(1.0, 2.0));
  ppl::param("g", torch::tensor(3.0), c::greater_than(-1.0));
  ppl::param("sigma", torch::tensor(0.5), ppl::ParamConstraint::positive);
  const auto path = temp_path("constrained.bin");
  ppl::param_store().save(path);
  const auto archive = ppl::load_archive(path);
  CHECK(archive.metadata["constraints"]["w"] == "simplex");
  CHECK(archive.metadata["constraints"]["sigma"] == "positive");
  CHECK(archive.metadata["constraints"]["b"] ==
        nlohmann::json({{"name", "interval"}, {"lower", 1.0}, {"upper", 2.0}}));
  ppl::param_store().clear();
  ppl::param_store().load(path);
  CHECK(torch::allclose(ppl::param_store().at("w"), torch::tensor({0.1, 0.6, 0.3})));
  CHECK(ppl::param_store().at("b").item<double>() == Approx(1.25));
  CHECK(ppl::param_store().at("g").item<double>() == Approx(3.0));
  CHECK(ppl::param_store().constraint("g") == c::greater_than(-1.0));
  // The program asks for them with the same constraints: no conflict.
  CHECK_NOTHROW(ppl::param("b", torch::tensor(1.5), c::interval(1.0, 2.0)));
  // An archive written before parameterised constraints: names only.
  ppl::TensorArchive old;
  old.metadata = {{"kind", "ppl.param_store"},
                  {"constraints", {{"loc", "real"}, {"scale", "positive"}, {"p", "unit_interval"}}}};
  old.tensors.emplace_back("loc", torch::tensor({0.5}));
  old.tensors.emplace_back("scale", torch::log(torch::tensor({2.0})));
  old.tensors.emplace_back("p", torch::tensor({0.0}));
  ppl::param_store().clear();
  ppl::param_store().load(old, "old.bin");
  CHECK(ppl::param_store().at("scale").item<double>() == Approx(2.0));
  CHECK(ppl::param_store().at("p").item<double>() == Approx(0.5));
  CHECK(ppl::param_store().constraint("scale") == c::positive);
}

TEST_CASE("module registers parameters under a prefix and they appear as param sites", "[param]") {
  ppl::param_store().clear();
  Net net;
  auto tr = ppl::trace([&] { ppl::module("encoder", net); });
  CHECK(tr.contains("encoder.fc.weight"));
  CHECK(tr.contains("encoder.fc.bias"));
  CHECK(ppl::param_store().unconstrained("encoder.fc.weight").is_same(net->fc->weight));
}

TEST_CASE("the param store saves atomically and loads into existing tensors", "[param][archive]") {
  ppl::param_store().clear();
  Net net;
  ppl::module("encoder", net);
  ppl::param("mu", torch::tensor({1.0, 2.0}));
  const auto path = temp_path("params.bin");
  ppl::param_store().save(path);
  CHECK_FALSE(std::filesystem::exists(path.string() + ".tmp"));
  const auto saved = net->fc->weight.detach().clone();
  {
    torch::NoGradGuard g;
    net->fc->weight.fill_(0.0);
  }
  ppl::param_store().load(path);
  CHECK(torch::equal(net->fc->weight.detach(), saved));
  // A fresh store and a fresh module: the module picks the loaded values up.
  ppl::param_store().clear();
  ppl::param_store().load(path);
  Net other;
  ppl::module("encoder", other);
  CHECK(torch::equal(other->fc->weight.detach(), saved));
  CHECK(torch::allclose(ppl::param_store().at("mu"), torch::tensor({1.0, 2.0})));
}

TEST_CASE("the param store round-trips through an in-memory archive, and a bad one changes nothing", "[param][archive]") {
  ppl::param_store().clear();
  ppl::param("mu", torch::tensor({1.0, 2.0}));
  ppl::param("sigma", torch::tensor({0.5}), ppl::ParamConstraint::positive);
  auto archive = ppl::param_store().to_archive();
  CHECK(archive.metadata["kind"] == "ppl.param_store");
  CHECK(archive.metadata["constraints"]["sigma"] == "positive");
  // Unconstrained values, and a copy: later changes to the store leave it alone.
  CHECK(torch::allclose(archive.at("sigma"), torch::log(torch::tensor({0.5}))));
  {
    torch::NoGradGuard g;
    ppl::param_store().unconstrained("mu").fill_(9.0);
  }
  CHECK(torch::allclose(archive.at("mu"), torch::tensor({1.0, 2.0})));

  ppl::param_store().load(archive, "the snapshot");
  CHECK(torch::allclose(ppl::param_store().at("mu"), torch::tensor({1.0, 2.0})));
  ppl::param_store().clear();
  ppl::param_store().load(archive, "the snapshot");
  CHECK(ppl::param_store().names() == std::vector<std::string>{"mu", "sigma"});
  CHECK(torch::allclose(ppl::param_store().at("sigma"), torch::tensor({0.5})));
  CHECK(ppl::param_store().unconstrained("sigma").requires_grad());

  // A shape mismatch on the second name leaves the first untouched too.
  ppl::TensorArchive bad;
  bad.metadata = archive.metadata;
  bad.tensors.emplace_back("mu", torch::tensor({7.0, 7.0}));
  bad.tensors.emplace_back("sigma", torch::zeros({3}));
  CHECK_THROWS_WITH(ppl::param_store().load(bad, "bad.bin"),
                    Catch::Contains("\"sigma\" in bad.bin has shape [3]") && Catch::Contains("[1]"));
  CHECK(torch::allclose(ppl::param_store().at("mu"), torch::tensor({1.0, 2.0})));

  auto odd = archive;
  odd.metadata["constraints"]["sigma"] = "wobbly";
  CHECK_THROWS_WITH(ppl::param_store().load(odd, "odd.bin"),
                    Catch::Contains("\"sigma\" in odd.bin") && Catch::Contains("unknown constraint \"wobbly\""));
  auto foreign = archive;
  foreign.metadata["kind"] = "ppl.checkpoint";
  CHECK_THROWS_WITH(ppl::param_store().load(foreign, "run/checkpoint.bin"),
                    Catch::Contains("run/checkpoint.bin holds a \"ppl.checkpoint\""));
  CHECK(ppl::param_store().size() == 2);
}

TEST_CASE("archives: missing, foreign and truncated files are clear errors", "[archive]") {
  CHECK_THROWS_WITH(ppl::load_archive(temp_path("nope.bin")), Catch::Contains("nope.bin") && Catch::Contains("cannot open"));
  const auto foreign = temp_path("foreign.bin");
  std::ofstream(foreign) << "hello world, not an archive";
  CHECK_THROWS_WITH(ppl::load_archive(foreign), Catch::Contains("not a ppl tensor archive"));
  ppl::TensorArchive a;
  a.tensors.emplace_back("x", torch::arange(100, torch::kDouble));
  a.metadata["step"] = 7;
  const auto good = temp_path("good.bin");
  ppl::save_archive(a, good);
  auto back = ppl::load_archive(good);
  CHECK(torch::equal(back.at("x"), a.tensors[0].second));
  CHECK(back.metadata["step"] == 7);
  std::filesystem::resize_file(good, std::filesystem::file_size(good) - 10);
  CHECK_THROWS_WITH(ppl::load_archive(good), Catch::Contains("truncated") && Catch::Contains("\"x\""));
}

namespace {
std::string read_bytes(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}
/// A version-1 archive (no checksums) of one tensor, written byte by byte:
/// "PPLTENS1", u64 header length, header, data.
std::string v1_archive(const std::string& header, const std::string& data) {
  std::string out = "PPLTENS1";
  const std::uint64_t n = header.size();
  out.append(reinterpret_cast<const char*>(&n), sizeof n);
  return out + header + data;
}
}  // namespace

TEST_CASE("archives: every tensor and the header carry a checksum, damage is an error naming the file", "[archive]") {
  ppl::TensorArchive a;
  a.tensors.emplace_back("w", torch::arange(64, torch::kFloat));
  a.tensors.emplace_back("b", torch::arange(8, torch::kLong));
  a.metadata["step"] = 3;
  const auto path = temp_path("crc.bin");
  ppl::save_archive(a, path);
  CHECK(ppl::read_archive_metadata(path)["step"] == 3);
  const auto good = read_bytes(path);
  REQUIRE(good.compare(0, 8, "PPLTENS2") == 0);
  // One flipped bit in the last tensor's bytes (the file's last byte).
  auto bad = good;
  bad.back() = static_cast<char>(bad.back() ^ 0x10);
  write_bytes(path, bad);
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("crc.bin is damaged") && Catch::Contains("\"b\""));
  // One flipped bit in the header (inside the JSON, after the 24-byte prefix).
  bad = good;
  bad[30] = static_cast<char>(bad[30] ^ 0x01);
  write_bytes(path, bad);
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("crc.bin") && Catch::Contains("header"));
  CHECK_THROWS_WITH(ppl::read_archive_metadata(path), Catch::Contains("header's checksum"));
}

TEST_CASE("archives: declared sizes are checked against the file before anything is allocated", "[archive]") {
  std::string data;
  for (int i = 0; i < 4; ++i) data += std::string("\x01\x00\x00\x00", 4);  // four little-endian int32 ones
  auto entry = [](const std::string& fields) {
    return "{\"metadata\":{},\"tensors\":[{\"name\":\"x\",\"dtype\":\"Int\"," + fields + "}]}";
  };
  const auto path = temp_path("v1.bin");
  // Version 1 archives (no checksums) still load.
  write_bytes(path, v1_archive(entry("\"shape\":[4],\"offset\":0,\"bytes\":16"), data));
  CHECK(torch::equal(ppl::load_archive(path).at("x"), torch::ones({4}, torch::kInt)));
  // An offset near 2^64 must not wrap around to the start of the data.
  write_bytes(path, v1_archive(entry("\"shape\":[4],\"offset\":18446744073709551615,\"bytes\":16"), data));
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("v1.bin is truncated") && Catch::Contains("\"x\""));
  write_bytes(path, v1_archive(entry("\"shape\":[4],\"offset\":8,\"bytes\":18446744073709551608"), data));
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("truncated"));
  // A shape whose element count overflows, or disagrees with the bytes, is
  // refused before the allocation.
  write_bytes(path, v1_archive(entry("\"shape\":[4294967296,4294967296,4],\"offset\":0,\"bytes\":16"), data));
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("does not hold the 16 bytes"));
  write_bytes(path, v1_archive(entry("\"shape\":[2,-2],\"offset\":0,\"bytes\":16"), data));
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("negative dimension -2"));
  write_bytes(path, v1_archive(entry("\"shape\":[0],\"offset\":0,\"bytes\":0"), data));
  CHECK(ppl::load_archive(path).at("x").numel() == 0);
  // Keys of the wrong type name the tensor and the key.
  write_bytes(path, v1_archive(entry("\"shape\":\"four\",\"offset\":0,\"bytes\":16"), data));
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("tensor \"x\" has no valid \"shape\""));
  write_bytes(path, v1_archive("{\"metadata\":{},\"tensors\":3}", data));
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("no \"tensors\" list"));
  write_bytes(path, v1_archive("[1, 2]", data));
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("v1.bin has a corrupt header: not a JSON object"));
  write_bytes(path, v1_archive("{\"tensors\":[{\"dtype\":\"Int\"}]}", data));
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("has no valid \"name\""));
  // A header longer than the file.
  auto cut = v1_archive(entry("\"shape\":[4],\"offset\":0,\"bytes\":16"), data);
  write_bytes(path, cut.substr(0, 20));
  CHECK_THROWS_WITH(ppl::load_archive(path), Catch::Contains("truncated (header of"));
}

TEST_CASE("options structs round-trip through JSON and reject unknown keys", "[reflect]") {
  Options o{0.001, true, {1, 2}, {5, "air"}};
  auto j = ppl::options_to_json(o);
  CHECK(j["inner"]["name"] == "air");
  auto back = ppl::options_from_json<Options>(j);
  CHECK(back.lr == 0.001);
  CHECK(back.sizes == std::vector<int>{1, 2});
  CHECK(back.inner.steps == 5);
  auto partial = ppl::options_from_json<Options>(nlohmann::json{{"lr", 0.5}}, o);
  CHECK(partial.lr == 0.5);
  CHECK(partial.inner.name == "air");
  CHECK_THROWS_WITH(ppl::options_from_json<Options>(nlohmann::json{{"lrr", 0.5}}), Catch::Contains("unknown key \"lrr\""));
  CHECK_THROWS_WITH(ppl::options_from_json<Options>(nlohmann::json{{"inner", {{"steps", "x"}}}}),
                    Catch::Contains("inner.steps"));
}

TEST_CASE("write_atomic replaces a file whole or leaves it untouched", "[store][atomic]") {
  namespace fs = std::filesystem;
  const auto dir = fs::temp_directory_path() / fmt::format("ppl_atomic_{}", ::getpid());
  fs::remove_all(dir);
  const auto path = dir / "sub" / "file.txt";
  auto read = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto leftovers = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(path.parent_path())) n += e.path() != path;
    return n;
  };

  ppl::write_atomic(path, "first");  // creates the missing folders
  CHECK(read(path) == "first");
  ppl::write_atomic(path, std::string_view("second, longer"));
  CHECK(read(path) == "second, longer");

  // A writer that fails half-way: the old content stays, no temporary file is left.
  CHECK_THROWS_AS(ppl::write_atomic(path,
                                    [](std::ostream& out) {
                                      out << "partial";
                                      throw std::runtime_error("interrupted");
                                    }),
                  std::runtime_error);
  CHECK(read(path) == "second, longer");
  // A path that is a folder cannot be replaced by a file: the error names it.
  fs::create_directories(dir / "folder");
  CHECK_THROWS_WITH(ppl::write_atomic(dir / "folder", "x"), Catch::Contains("folder"));
  CHECK(leftovers() == 0);
  fs::remove_all(dir);
}
