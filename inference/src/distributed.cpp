// Process groups over c10d: a TCPStore rendezvous and Gloo (NCCL when
// libtorch was built with it).
#include <ppl/infer/distributed.hpp>

#include <arpa/inet.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <ppl/core/errors.hpp>

#include "shared_memory.hpp"

namespace ppl::infer {

std::string_view to_string(Backend b) { return b == Backend::gloo ? "gloo" : "nccl"; }

Backend backend_from(std::string_view name) {
  if (name == "gloo") return Backend::gloo;
  if (name == "nccl") return Backend::nccl;
  throw ArgumentError(fmt::format("distributed backend \"{}\" is not one of gloo, nccl", name));
}

namespace {

/// The first line of a c10d error (its messages carry C++ stack traces).
std::string first_line(const c10::Error& e) {
  std::string what = e.what_without_backtrace();
  return what.substr(0, what.find('\n'));
}

/// A ProcessGroup over a c10d group or backend of type G (ProcessGroupGloo,
/// ProcessGroupNCCL): the methods used here exist under the same names in
/// libtorch 1.13 and 2.x.
template <class G>
class C10dGroup : public ProcessGroup {
 public:
  C10dGroup(c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<G> group, Backend backend)
      : store_(std::move(store)), group_(std::move(group)), backend_(backend) {}
  int rank() const override { return group_->getRank(); }
  int size() const override { return group_->getSize(); }
  std::string backend() const override { return std::string(to_string(backend_)); }

  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override {
    // Buckets of consecutive tensors of one dtype and device, at most 16 MB
    // each (a larger tensor alone), flattened into one: few calls of the
    // backend, each large.
    constexpr int64_t kBucketBytes = 16 << 20;
    struct Bucket {
      std::size_t first, last;
      torch::Tensor flat;
    };
    std::vector<Bucket> buckets;
    for (std::size_t i = 0; i < tensors.size();) {
      const auto& t = tensors[i];
      std::size_t j = i;
      int64_t bytes = 0;
      while (j < tensors.size() && tensors[j].scalar_type() == t.scalar_type() && tensors[j].device() == t.device() &&
             (j == i || bytes + static_cast<int64_t>(tensors[j].nbytes()) <= kBucketBytes)) {
        bytes += static_cast<int64_t>(tensors[j].nbytes());
        ++j;
      }
      torch::Tensor flat;
      if (j == i + 1 && t.is_contiguous()) {
        flat = t;  // reduced in place
      } else {
        std::vector<torch::Tensor> parts;
        for (std::size_t k = i; k < j; ++k) parts.push_back(tensors[k].reshape({-1}));
        flat = torch::cat(parts);
      }
      buckets.push_back({i, j, flat});
      i = j;
    }
    run("all-reduce", [&] {
      std::vector<c10::intrusive_ptr<c10d::Work>> work;
      std::vector<std::vector<torch::Tensor>> args;
      args.reserve(buckets.size());
      for (auto& b : buckets) {
        args.push_back({b.flat});
        work.push_back(group_->allreduce(args.back()));
      }
      for (auto& w : work) w->wait();
    });
    for (auto& b : buckets) {
      if (b.flat.is_same(tensors[b.first])) continue;
      int64_t at = 0;
      for (std::size_t k = b.first; k < b.last; ++k) {
        auto& t = tensors[k];
        t.copy_(b.flat.narrow(0, at, t.numel()).view(t.sizes()));
        at += t.numel();
      }
    }
  }

  void broadcast(std::vector<torch::Tensor>& tensors, int root) override {
    run("broadcast", [&] {
      std::vector<c10::intrusive_ptr<c10d::Work>> work;
      std::vector<std::vector<torch::Tensor>> args;
      args.reserve(tensors.size());
      c10d::BroadcastOptions options;
      options.rootRank = root;
      for (auto& t : tensors) {
        args.push_back({t});
        work.push_back(group_->broadcast(args.back(), options));
      }
      for (auto& w : work) w->wait();
    });
  }

