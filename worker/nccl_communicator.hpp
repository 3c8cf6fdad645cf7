// Communicator on CUDA tensors over NCCL (GPU clusters). Compiled only when the LibTorch found has CUDA and
// nccl.h is available (E2E_HAVE_NCCL). The NCCL unique id travels over the job's MPI communicator, which
// also carries the small host-side collectives.
//
// Every collective runs on the communicator's own CUDA stream, ordered after the work already queued on the
// caller's current stream by an event; waiting makes the caller's current stream wait for it in turn. So
// start_all_reduce_sum, called from an autograd hook, overlaps the all-reduce with the rest of the backward
// pass. Every wait also watches the collective from the host with a timeout: a dead peer aborts the NCCL
// communicator and raises TrainingError instead of hanging forever. A group of one runs real NCCL calls too
// (a GPU check of this code on one device); jobs of one rank get the no-op backend instead.
#pragma once

#include <chrono>
#include <memory>

#include "worker/mpi_communicator.hpp"

namespace e2e {

class NcclState;  // shared with the collectives in flight

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
  // The tensor must stay alive until the returned collective was waited for (or destroyed).
  std::unique_ptr<PendingCollective> start_all_reduce_sum(torch::Tensor& tensor) override;
  void all_reduce_sum(std::vector<double>& values) override { host_.all_reduce_sum(values); }
  void broadcast_bytes(std::string& bytes, int root) override { host_.broadcast_bytes(bytes, root); }
  void barrier() override { host_.barrier(); }

 private:
  MpiCommunicator host_;
  std::shared_ptr<NcclState> state_;
};

}  // namespace e2e
