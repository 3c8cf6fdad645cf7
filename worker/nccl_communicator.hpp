// Communicator on CUDA tensors over NCCL (GPU clusters). Compiled only when the LibTorch found has CUDA and
// nccl.h is available (E2E_HAVE_NCCL). The NCCL unique id travels over the job's MPI communicator, which
// also carries the small host-side collectives. Every collective runs with a timeout: a dead peer aborts
// the NCCL communicator and raises an error instead of hanging forever.
#pragma once

#include <chrono>
#include <memory>

#include "worker/mpi_communicator.hpp"

namespace e2e {

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(MPI_Comm group, int cuda_device, std::chrono::seconds timeout = std::chrono::seconds(600));
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  std::string backend() const override { return "nccl"; }

  void broadcast(torch::Tensor& tensor, int root) override;
  void all_reduce_sum(torch::Tensor& tensor) override;
  void all_reduce_sum(std::vector<double>& values) override { host_.all_reduce_sum(values); }
  void broadcast_bytes(std::string& bytes, int root) override { host_.broadcast_bytes(bytes, root); }
  void barrier() override { host_.barrier(); }

 private:
  struct State;
  void wait_for_completion(const char* what);

  MpiCommunicator host_;
  std::unique_ptr<State> state_;
  std::chrono::seconds timeout_;
};

}  // namespace e2e
