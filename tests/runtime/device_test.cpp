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
