#pragma once
// An all-reduce through POSIX shared memory, for ranks on one machine: each
// rank copies its tensors into a segment of its own, sums its share of every
// tensor's elements across all segments, then copies every rank's summed
// share back out. Three copies of the data through memory, against Gloo's
// loopback sockets (distributed.cpp uses it when every rank has the same
// host name).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

namespace c10d {
class Store;
}

namespace ppl::infer::detail {

class SharedMemoryReduce {
 public:
  /// Joins the segments of the `size` ranks through `store` (names under
  /// `key`); every rank constructs one at the same point of its program.
  /// Throws ppl::Error naming the segment when the system refuses one.
  SharedMemoryReduce(c10d::Store& store, const std::string& key, int rank, int size,
                     std::chrono::milliseconds timeout);
  ~SharedMemoryReduce();
  SharedMemoryReduce(const SharedMemoryReduce&) = delete;
  SharedMemoryReduce& operator=(const SharedMemoryReduce&) = delete;

  /// Whether all_reduce_sum takes `t`: a CPU tensor of float or double.
  static bool takes(const torch::Tensor& t);
  /// Sums each tensor elementwise over the ranks, in place (contiguous or
  /// not). Every rank passes tensors of the same shapes, dtypes and order:
  /// ppl::Error when the ranks' total sizes differ, or when a rank does not
  /// arrive within the timeout.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors);

 private:
  struct Control;
  /// Waits until every rank has called it as often as this one.
  void barrier();
  /// Makes every segment hold `bytes` (all ranks ask for the same).
  void reserve(std::size_t bytes);
  std::string segment_name(int rank) const;

  int rank_, size_;
  std::chrono::milliseconds timeout_;
  std::string prefix_;
  std::vector<int> fds_;
  std::vector<char*> maps_;
  std::size_t capacity_ = 0;
  int control_fd_ = -1;
  Control* control_ = nullptr;
};

}  // namespace ppl::infer::detail
