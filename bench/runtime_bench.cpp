// Forward + backward time and peak memory of the fused runtime operators
// against plain composed-ops references (the formulation a Python port would
// write), on CPU, and on CUDA when available.
//
// Peak memory: every measurement runs in a fresh child process (this binary
// re-invoked with --child), which reports its peak resident set size
// (getrusage ru_maxrss) minus its resident set just before the measured run,
// with the inputs already allocated. GPU memory is not measured (RSS does not
// see it); on CUDA only times are printed. Times are the median of several
// runs after one warm-up run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>
#include <torch/torch.h>

#include <ppl/runtime.hpp>

namespace {

// Eq. 10-13 with composed ATen ops: materialises [B, T, S, H, W].
torch::Tensor composed_render(const torch::Tensor& points, const torch::Tensor& sigma,
                              const torch::Tensor& omega0, std::int64_t H, std::int64_t W,
                              std::int64_t S) {
  const auto opts = points.options();
  const auto K = points.size(2), D = K - 1;
  const auto u = torch::linspace(0, 1, S, opts);
  std::vector<torch::Tensor> cols;
  double binom = 1;
  for (std::int64_t k = 0; k <= D; ++k) {
    if (k > 0) binom = binom * static_cast<double>(D - k + 1) / static_cast<double>(k);
    cols.push_back(binom * torch::pow(1 - u, static_cast<double>(D - k)) * torch::pow(u, static_cast<double>(k)));
  }
  const auto curve = torch::einsum("sk,btkc->btsc", {torch::stack(cols, 1), points});
  const auto xs = torch::arange(W, opts) / static_cast<double>(W);
  const auto ys = torch::arange(H, opts) / static_cast<double>(H);
  const auto dx = xs.view({1, 1, 1, 1, W}) - curve.select(-1, 0).unsqueeze(-1).unsqueeze(-1);
  const auto dy = ys.view({1, 1, 1, H, 1}) - curve.select(-1, 1).unsqueeze(-1).unsqueeze(-1);
  const auto s2 = (2 * sigma * sigma).unsqueeze(-1).unsqueeze(-1).unsqueeze(-1);
  const auto raw = torch::exp(-(dx * dx + dy * dy) / s2).sum(2);
  const auto m = std::get<0>(raw.flatten(2).max(-1)).unsqueeze(-1).unsqueeze(-1);
  return torch::tanh(raw / m / omega0.unsqueeze(-1).unsqueeze(-1));
}

torch::Tensor composed_composite(const torch::Tensor& strokes, const torch::Tensor& omega1) {
  return torch::tanh(strokes.cumsum(1) / omega1.view({-1, 1, 1, 1}));
}

long rss_kib() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// The spatial transformer on the same windows given as axis-aligned z_where
// [B, 4] and as [B, 6] (ATen's affine grid and grid sampler). stn_place: GNM's
// and SPACE's step (512 patches of 16 x 16 on 64 x 64 canvases); stn_crop:
// AIR's (64 images x 3 steps, 20 x 20 glimpses of 50 x 50 images); and the
// other direction of each.
struct StnShape {
  const char* op;
  bool place;
  std::int64_t batch, src_side, out_side;
};
const StnShape kStnShapes[] = {{"stn_place", true, 512, 16, 64},  // GNM, SPACE
                               {"stn_place_air", true, 192, 20, 50},
                               {"stn_crop", false, 192, 50, 20},  // AIR
                               {"stn_crop_space", false, 512, 64, 16}};

int stn_child(const std::string& op, const std::string& impl, const torch::Device& device, int reps) {
  const auto* shape =
      std::find_if(std::begin(kStnShapes), std::end(kStnShapes), [&](const StnShape& s) { return op == s.op; });
  if (shape == std::end(kStnShapes)) return 2;
  const bool place = shape->place;
  const std::int64_t B = shape->batch, src_side = shape->src_side, out_side = shape->out_side;
  torch::manual_seed(0);
  const auto opts = torch::TensorOptions().device(device);
  auto scale = torch::rand({B, 2}, opts) * 0.3 + 0.2;
  auto shift = torch::rand({B, 2}, opts) * 1.6 - 0.8;
  auto z4 = torch::cat({scale, shift}, 1);
  const auto zero = torch::zeros({B}, opts);
  auto z6 = torch::stack({z4.select(1, 0), zero, z4.select(1, 2), zero, z4.select(1, 1), z4.select(1, 3)}, 1);
  auto z = (impl == "axis" ? z4 : z6).clone().set_requires_grad(true);
  auto src = torch::rand({B, 1, src_side, src_side}, opts).set_requires_grad(true);
  const auto weights = torch::randn({B, 1, out_side, out_side}, opts);
  auto run = [&] {
    auto out = place ? ppl::runtime::stn_place(src, z, out_side, out_side) : ppl::runtime::stn_crop(src, z, out_side);
    (out * weights).sum().backward();
    sync(device);
  };
  run();  // warm-up
  const long base = rss_kib();
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double peak_mib = device.is_cuda() ? -1.0 : static_cast<double>(peak_rss_kib() - base) / 1024.0;
  std::printf("%.3f %.1f\n", ms[ms.size() / 2], peak_mib);
  return 0;
}

// One measurement: op in {render, composite}, impl in {fused, composed};
// or op in {stn_place, stn_place_air, stn_crop, stn_crop_space}, impl in {axis, grid}.
int child(const std::string& op, const std::string& impl, std::int64_t T, const std::string& dev, int reps,
          int threads) {
  if (threads > 0) ppl::runtime::set_cpu_threads(threads);
  const torch::Device device(dev == "cuda" ? torch::kCUDA : torch::kCPU);
  if (op.rfind("stn_", 0) == 0) return stn_child(op, impl, device, reps);
  const std::int64_t B = 64, K = 4, S = 100, H = 50, W = 50;
  torch::manual_seed(0);
  const auto opts = torch::TensorOptions().device(device);
  const bool fused = impl == "fused";
  auto points = (torch::rand({B, T, K, 2}, opts) * 0.8 + 0.1).set_requires_grad(true);
  auto sigma = (torch::rand({B, T}, opts) * 0.03 + 0.01).set_requires_grad(true);
  auto omega0 = (torch::rand({B, T}, opts) * 0.6 + 0.1).set_requires_grad(true);
  auto strokes = torch::rand({B, T, H, W}, opts).set_requires_grad(true);
  auto omega1 = (torch::rand({B}, opts) * 0.6 + 0.1).set_requires_grad(true);
  const auto weights = torch::randn({B, T, H, W}, opts);
  auto run = [&] {
    torch::Tensor out;
    if (op == "render")
      out = fused ? ppl::runtime::render_strokes(points, sigma, omega0, {.height = H, .width = W, .samples = S})
                  : composed_render(points, sigma, omega0, H, W, S);
    else
      out = fused ? ppl::runtime::composite(strokes, omega1) : composed_composite(strokes, omega1);
    (out * weights).sum().backward();
    sync(device);
  };
  std::vector<double> ms;
  long base = 0;
  if (device.is_cuda()) {
    run();  // warm-up (kernels, allocator)
    torch::cuda::synchronize();
  }
  base = rss_kib();
  for (int r = 0; r < reps + 1; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const auto t1 = std::chrono::steady_clock::now();
    if (r > 0 || device.is_cuda()) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double peak_mib =
      device.is_cuda() ? -1.0 : static_cast<double>(peak_rss_kib() - base) / 1024.0;
  std::printf("%.3f %.1f\n", ms[ms.size() / 2], peak_mib);
  return 0;
}

struct Result {
  double ms = 0, mib = 0;
};

Result measure(const char* self, const std::string& op, const std::string& impl, std::int64_t T,
               const std::string& dev, int reps, int threads = 0) {
  const auto cmd = fmt::format("'{}' --child {} {} {} {} {} {}", self, op, impl, T, dev, reps, threads);
  Result r;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    if (std::fscanf(pipe, "%lf %lf", &r.ms, &r.mib) != 2) r = {-1, -1};
    pclose(pipe);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  ppl::runtime::rerun_with_runtime_defaults(argv);  // as ppl does: OpenMP's workers sleep when idle
  if (argc >= 8 && std::string(argv[1]) == "--child")
    return child(argv[2], argv[3], std::atoll(argv[4]), argv[5], std::atoi(argv[6]), std::atoi(argv[7]));

  std::vector<std::string> devices{"cpu"};
  if (torch::cuda::is_available() && ppl::runtime::built_with_cuda()) devices.push_back("cuda");
  fmt::print("ppl_bench_runtime: B = 64, D = 3, S = 100, 50 x 50, float32, {} intra-op CPU threads\n",
             at::get_num_threads());
  fmt::print("forward + backward, median time; peak memory = peak RSS growth of a fresh process (CPU)\n\n");
  fmt::print("{:<10} {:<5} {:>3} {:>12} {:>12} {:>9} {:>12} {:>12} {:>9}\n", "op", "dev", "T", "fused ms",
             "composed ms", "speedup", "fused MiB", "composed MiB", "mem ratio");
  for (const auto& dev : devices)
    for (const std::string op : {"render", "composite"})
      for (const std::int64_t T : {4, 6, 8}) {
        const auto f = measure(argv[0], op, "fused", T, dev, 10);
        const auto c = measure(argv[0], op, "composed", T, dev, op == "render" && dev == "cpu" ? 3 : 10);
        if (f.mib < 0 || c.mib < 0)
          fmt::print("{:<10} {:<5} {:>3} {:>12.2f} {:>12.2f} {:>8.1f}x {:>12} {:>12} {:>9}\n", op, dev, T, f.ms,
                     c.ms, c.ms / f.ms, "n/a", "n/a", "n/a");
        else
          fmt::print("{:<10} {:<5} {:>3} {:>12.2f} {:>12.2f} {:>8.1f}x {:>12.1f} {:>12.1f} {:>8.1f}x\n", op, dev,
                     T, f.ms, c.ms, c.ms / f.ms, f.mib, c.mib, c.mib / std::max(f.mib, 0.1));
      }

  // The spatial transformer's paths, one intra-op thread on CPU (as `ppl --threads 1 train`).
  fmt::print("\nspatial transformer, forward + backward, median time: axis-aligned boxes as [B, 4] against the\n"
             "same boxes as [B, 6] (always ATen's affine grid + grid sampler); [B, 4] resamples separably when\n"
             "the output has more pixels than the source, else takes the grid sampler too\n");
  fmt::print("{:<15} {:<5} {:>22} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9}\n", "op", "dev", "shape", "[B, 4] path",
             "[B, 4] ms", "[B, 6] ms", "speedup", "[B, 4] MiB", "[B, 6] MiB");
  for (const auto& dev : devices)
    for (const auto& s : kStnShapes) {
      const int threads = dev == "cpu" ? 1 : 0;
      const auto f = measure(argv[0], s.op, "axis", 0, dev, 10, threads);
      const auto g = measure(argv[0], s.op, "grid", 0, dev, 10, threads);
      const auto shape = fmt::format("{} x {}x{} -> {}x{}", s.batch, s.src_side, s.src_side, s.out_side, s.out_side);
      // stn_place and stn_crop resample separably when the output has more pixels than the source.
      const bool separable = s.out_side > s.src_side;
      fmt::print("{:<15} {:<5} {:>22} {:>10} {:>8.2f} {:>8.2f} {:>8.1f}x {:>9.1f} {:>9.1f}\n", s.op, dev, shape,
                 separable ? "separable" : "grid", f.ms, g.ms, g.ms / f.ms, f.mib, g.mib);
    }

  // Thread scaling of the fused CPU kernels (one batch element or stroke per
  // task): the same work on 1, 2, 4, ... intra-op threads, up to the cores
  // this process may use, each in a fresh process.
  const int cores = static_cast<int>(std::max<long>(1, sysconf(_SC_NPROCESSORS_ONLN)));
  fmt::print("\nCPU thread scaling of the fused kernels, T = 4 ({} cores online)\n", cores);
  fmt::print("{:<10} {:>8} {:>10} {:>10} {:>11}\n", "op", "threads", "ms", "speedup", "efficiency");
  for (const std::string op : {"render", "composite"}) {
    double one = 0;
    for (int threads = 1; threads <= cores; threads = threads < cores && threads * 2 > cores ? cores : threads * 2) {
      const auto r = measure(argv[0], op, "fused", 4, "cpu", 10, threads);
      if (threads == 1) one = r.ms;
      fmt::print("{:<10} {:>8} {:>10.2f} {:>9.2f}x {:>10.0f}%\n", op, threads, r.ms, one / r.ms,
                 100.0 * one / r.ms / threads);
      if (threads == cores) break;
    }
  }
  return 0;
}