 private:
  template <class F>
  void run(const char* what, F&& f) {
    try {
      f();
    } catch (const c10::Error& e) {
      throw Error(fmt::format("distributed {} failed on rank {} of {}: {} (another rank stopped or timed out)", what,
                              rank(), size(), first_line(e)));
    } catch (const std::exception& e) {
      throw Error(fmt::format("distributed {} failed on rank {} of {}: {} (another rank stopped or timed out)", what,
                              rank(), size(), e.what()));
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<G> group_;
  Backend backend_;
};

/// A group of ranks on one machine: all-reduces of CPU floating-point
/// tensors go through shared memory, everything else through `inner`.
class SharedMemoryGroup : public ProcessGroup {
 public:
  SharedMemoryGroup(std::shared_ptr<ProcessGroup> inner, c10d::Store& store, std::chrono::milliseconds timeout)
      : inner_(std::move(inner)), reduce_(store, "ppl/shm", inner_->rank(), inner_->size(), timeout) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::string backend() const override { return inner_->backend(); }
  bool shared_memory() const override { return true; }
  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override {
    if (std::all_of(tensors.begin(), tensors.end(), detail::SharedMemoryReduce::takes)) {
      reduce_.all_reduce_sum(tensors);
      return;
    }
    inner_->all_reduce_sum(tensors);
  }
  void broadcast(std::vector<torch::Tensor>& tensors, int root) override { inner_->broadcast(tensors, root); }

 private:
  std::shared_ptr<ProcessGroup> inner_;
  detail::SharedMemoryReduce reduce_;
};

/// Whether every rank of the store's group runs on this machine (the same
/// host name).
bool all_on_this_host(c10d::Store& store, int rank, int size) {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  const std::string host(name);
  store.set(fmt::format("ppl/host/{}", rank), std::vector<std::uint8_t>(host.begin(), host.end()));
  bool same = true;
  for (int k = 0; k < size; ++k) {
    const auto other = store.get(fmt::format("ppl/host/{}", k));
    same = same && std::string(other.begin(), other.end()) == host;
  }
  return same;
}

int env_int(const char* name, bool required, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    if (required) throw ArgumentError(fmt::format("distributed: the environment variable {} is not set", name));
    return fallback;
  }
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v, &end, 10);
  if (errno != 0 || *end != '\0' || n < 0 || n > 1'000'000)
    throw ArgumentError(fmt::format("distributed: {} is \"{}\", but must be a whole number of at least 0", name, v));
  return static_cast<int>(n);
}

}  // namespace

std::optional<DistributedOptions> distributed_from_environment() {
  const char* world = std::getenv("WORLD_SIZE");
  if (!world || !*world) return std::nullopt;
  DistributedOptions o;
  o.world_size = env_int("WORLD_SIZE", true, 1);
  o.rank = env_int("RANK", true, 0);
  o.local_rank = env_int("LOCAL_RANK", false, o.rank);
  o.master_port = env_int("MASTER_PORT", true, 29500);
  const char* addr = std::getenv("MASTER_ADDR");
  if (!addr || !*addr) throw ArgumentError("distributed: the environment variable MASTER_ADDR is not set");
  o.master_addr = addr;
  if (const char* shm = std::getenv("PPL_SHARED_MEMORY"); shm && *shm) {
    const std::string v = shm;
    if (v != "0" && v != "1")
      throw ArgumentError(fmt::format("distributed: PPL_SHARED_MEMORY is \"{}\", but must be 0 or 1", v));
    o.shared_memory = v == "1";
  }
  if (o.world_size < 1) throw ArgumentError("distributed: WORLD_SIZE is 0, but must be at least 1");
  if (o.rank >= o.world_size)
    throw ArgumentError(fmt::format("distributed: RANK is {}, but WORLD_SIZE is {}", o.rank, o.world_size));
  if (o.master_port < 1 || o.master_port > 65535)
    throw ArgumentError(fmt::format("distributed: MASTER_PORT is {}, but must be a port from 1 to 65535", o.master_port));
  return o;
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(fmt::format("distributed: cannot open a socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw Error(fmt::format("distributed: cannot find a free port on the loopback interface: {}", why));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::shared_ptr<ProcessGroup> init_process_group(const DistributedOptions& o) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
    throw ArgumentError(fmt::format("distributed: rank {} of a group of {} does not exist", o.rank, o.world_size));
  const auto where = fmt::format("{}:{}", o.master_addr, o.master_port);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(o.master_port);
    so.isServer = o.rank == 0;
    so.numWorkers = static_cast<std::size_t>(o.world_size);
    // TCPStore's own wait for the workers gives up silently at its timeout;
    // the ranks count themselves in below instead.
    so.waitWorkers = false;
    so.timeout = o.rendezvous_timeout;
    store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
    store->add("ppl/joined", 1);
    const auto deadline = std::chrono::steady_clock::now() + o.rendezvous_timeout;
    for (;;) {
      const auto joined = store->add("ppl/joined", 0);
      if (joined >= o.world_size) break;
      if (std::chrono::steady_clock::now() > deadline)
        throw Error(fmt::format("distributed: rank {}: only {} of {} ranks joined the rendezvous at {} within {} s "
                                "(did a rank not start, or was it given another MASTER_PORT?)",
                                o.rank, joined, o.world_size, where, o.rendezvous_timeout.count() / 1000));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    what = what.substr(0, what.find('\n'));
    throw Error(fmt::format("distributed: rank {} could not {} the rendezvous at {} within {} s: {}{}", o.rank,
                            o.rank == 0 ? "serve" : "reach", where, o.rendezvous_timeout.count() / 1000, what,
                            o.rank == 0 ? " (is the port in use, or did a rank not start?)" : ""));
  }
  try {
    if (o.backend == Backend::nccl) {
#ifdef USE_C10D_NCCL
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = o.timeout;
      auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, o.rank, o.world_size, options);
      return std::make_shared<C10dGroup<c10d::ProcessGroupNCCL>>(store, group, Backend::nccl);
#else
      throw ArgumentError("distributed: this build of libtorch has no NCCL; use --backend gloo");
#endif
    }
    auto options = c10d::ProcessGroupGloo::Options::create(o.timeout);
    // A group on one machine talks over loopback; across machines, through
    // GLOO_SOCKET_IFNAME's interface or the one this host's name resolves to.
    const bool local = o.master_addr == "127.0.0.1" || o.master_addr == "localhost";
    const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
    options->devices.push_back(local ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                               : interface && *interface
                                   ? c10d::ProcessGroupGloo::createDeviceForInterface(interface)
                                   : c10d::ProcessGroupGloo::createDefaultDevice());
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, o.rank, o.world_size, options);
    std::shared_ptr<ProcessGroup> gloo = std::make_shared<C10dGroup<c10d::ProcessGroupGloo>>(store, group, Backend::gloo);
    if (o.shared_memory && o.world_size > 1 && all_on_this_host(*store, o.rank, o.world_size))
      return std::make_shared<SharedMemoryGroup>(std::move(gloo), *store, o.timeout);
    return gloo;
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string what = e.what();
    throw Error(fmt::format("distributed: rank {} could not connect the {} group through {}: {}", o.rank,
                            to_string(o.backend), where, what.substr(0, what.find('\n'))));
  }
}

void broadcast_bytes(ProcessGroup& group, std::string& data, int root) {
  std::vector<torch::Tensor> size{torch::tensor({static_cast<int64_t>(data.size())}, torch::kLong)};
  group.broadcast(size, root);
  const auto n = size[0].item<int64_t>();
  std::vector<torch::Tensor> bytes{torch::empty({n}, torch::kUInt8)};
  if (group.rank() == root && n > 0) std::memcpy(bytes[0].data_ptr(), data.data(), static_cast<size_t>(n));
  if (n > 0) group.broadcast(bytes, root);
  data.assign(static_cast<const char*>(bytes[0].data_ptr()), static_cast<size_t>(n));
}

}  // namespace ppl::infer
