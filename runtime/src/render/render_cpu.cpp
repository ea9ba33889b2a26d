// CPU reference kernels of render_strokes: one stroke per task of
// at::parallel_for. The Gaussian splat is separable,
//   exp(-(dx^2 + dy^2) / (2 s^2)) = ex[n, w] * ey[n, h],
// so a stroke costs S (H + W) exponentials and an [H, S] x [S, W] product,
// and the backward recomputes them instead of storing S x H x W values.
// Each curve sample's factors are computed and used only in the window of
// pixels where they can be nonzero (see splat_stroke).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

#include "render_kernels.hpp"

namespace ppl::runtime::detail {

std::vector<double> bernstein_weights(std::int64_t samples, std::int64_t control_points) {
  const std::int64_t degree = control_points - 1;
  std::vector<double> binom(static_cast<std::size_t>(control_points), 1.0);
  for (std::int64_t k = 1; k <= degree; ++k)
    binom[k] = binom[k - 1] * static_cast<double>(degree - k + 1) / static_cast<double>(k);
  std::vector<double> weights(static_cast<std::size_t>(samples * control_points));
  for (std::int64_t n = 0; n < samples; ++n) {
    const double u = samples > 1 ? static_cast<double>(n) / static_cast<double>(samples - 1) : 0.0;
    for (std::int64_t k = 0; k <= degree; ++k)
      weights[n * control_points + k] =
          binom[k] * std::pow(1.0 - u, static_cast<double>(degree - k)) * std::pow(u, static_cast<double>(k));
  }
  return weights;
}

namespace {

// Per-thread scratch for one stroke.
template <typename scalar_t>
struct StrokeScratch {
  std::vector<scalar_t> bx, by;  // [S] curve samples
  std::vector<scalar_t> ex, ey;  // [S, W], [S, H] separable splat factors, set inside each sample's window
  std::vector<scalar_t> raw;     // [H, W] Eq. 11
  std::vector<std::int64_t> x0, x1, y0, y1;  // [S] each sample's window: columns [x0, x1), rows [y0, y1)
  StrokeScratch(std::int64_t S, std::int64_t H, std::int64_t W)
      : bx(S), by(S), ex(S * W), ey(S * H), raw(H * W), x0(S), x1(S), y0(S), y1(S) {}
};

// The pixels i of an axis of n whose coordinate i / n lies within `reach`
// of c, as [lo, hi), with a pixel to spare on each side; the whole axis when
// c or reach is not finite.
template <typename scalar_t>
void window(scalar_t c, scalar_t reach, std::int64_t n, std::int64_t& lo, std::int64_t& hi) {
  const double a = (static_cast<double>(c) - reach) * n, b = (static_cast<double>(c) + reach) * n;
  if (!std::isfinite(a) || !std::isfinite(b)) {
    lo = 0, hi = n;
    return;
  }
  lo = static_cast<std::int64_t>(std::clamp(std::floor(a) - 1, 0.0, static_cast<double>(n)));
  hi = std::max(lo, static_cast<std::int64_t>(std::clamp(std::ceil(b) + 2, 0.0, static_cast<double>(n))));
}

// Fills bx, by, ex, ey and raw for one stroke; returns the index of the
// largest raw value.
template <typename scalar_t>
std::int64_t splat_stroke(StrokeScratch<scalar_t>& s, const scalar_t* pts, scalar_t sigma,
                          const std::vector<scalar_t>& bern, std::int64_t K, std::int64_t S,
                          std::int64_t H, std::int64_t W) {
  const scalar_t inv2s2 = scalar_t(1) / (scalar_t(2) * sigma * sigma);
  const scalar_t inv_w = scalar_t(1) / static_cast<scalar_t>(W);
  const scalar_t inv_h = scalar_t(1) / static_cast<scalar_t>(H);
  // A factor exp(-d^2 / (2 sigma^2)) farther than `reach` from its sample
  // is below the smallest normal number (13.2 sigma in float), which the
  // kernels' flush-to-zero mode makes 0, and so is every product with it:
  // the loops skip those pixels, whose terms were exact zeros.
  const scalar_t reach = sigma * std::sqrt(scalar_t(-2) * std::log(std::numeric_limits<scalar_t>::min()));
  for (std::int64_t n = 0; n < S; ++n) {
    scalar_t x = 0, y = 0;
    for (std::int64_t k = 0; k < K; ++k) {
      x += bern[n * K + k] * pts[2 * k];
      y += bern[n * K + k] * pts[2 * k + 1];
    }
    s.bx[n] = x;
    s.by[n] = y;
    window(x, reach, W, s.x0[n], s.x1[n]);
    window(y, reach, H, s.y0[n], s.y1[n]);
    scalar_t* exn = s.ex.data() + n * W;
    for (std::int64_t w = s.x0[n]; w < s.x1[n]; ++w) {
      const scalar_t d = static_cast<scalar_t>(w) * inv_w - x;
      exn[w] = std::exp(-d * d * inv2s2);
    }
    scalar_t* eyn = s.ey.data() + n * H;
    for (std::int64_t h = s.y0[n]; h < s.y1[n]; ++h) {
      const scalar_t d = static_cast<scalar_t>(h) * inv_h - y;
      eyn[h] = std::exp(-d * d * inv2s2);
    }
  }
  std::fill(s.raw.begin(), s.raw.end(), scalar_t(0));
  for (std::int64_t n = 0; n < S; ++n) {
    const scalar_t* exn = s.ex.data() + n * W;
    const scalar_t* eyn = s.ey.data() + n * H;
    const std::int64_t w0 = s.x0[n], w1 = s.x1[n];
    for (std::int64_t h = s.y0[n]; h < s.y1[n]; ++h) {
      const scalar_t e = eyn[h];
      scalar_t* row = s.raw.data() + h * W;
      for (std::int64_t w = w0; w < w1; ++w) row[w] += e * exn[w];
    }
  }
  return std::max_element(s.raw.begin(), s.raw.end()) - s.raw.begin();
}

// Sets the calling thread's SSE flush-to-zero and denormals-are-zero modes
// for its lifetime. The splat products ey[n, h] * ex[n, w] of pixels far from
// a curve sample fall below the smallest normal number, and on x86 each
// such subnormal costs a microcode assist (docs/runtime.md has the timings).
// Flushed, they count as 0, which they are next to the stroke's maximum, by
// which raw is divided.
class FlushSubnormals {
 public:
  FlushSubnormals() {
#if defined(__SSE2__)
    saved_ = _mm_getcsr();
    _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero);
#endif
  }
  ~FlushSubnormals() {
#if defined(__SSE2__)
    _mm_setcsr(saved_);
#endif
  }
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  static constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;
  unsigned saved_ = 0;
};

template <typename scalar_t>
std::vector<scalar_t> bernstein_as(std::int64_t S, std::int64_t K) {
  const auto w = bernstein_weights(S, K);
  return std::vector<scalar_t>(w.begin(), w.end());
}

}  // namespace

