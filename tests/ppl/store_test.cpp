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
                    Catch::Contains("param: init is -1, but must be positive (site \"neg\")"));
  CHECK_THROWS_WITH(ppl::param_store().at("missing"), Catch::Contains("no parameter named \"missing\""));
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
  odd.metadata["constraints"]["sigma"] = "simplex";
  CHECK_THROWS_WITH(ppl::param_store().load(odd, "odd.bin"),
                    Catch::Contains("\"sigma\" in odd.bin") && Catch::Contains("unknown constraint \"simplex\""));
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

TEST_CASE("archives: a shape the declared bytes do not fill, or a malformed header, is refused before allocating",
          "[archive]") {
  // "PPLTENS1", the header's length, the header, then `data` bytes.
  auto write = [](const std::string& name, const nlohmann::json& header, std::size_t data) {
    const auto path = temp_path(name);
    const auto text = header.dump();
    const std::uint64_t length = text.size();
    std::ofstream out(path, std::ios::binary);
    out.write("PPLTENS1", 8);
    out.write(reinterpret_cast<const char*>(&length), sizeof length);
    out << text << std::string(data, '\0');
    return path;
  };
  auto tensor = [](nlohmann::json shape, std::uint64_t bytes) {
    return nlohmann::json{{"tensors", {{{"name", "w"}, {"dtype", "Float"}, {"shape", shape}, {"offset", 0}, {"bytes", bytes}}}}};
  };
  // 2^40 x 2^40 floats declared in 16 bytes: refused, nothing allocated.
  CHECK_THROWS_WITH(ppl::load_archive(write("huge.bin", tensor({1LL << 40, 1LL << 40}, 16), 16)),
                    Catch::Contains("huge.bin") && Catch::Contains("does not fill the 16 bytes"));
  CHECK_THROWS_WITH(ppl::load_archive(write("negative.bin", tensor({-4}, 16), 16)),
                    Catch::Contains("[-4]") && Catch::Contains("does not fill"));
  CHECK(ppl::load_archive(write("fits.bin", tensor({2, 2}, 16), 16)).at("w").sizes() == torch::IntArrayRef({2, 2}));
  CHECK(ppl::load_archive(write("empty.bin", tensor({0, 5}, 0), 0)).at("w").numel() == 0);
  CHECK_THROWS_AS(ppl::load_archive(write("array.bin", nlohmann::json::array({1, 2}), 0)), ppl::Error);
  CHECK_THROWS_WITH(ppl::load_archive(write("noname.bin", nlohmann::json{{"tensors", {{{"dtype", "Float"}}}}}, 0)),
                    Catch::Contains("noname.bin") && Catch::Contains("malformed header"));
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
