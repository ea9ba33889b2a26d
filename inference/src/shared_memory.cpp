// The shared-memory all-reduce of shared_memory.hpp.
#include "shared_memory.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/torch.h>

#include <ppl/core/errors.hpp>

namespace ppl::infer::detail {

/// The first page of rank 0's control segment: a sense-free barrier (the
/// generation counts completed barriers) and each rank's byte count.
struct SharedMemoryReduce::Control {
  std::atomic<std::uint64_t> arrived;
  std::atomic<std::uint64_t> generation;
  std::atomic<std::uint64_t> bytes[64];
};

namespace {

constexpr std::size_t kControlBytes = 4096;
constexpr std::size_t kAlign = 64;
constexpr int kMaxRanks = 64;
static_assert(sizeof(std::atomic<std::uint64_t>) * (2 + kMaxRanks) <= kControlBytes);

std::string errno_text() { return std::strerror(errno); }

char* map(int fd, std::size_t bytes, const std::string& name) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw Error(fmt::format("distributed: cannot map shared memory {}: {}", name, errno_text()));
  return static_cast<char*>(p);
}

/// Waits until `n` ranks have added 1 to `key` of the store.
void store_barrier(c10d::Store& store, const std::string& key, int n, std::chrono::milliseconds timeout) {
  store.add(key, 1);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (store.add(key, 0) < n) {
    if (std::chrono::steady_clock::now() > deadline)
      throw Error(fmt::format("distributed: not every rank set up its shared memory within {} s",
                              timeout.count() / 1000));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

std::string SharedMemoryReduce::segment_name(int rank) const { return fmt::format("{}-{}", prefix_, rank); }

SharedMemoryReduce::SharedMemoryReduce(c10d::Store& store, const std::string& key, int rank, int size,
                                       std::chrono::milliseconds timeout)
    : rank_(rank), size_(size), timeout_(timeout), fds_(static_cast<std::size_t>(size), -1),
      maps_(static_cast<std::size_t>(size), nullptr) {
  if (size > kMaxRanks) throw Error(fmt::format("distributed: shared memory takes at most {} ranks", kMaxRanks));
  if (rank == 0) {
    prefix_ = fmt::format("/ppl-{}-{:x}", ::getpid(), std::random_device{}());
    store.set(key + "/name", std::vector<std::uint8_t>(prefix_.begin(), prefix_.end()));
  } else {
    const auto bytes = store.get(key + "/name");
    prefix_.assign(bytes.begin(), bytes.end());
  }
  const auto own = segment_name(rank);
  fds_[static_cast<std::size_t>(rank)] = ::shm_open(own.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fds_[static_cast<std::size_t>(rank)] < 0)
    throw Error(fmt::format("distributed: cannot create shared memory {}: {}", own, errno_text()));
  const auto control_name = prefix_ + "-control";
  if (rank == 0) {
    control_fd_ = ::shm_open(control_name.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600);
    if (control_fd_ < 0 || ::ftruncate(control_fd_, kControlBytes) != 0)
      throw Error(fmt::format("distributed: cannot create shared memory {}: {}", control_name, errno_text()));
    control_ = new (map(control_fd_, kControlBytes, control_name)) Control{};
  }
  store_barrier(store, key + "/created", size, timeout);
  for (int k = 0; k < size; ++k) {
    if (k == rank) continue;
    const auto name = segment_name(k);
    fds_[static_cast<std::size_t>(k)] = ::shm_open(name.c_str(), O_RDWR, 0600);
    if (fds_[static_cast<std::size_t>(k)] < 0)
      throw Error(fmt::format("distributed: cannot open shared memory {}: {}", name, errno_text()));
  }
  if (rank != 0) {
    // Rank 0 constructed the control block before the barrier above.
    control_fd_ = ::shm_open(control_name.c_str(), O_RDWR, 0600);
    if (control_fd_ < 0)
      throw Error(fmt::format("distributed: cannot open shared memory {}: {}", control_name, errno_text()));
    control_ = static_cast<Control*>(static_cast<void*>(map(control_fd_, kControlBytes, control_name)));
  }
  store_barrier(store, key + "/opened", size, timeout);
  // Every rank holds every segment open: the names can go, so nothing is
  // left behind in /dev/shm however the processes end.
  ::shm_unlink(own.c_str());
  if (rank == 0) ::shm_unlink(control_name.c_str());
}

SharedMemoryReduce::~SharedMemoryReduce() {
  for (auto* m : maps_)
    if (m) ::munmap(m, capacity_);
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
  if (control_) ::munmap(control_, kControlBytes);
  if (control_fd_ >= 0) ::close(control_fd_);
}

bool SharedMemoryReduce::takes(const torch::Tensor& t) {
  return t.defined() && t.device().is_cpu() && (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble);
}

void SharedMemoryReduce::barrier() {
  const auto generation = control_->generation.load(std::memory_order_acquire);
  if (control_->arrived.fetch_add(1, std::memory_order_acq_rel) + 1 == static_cast<std::uint64_t>(size_)) {
    control_->arrived.store(0, std::memory_order_relaxed);
    control_->generation.fetch_add(1, std::memory_order_release);
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  for (std::uint64_t spins = 0; control_->generation.load(std::memory_order_acquire) == generation; ++spins) {
    // Spin briefly (the ranks usually arrive together), then yield the
    // core, then sleep: a rank that waits long must not hold a core.
    if (spins < 2000) continue;
    if (spins < 4000) {
      ::sched_yield();
      continue;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    if ((spins & 255) == 0 && std::chrono::steady_clock::now() > deadline)
      throw Error(fmt::format("distributed all-reduce failed on rank {} of {}: the other ranks did not arrive within "
                              "{} s (another rank stopped or timed out)",
                              rank_, size_, timeout_.count() / 1000));
  }
}

void SharedMemoryReduce::reserve(std::size_t bytes) {
  control_->bytes[rank_].store(bytes, std::memory_order_relaxed);
  if (bytes > capacity_) {
    const std::size_t grown = std::max(bytes, capacity_ * 3 / 2);
    const std::size_t capacity = (grown + (1u << 20) - 1) / (1u << 20) * (1u << 20);
    if (::ftruncate(fds_[static_cast<std::size_t>(rank_)], static_cast<off_t>(capacity)) != 0)
      throw Error(fmt::format("distributed: cannot grow shared memory {} to {} bytes: {}", segment_name(rank_),
                              capacity, errno_text()));
    barrier();  // every segment has grown
    for (int k = 0; k < size_; ++k) {
      auto& m = maps_[static_cast<std::size_t>(k)];
      if (m) ::munmap(m, capacity_);
      m = map(fds_[static_cast<std::size_t>(k)], capacity, segment_name(k));
    }
    capacity_ = capacity;
  }
}

void SharedMemoryReduce::all_reduce_sum(std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  std::vector<std::size_t> offsets;
  std::size_t bytes = 0;
  for (const auto& t : tensors) {
    offsets.push_back(bytes);
    bytes += (t.nbytes() + kAlign - 1) / kAlign * kAlign;
  }
  // Every rank grows (or not) alike, since all pass the same sizes; the
  // byte counts are compared after the first barrier.
  reserve(bytes);
  char* own = maps_[static_cast<std::size_t>(rank_)];
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    auto view = torch::from_blob(own + offsets[i], tensors[i].sizes(), tensors[i].options());
    view.copy_(tensors[i]);
  }
  barrier();
  for (int k = 0; k < size_; ++k)
    if (control_->bytes[k].load(std::memory_order_relaxed) != bytes)
      throw Error(fmt::format("distributed all-reduce failed on rank {} of {}: rank {} passes {} bytes of tensors, "
                              "this rank {}; every rank must pass the same tensors",
                              rank_, size_, k, control_->bytes[k].load(std::memory_order_relaxed), bytes));
  // This rank's share of each tensor: elements [n r / W, n (r + 1) / W).
  const auto share = [&](const torch::Tensor& t, int r) {
    const auto n = t.numel();
    return std::pair{n * r / size_, n * (r + 1) / size_};
  };
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const auto [lo, hi] = share(tensors[i], rank_);
    if (hi == lo) continue;
    const auto options = tensors[i].options();
    const auto element = static_cast<std::size_t>(tensors[i].element_size());
    const auto at = offsets[i] + static_cast<std::size_t>(lo) * element;
    auto sum = torch::from_blob(own + at, {hi - lo}, options);
    for (int k = 0; k < size_; ++k)
      if (k != rank_)
        sum.add_(torch::from_blob(maps_[static_cast<std::size_t>(k)] + at, {hi - lo}, options));
  }
  barrier();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    auto& t = tensors[i];
    const auto element = static_cast<std::size_t>(t.element_size());
    auto flat = t.is_contiguous() ? t.view({-1}) : torch::empty({t.numel()}, t.options());
    for (int k = 0; k < size_; ++k) {
      const auto [lo, hi] = share(t, k);
      if (hi > lo)
        std::memcpy(static_cast<char*>(flat.data_ptr()) + static_cast<std::size_t>(lo) * element,
                    maps_[static_cast<std::size_t>(k)] + offsets[i] + static_cast<std::size_t>(lo) * element,
                    static_cast<std::size_t>(hi - lo) * element);
    }
    if (!t.is_contiguous()) t.copy_(flat.view(t.sizes()));
  }
  barrier();  // no rank writes its segment again before every rank has read it
}

}  // namespace ppl::infer::detail
