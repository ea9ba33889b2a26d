#pragma once
/// Data-parallel training over torch.distributed (c10d): the process group
/// that `Svi` reduces gradients and baseline statistics over, how to join one
/// (a TCPStore rendezvous; Gloo on CPUs, NCCL on GPUs where libtorch has it),
/// and the torchrun environment.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <torch/types.h>

namespace ppl::infer {

/// A group of processes ("ranks") that train one model together, each on its
/// own share of the data.
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  /// This process's rank, 0 .. size() - 1.
  virtual int rank() const = 0;
  /// The number of ranks.
  virtual int size() const = 0;
  /// "gloo" or "nccl".
  virtual std::string backend() const = 0;
  /// Whether all-reduces of CPU floating-point tensors go through shared
  /// memory (every rank on this machine) rather than the backend.
  virtual bool shared_memory() const { return false; }
  /// Sums each tensor elementwise over the ranks, in place (many small
  /// tensors are gathered into buckets of up to 16 MB). Every rank passes
  /// tensors of the same shapes, dtypes and order. Throws ppl::Error when a
  /// rank fails or times out.
  virtual void all_reduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  /// Copies each tensor of rank `root` into every rank's, in place.
  virtual void broadcast(std::vector<torch::Tensor>& tensors, int root = 0) = 0;
};

/// The backends of `init_process_group`.
enum class Backend { gloo, nccl };
/// "gloo" / "nccl".
std::string_view to_string(Backend b);
/// The backend named `name`; ArgumentError listing the names otherwise.
Backend backend_from(std::string_view name);

/// How a process joins a group: the address of rank 0's store, its rank and
/// the group's size (torchrun's MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE).
struct DistributedOptions {
  Backend backend = Backend::gloo;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  int rank = 0;
  int world_size = 1;
  /// The rank's index on its machine (its GPU with NCCL).
  int local_rank = 0;
  /// How long every rank waits for the others to join.
  std::chrono::milliseconds rendezvous_timeout{60'000};
  /// How long a collective operation may take before it fails (a rank that
  /// died or hangs).
  std::chrono::milliseconds timeout{300'000};
  /// With Gloo, when every rank runs on this machine: all-reduce CPU
  /// floating-point tensors through POSIX shared memory (each rank sums its
  /// share of the elements of all ranks' copies) instead of loopback sockets.
  bool shared_memory = true;
};

/// The group described by the torchrun environment (MASTER_ADDR, MASTER_PORT,
/// RANK, WORLD_SIZE, LOCAL_RANK; and PPL_SHARED_MEMORY, 0 or 1, for
/// `shared_memory`), or nullopt when WORLD_SIZE is not set.
/// Throws ArgumentError naming the variable for a missing or bad value.
std::optional<DistributedOptions> distributed_from_environment();

/// Joins the group: rank 0 serves a TCPStore on master_port, every rank
/// connects to it, then the backend connects the ranks. Throws ppl::Error
/// naming the address and port when the port is taken, when a rank does not
/// join within the rendezvous timeout, or for NCCL without a CUDA build.
std::shared_ptr<ProcessGroup> init_process_group(const DistributedOptions& options);

/// A free TCP port on this machine's loopback interface (for a local group).
int free_port();

/// Broadcasts the bytes `data` of rank `root` to every rank (any size).
void broadcast_bytes(ProcessGroup& group, std::string& data, int root = 0);

}  // namespace ppl::infer
