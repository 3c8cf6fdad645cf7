// Communicator over an MPI communicator, on CPU tensors (tests, CPU clusters) and host buffers.
#pragma once

#include <mpi.h>

#include <memory>

#include "worker/communicator.hpp"

namespace e2e {

class MpiCommunicator : public Communicator {
 public:
  // Duplicates `comm` so that our collectives never interleave with anybody else's traffic on it.
  explicit MpiCommunicator(MPI_Comm comm);
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }
  MPI_Comm handle() const { return comm_; }

  void broadcast(torch::Tensor& tensor, int root) override;
  void all_reduce_sum(torch::Tensor& tensor) override;
  std::unique_ptr<PendingCollective> start_all_reduce_sum(torch::Tensor& tensor) override;
  void all_reduce_sum(std::vector<double>& values) override;
  void broadcast_bytes(std::string& bytes, int root) override;
  void barrier() override;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

// The communicator of one job's rank group: NCCL on CUDA when this build has it and a GPU is present
// (one GPU per rank, chosen by local rank), MPI on CPU otherwise; a group of one gets the no-op backend.
std::unique_ptr<Communicator> make_job_communicator(MPI_Comm group);
bool nccl_available();
// NCCL on `cuda_device` for every group size (one included); throws std::runtime_error in a build without it.
std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, int cuda_device);

// MPI_Init_thread on first use (MPI_THREAD_MULTIPLE wanted: loader threads never call MPI, but the status
// server and the coordinator may); MPI_Finalize at exit when we initialized it.
void ensure_mpi_initialized();

}  // namespace e2e
