#include <algorithm>

#include <catch2/catch.hpp>

#include <ppl/runtime/device.hpp>

TEST_CASE("use_cuda_kernel routes cpu tensors to the cpu kernels", "[runtime]") {
  CHECK_FALSE(ppl::runtime::use_cuda_kernel("op", "x", torch::zeros({2})));
}

TEST_CASE("a cuda tensor without the cuda build is a clear error", "[runtime][cuda]") {
  if (!torch::cuda::is_available()) {
    WARN("no GPU: skipped");
    return;
  }
  auto x = torch::zeros({2}, torch::kCUDA);
  if (ppl::runtime::built_with_cuda()) {
    CHECK(ppl::runtime::use_cuda_kernel("op", "x", x));
  } else {
    CHECK_THROWS_WITH(ppl::runtime::use_cuda_kernel("render_strokes", "points", x),
                      Catch::Contains("render_strokes: points is a CUDA tensor"));
  }
}

TEST_CASE("set_cpu_threads sets libtorch's threads and the BLAS pool's", "[runtime]") {
  const int torch_before = torch::get_num_threads();
  const int blas_before = ppl::runtime::blas_threads();
  ppl::runtime::set_cpu_threads(1);
  CHECK(torch::get_num_threads() == 1);
  // 0: no BLAS with a queryable pool in this process (e.g. MKL); otherwise
  // the pool must have followed.
  const int blas = ppl::runtime::blas_threads();
  CHECK((blas == 0 || blas == 1));
  if (blas_before == 0) CHECK(blas == 0);
  // A product large enough to go through the BLAS still gives the right answer.
  auto a = torch::rand({64, 64}, torch::kFloat64);
  auto b = torch::rand({64, 64}, torch::kFloat64);
  CHECK(torch::allclose(a.matmul(b), (a.unsqueeze(2) * b.unsqueeze(0)).sum(1)));
  ppl::runtime::set_cpu_threads(std::max(torch_before, 1));
  if (blas_before > 0) CHECK(ppl::runtime::blas_threads() == std::max(torch_before, 1));

  CHECK_THROWS_WITH(ppl::runtime::set_cpu_threads(0), Catch::Contains("n is 0, but must be at least 1"));
}

TEST_CASE("faster_blas_core replaces only OpenBLAS's Prescott fallback, by the best kernels the CPU runs", "[runtime]") {
  using ppl::runtime::faster_blas_core;
  CHECK(faster_blas_core("Prescott", true, true, true) == "SkylakeX");
  CHECK(faster_blas_core("PRESCOTT", false, true, true) == "Haswell");
  CHECK(faster_blas_core("prescott", false, false, true) == "Sandybridge");
  CHECK(faster_blas_core("Prescott", false, false, false).empty());  // no AVX: Prescott is right
  for (const char* chosen : {"SkylakeX", "Haswell", "Cooperlake", "Zen", "Prescott2", "Presc", ""})
    CHECK(faster_blas_core(chosen, true, true, true).empty());
}