torch::Tensor render_forward_cpu(const torch::Tensor& points, const torch::Tensor& sigma,
                                 const torch::Tensor& omega0, std::int64_t H, std::int64_t W,
                                 std::int64_t S) {
  const auto N = points.size(0), K = points.size(1);
  auto out = torch::empty({N, H, W}, points.options());
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "render_forward_cpu", [&] {
    const auto bern = bernstein_as<scalar_t>(S, K);
    const scalar_t* pts = points.data_ptr<scalar_t>();
    const scalar_t* sig = sigma.data_ptr<scalar_t>();
    const scalar_t* om0 = omega0.data_ptr<scalar_t>();
    scalar_t* dst = out.data_ptr<scalar_t>();
    at::parallel_for(0, N, 1, [&](std::int64_t begin, std::int64_t end) {
      const FlushSubnormals flush;
      StrokeScratch<scalar_t> s(S, H, W);
      for (std::int64_t i = begin; i < end; ++i) {
        const auto arg = splat_stroke(s, pts + i * K * 2, sig[i], bern, K, S, H, W);
        const scalar_t m = s.raw[arg];
        scalar_t* o = dst + i * H * W;
        if (!normalisable(m, om0[i])) {  // every splat (nearly) underflowed: an empty stroke
          std::fill(o, o + H * W, scalar_t(0));
          continue;
        }
        const scalar_t scale = scalar_t(1) / (m * om0[i]);
        for (std::int64_t p = 0; p < H * W; ++p) o[p] = std::tanh(s.raw[p] * scale);
      }
    });
  });
  return out;
}

