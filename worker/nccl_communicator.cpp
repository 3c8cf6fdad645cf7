#include "worker/nccl_communicator.hpp"

#include <cuda_runtime.h>
#include <nccl.h>

#include <stdexcept>
#include <thread>

#include "worker/trainer.hpp"

namespace e2e {

namespace {

ncclDataType_t nccl_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return ncclFloat32;
    case torch::kFloat64:
      return ncclFloat64;
    case torch::kFloat16:
      return ncclFloat16;
    case torch::kBFloat16:
      return ncclBfloat16;
    case torch::kInt32:
      return ncclInt32;
    case torch::kInt64:
      return ncclInt64;
    case torch::kUInt8:
      return ncclUint8;
    default:
      throw std::invalid_argument(std::string("NCCL communicator: unsupported dtype ") + c10::toString(type));
  }
}

void check_cuda(cudaError_t code, const char* what) {
  if (code != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(code));
}

}  // namespace

struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;  // the legacy default stream: ordered with LibTorch's default stream
  bool aborted = false;
};

NcclCommunicator::NcclCommunicator(MPI_Comm group, int cuda_device, std::chrono::seconds timeout)
    : host_(group), state_(std::make_unique<State>()), timeout_(timeout) {
  check_cuda(cudaSetDevice(cuda_device), "cudaSetDevice");
  ncclUniqueId id;
  std::string id_bytes(sizeof id, '\0');
  if (host_.is_leader()) {
    if (ncclGetUniqueId(&id) != ncclSuccess) throw std::runtime_error("ncclGetUniqueId failed");
    std::memcpy(id_bytes.data(), &id, sizeof id);
  }
  host_.broadcast_bytes(id_bytes, 0);
  std::memcpy(&id, id_bytes.data(), sizeof id);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // non-blocking: lets us time out and abort instead of hanging
  ncclResult_t result = ncclCommInitRankConfig(&state_->comm, host_.size(), id, host_.rank(), &config);
  if (result != ncclSuccess && result != ncclInProgress)
    throw std::runtime_error(std::string("ncclCommInitRankConfig: ") + ncclGetErrorString(result));
  wait_for_completion("ncclCommInitRank");
}

NcclCommunicator::~NcclCommunicator() {
  if (!state_->comm) return;
  if (state_->aborted) return;
  ncclCommFinalize(state_->comm);
  ncclCommDestroy(state_->comm);
}

void NcclCommunicator::wait_for_completion(const char* what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (true) {
    ncclResult_t async = ncclSuccess;
    ncclCommGetAsyncError(state_->comm, &async);
    if (async != ncclSuccess && async != ncclInProgress) {
      ncclCommAbort(state_->comm);
      state_->aborted = true;
      throw TrainingError(std::string(what) + " failed: " + ncclGetErrorString(async) +
                          " (communicator aborted)");
    }
    if (async == ncclSuccess && cudaStreamQuery(state_->stream) == cudaSuccess) return;
    if (std::chrono::steady_clock::now() > deadline) {
      ncclCommAbort(state_->comm);
      state_->aborted = true;
      throw TrainingError(std::string(what) + " timed out after " + std::to_string(timeout_.count()) +
                          " s (a peer is gone?); NCCL communicator aborted");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

void NcclCommunicator::broadcast(torch::Tensor& tensor, int root) {
  if (size() == 1) return;
  TORCH_CHECK(tensor.is_cuda() && tensor.is_contiguous(), "NCCL communicator needs contiguous CUDA tensors");
  ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                nccl_type(tensor.scalar_type()), root, state_->comm, state_->stream);
  wait_for_completion("ncclBroadcast");
}

void NcclCommunicator::all_reduce_sum(torch::Tensor& tensor) {
  if (size() == 1) return;
  TORCH_CHECK(tensor.is_cuda() && tensor.is_contiguous(), "NCCL communicator needs contiguous CUDA tensors");
  ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()),
                nccl_type(tensor.scalar_type()), ncclSum, state_->comm, state_->stream);
  wait_for_completion("ncclAllReduce");
}

}  // namespace e2e
