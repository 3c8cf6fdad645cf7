// Collective operations among the ranks of one training job. Backends: a world of one (no-op), MPI on CPU
// tensors, NCCL on CUDA tensors. The trainer is written once against this interface.
#pragma once

#include <torch/torch.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace e2e {

// A collective in flight; wait() blocks until its result is in place.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;
  bool is_leader() const { return rank() == 0; }

  // Tensors must be contiguous and live where the backend expects them (CPU for MPI, CUDA for NCCL).
  virtual void broadcast(torch::Tensor& tensor, int root) = 0;
  virtual void all_reduce_sum(torch::Tensor& tensor) = 0;
  void all_reduce_average(torch::Tensor& tensor) {
    all_reduce_sum(tensor);
    if (size() > 1) tensor.div_(size());
  }
  // Starts a sum all-reduce and returns without waiting (the gradient buckets overlap it with the rest of
  // the backward pass). Calls must be made in the same order on every rank, and the tensor must stay alive
  // until the collective was waited for. Default: synchronous.
  virtual std::unique_ptr<PendingCollective> start_all_reduce_sum(torch::Tensor& tensor);
  // Small host-side values (epoch statistics, hashes, topology bytes).
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  virtual void broadcast_bytes(std::string& bytes, int root) = 0;
  virtual void barrier() = 0;
};

inline std::unique_ptr<PendingCollective> Communicator::start_all_reduce_sum(torch::Tensor& tensor) {
  struct Done : PendingCollective {
    void wait() override {}
  };
  all_reduce_sum(tensor);
  return std::make_unique<Done>();
}

// The CUDA device of this rank: its node-local rank (Open MPI, Slurm or torchrun variables) modulo the
// visible devices. One GPU per rank; 0 when the launcher sets no local rank.
inline int local_cuda_device() {
  int local_rank = 0;
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "LOCAL_RANK"})
    if (const char* value = std::getenv(name)) {
      local_rank = std::atoi(value);
      break;
    }
  const int devices = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 1;
  return local_rank % devices;
}

// Where this rank trains: its CUDA device (above) when CUDA is available, else the CPU.
inline torch::Device local_training_device() {
  if (!torch::cuda::is_available()) return torch::kCPU;
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_cuda_device()));
}

// A job of one rank: every collective is the identity.
class SingleProcessCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void broadcast(torch::Tensor&, int) override {}
  void all_reduce_sum(torch::Tensor&) override {}
  void all_reduce_sum(std::vector<double>&) override {}
  void broadcast_bytes(std::string&, int) override {}
  void barrier() override {}
};

}  // namespace e2e