RenderGrads render_backward_cpu(const torch::Tensor& grad_out, const torch::Tensor& points,
                                const torch::Tensor& sigma, const torch::Tensor& omega0,
                                std::int64_t H, std::int64_t W, std::int64_t S, bool detach_max) {
  const auto N = points.size(0), K = points.size(1);
  auto g_points = torch::zeros_like(points);
  auto g_sigma = torch::zeros_like(sigma);
  auto g_omega0 = torch::zeros_like(omega0);
  AT_DISPATCH_FLOATING_TYPES(points.scalar_type(), "render_backward_cpu", [&] {
    const auto bern = bernstein_as<scalar_t>(S, K);
    const scalar_t* pts = points.data_ptr<scalar_t>();
    const scalar_t* sig = sigma.data_ptr<scalar_t>();
    const scalar_t* om0 = omega0.data_ptr<scalar_t>();
    const scalar_t* gout = grad_out.data_ptr<scalar_t>();
    scalar_t* gp = g_points.data_ptr<scalar_t>();
    scalar_t* gs = g_sigma.data_ptr<scalar_t>();
    scalar_t* go = g_omega0.data_ptr<scalar_t>();
    at::parallel_for(0, N, 1, [&](std::int64_t begin, std::int64_t end) {
      const FlushSubnormals flush;
      StrokeScratch<scalar_t> s(S, H, W);
      std::vector<scalar_t> graw(H * W), dex(S * W), dey(S * H), gbx(S), gby(S);
      const scalar_t inv_w = scalar_t(1) / static_cast<scalar_t>(W);
      const scalar_t inv_h = scalar_t(1) / static_cast<scalar_t>(H);
      for (std::int64_t i = begin; i < end; ++i) {
        const auto arg = splat_stroke(s, pts + i * K * 2, sig[i], bern, K, S, H, W);
        const scalar_t m = s.raw[arg];
        if (!normalisable(m, om0[i])) continue;  // constant zero output: zero gradients
        const scalar_t w0 = om0[i];
        const scalar_t scale = scalar_t(1) / (m * w0);
        const scalar_t* g = gout + i * H * W;
        // Eq. 13 and 12 backwards: out = tanh(raw / (m w0)).
        scalar_t g_w0 = 0, g_m = 0;
        for (std::int64_t p = 0; p < H * W; ++p) {
          const scalar_t o = std::tanh(s.raw[p] * scale);
          const scalar_t gz = g[p] * (scalar_t(1) - o * o) * scale;  // d/d raw, m held fixed
          graw[p] = gz;
          g_m += gz * s.raw[p];
        }
        // d out / d w0 = -(1 - o^2) raw / (m w0^2) = -(gz raw) / w0; likewise for m.
        g_w0 = -g_m / w0;
        g_m = -g_m / m;
        if (!detach_max) graw[arg] += g_m;  // the max's own gradient, unless it is held fixed
        go[i] = g_w0;
        // Eq. 11 backwards through raw = ey^T ex.
        // Only the products inside each sample's window are nonzero, so
        // dex and dey are needed (and set) there only.
        std::fill(dex.begin(), dex.end(), scalar_t(0));
        for (std::int64_t n = 0; n < S; ++n) {
          const scalar_t* eyn = s.ey.data() + n * H;
          const scalar_t* exn = s.ex.data() + n * W;
          scalar_t* dexn = dex.data() + n * W;
          scalar_t* deyn = dey.data() + n * H;
          const std::int64_t w0 = s.x0[n], w1 = s.x1[n];
          for (std::int64_t h = s.y0[n]; h < s.y1[n]; ++h) {
            const scalar_t* gr = graw.data() + h * W;
            const scalar_t e = eyn[h];
            scalar_t acc = 0;
            for (std::int64_t w = w0; w < w1; ++w) {
              dexn[w] += e * gr[w];
              acc += exn[w] * gr[w];
            }
            deyn[h] = acc;
          }
        }
        const scalar_t sg = sig[i];
        const scalar_t inv_s2 = scalar_t(1) / (sg * sg);
        scalar_t g_sig = 0;
        for (std::int64_t n = 0; n < S; ++n) {
          const scalar_t* exn = s.ex.data() + n * W;
          const scalar_t* eyn = s.ey.data() + n * H;
          const scalar_t* dexn = dex.data() + n * W;
          const scalar_t* deyn = dey.data() + n * H;
          scalar_t ax = 0, ay = 0, a2 = 0;
          for (std::int64_t w = s.x0[n]; w < s.x1[n]; ++w) {
            const scalar_t d = static_cast<scalar_t>(w) * inv_w - s.bx[n];
            const scalar_t t = dexn[w] * exn[w] * d;
            ax += t;
            a2 += t * d;
          }
          for (std::int64_t h = s.y0[n]; h < s.y1[n]; ++h) {
            const scalar_t d = static_cast<scalar_t>(h) * inv_h - s.by[n];
            const scalar_t t = deyn[h] * eyn[h] * d;
            ay += t;
            a2 += t * d;
          }
          // d e / d b = e d / s^2 and d e / d s = e d^2 / s^3.
          gbx[n] = ax * inv_s2;
          gby[n] = ay * inv_s2;
          g_sig += a2;
        }
        gs[i] = g_sig * inv_s2 / sg;
        scalar_t* gpi = gp + i * K * 2;
        for (std::int64_t k = 0; k < K; ++k) {
          scalar_t ax = 0, ay = 0;
          for (std::int64_t n = 0; n < S; ++n) {
            ax += bern[n * K + k] * gbx[n];
            ay += bern[n * K + k] * gby[n];
          }
          gpi[2 * k] = ax;
          gpi[2 * k + 1] = ay;
        }
      }
    });
  });
  return {g_points, g_sigma, g_omega0};
}

}  // namespace ppl::runtime::detail
