#include "worker/nccl_communicator.hpp"

#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <cstring>
#include <mutex>
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

// One collective's events: `ready` marks the caller's work it follows, `done` its own end.
struct CollectiveEvents {
  at::cuda::CUDAEvent ready{cudaEventDisableTiming};
  at::cuda::CUDAEvent done{cudaEventDisableTiming};
};

}  // namespace

class NcclState {
 public:
  NcclState(int device, std::chrono::seconds timeout)
      : device_(static_cast<c10::DeviceIndex>(device)), timeout_(timeout) {
    check_cuda(cudaSetDevice(device), "cudaSetDevice");
    int least = 0, greatest = 0;
    check_cuda(cudaDeviceGetStreamPriorityRange(&least, &greatest), "cudaDeviceGetStreamPriorityRange");
    // Non-blocking: LibTorch computes on the legacy default stream, which would otherwise serialize with
    // ours and undo the overlap.
    check_cuda(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, greatest), "cudaStreamCreate");
  }
  ~NcclState() { cudaStreamDestroy(stream_); }
  NcclState(const NcclState&) = delete;
  NcclState& operator=(const NcclState&) = delete;

  ncclComm_t& comm() { return comm_; }
  c10::DeviceIndex device() const { return device_; }
  c10::cuda::CUDAStream stream() const { return c10::cuda::getStreamFromExternal(stream_, device_); }
  c10::cuda::CUDAStream current_stream() const { return c10::cuda::getCurrentCUDAStream(device_); }
  bool usable() const { return comm_ != nullptr && !aborted_; }

  // Events are created once and recycled: a step launches the same collectives every time.
  std::unique_ptr<CollectiveEvents> take_events() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (free_events_.empty()) return std::make_unique<CollectiveEvents>();
    std::unique_ptr<CollectiveEvents> events = std::move(free_events_.back());
    free_events_.pop_back();
    return events;
  }
  void give_back(std::unique_ptr<CollectiveEvents> events) {
    std::lock_guard<std::mutex> lock(mutex_);
    free_events_.push_back(std::move(events));
  }

  // The result of an NCCL call on the non-blocking communicator: an error aborts; ncclInProgress means the
  // call is still being enqueued, which must end before the next NCCL call.
  void check_call(ncclResult_t result, const char* what) {
    if (result == ncclInProgress) await(what, [] { return true; });
    if (result != ncclSuccess && result != ncclInProgress)
      abort(std::string(what) + " failed: " + ncclGetErrorString(result));
  }

  // Polls until done() holds, with the communicator's timeout; a peer's failure or the timeout aborts the
  // communicator and throws TrainingError.
  template <typename Done>
  void await(const char* what, Done done) {
    if (!usable()) throw TrainingError(std::string(what) + ": the NCCL communicator is no longer usable");
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (true) {
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess && async != ncclInProgress)
        abort(std::string(what) + " failed: " + ncclGetErrorString(async));
      if (async == ncclSuccess && done()) return;
      if (std::chrono::steady_clock::now() > deadline)
        abort(std::string(what) + " timed out after " + std::to_string(timeout_.count()) +
              " s (a peer is gone?)");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  bool finished(const at::cuda::CUDAEvent& event, const char* what) {
    const cudaError_t status = cudaEventQuery(event.event());
    if (status == cudaSuccess) return true;
    if (status == cudaErrorNotReady) return false;
    abort(std::string(what) + ": CUDA error " + cudaGetErrorString(status));
  }

  [[noreturn]] void abort(const std::string& message) {
    ncclCommAbort(comm_);
    aborted_ = true;
    throw TrainingError(message + "; NCCL communicator aborted");
  }

  // Finalizes and destroys the communicator, waiting at most the timeout (then aborts it); never throws.
  void close() noexcept {
    if (!usable()) return;
    ncclResult_t state = ncclCommFinalize(comm_);
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (state == ncclInProgress && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) break;
    }
    if (state == ncclSuccess)
      ncclCommDestroy(comm_);
    else
      ncclCommAbort(comm_);
    comm_ = nullptr;
  }

 private:
  ncclComm_t comm_ = nullptr;
  c10::DeviceIndex device_;
  std::chrono::seconds timeout_;
  cudaStream_t stream_ = nullptr;
  std::atomic<bool> aborted_{false};
  std::mutex mutex_;  // the pool: hooks run on the autograd device thread
  std::vector<std::unique_ptr<CollectiveEvents>> free_events_;
};

namespace {

class NcclPending : public PendingCollective {
 public:
  NcclPending(std::shared_ptr<NcclState> state, std::unique_ptr<CollectiveEvents> events, const char* what)
      : state_(std::move(state)), events_(std::move(events)), what_(what) {}
  ~NcclPending() override {
    // Not waited for: at least keep later work on the caller's stream behind it (the buffer may be reused).
    if (events_ && state_->usable()) {
      try {
        events_->done.block(state_->current_stream());
      } catch (...) {
      }
    }
    if (events_) state_->give_back(std::move(events_));
  }

  void wait() override {
    if (!events_) return;
    c10::cuda::CUDAGuard guard(state_->device());
    events_->done.block(state_->current_stream());
    state_->await(what_, [this] { return state_->finished(events_->done, what_); });
    state_->give_back(std::move(events_));
  }

 private:
  std::shared_ptr<NcclState> state_;
  std::unique_ptr<CollectiveEvents> events_;
  const char* what_;
};

// Runs call(stream) on the communication stream after the work queued so far on the current stream.
template <typename Call>
std::unique_ptr<PendingCollective> enqueue(const std::shared_ptr<NcclState>& state,
                                           const torch::Tensor& tensor, const char* what, Call call) {
  TORCH_CHECK(tensor.is_cuda() && tensor.is_contiguous() && tensor.device().index() == state->device(),
              "NCCL communicator needs contiguous tensors on CUDA device ",
              static_cast<int>(state->device()));
  if (!state->usable())
    throw TrainingError(std::string(what) + ": the NCCL communicator is no longer usable");
  c10::cuda::CUDAGuard guard(state->device());
  std::unique_ptr<CollectiveEvents> events = state->take_events();
  const c10::cuda::CUDAStream comm_stream = state->stream();
  events->ready.record(state->current_stream());
  events->ready.block(comm_stream);
  state->check_call(call(comm_stream.stream()), what);
  events->done.record(comm_stream);
  return std::make_unique<NcclPending>(state, std::move(events), what);
}

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm group, int cuda_device, std::chrono::seconds timeout)
    : host_(group), state_(std::make_shared<NcclState>(cuda_device, timeout)) {
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
  const ncclResult_t result =
      ncclCommInitRankConfig(&state_->comm(), host_.size(), id, host_.rank(), &config);
  if (result != ncclSuccess && result != ncclInProgress)
    throw std::runtime_error(std::string("ncclCommInitRankConfig: ") + ncclGetErrorString(result));
  state_->await("ncclCommInitRank", [] { return true; });
}

NcclCommunicator::~NcclCommunicator() {
  state_->close();
}

void NcclCommunicator::broadcast(torch::Tensor& tensor, int root) {
  const ncclDataType_t type = nccl_type(tensor.scalar_type());
  enqueue(state_, tensor, "ncclBroadcast", [&](cudaStream_t stream) {
    return ncclBroadcast(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()), type,
                         root, state_->comm(), stream);
  })->wait();
}

void NcclCommunicator::all_reduce_sum(torch::Tensor& tensor) {
  start_all_reduce_sum(tensor)->wait();
}

std::unique_ptr<PendingCollective> NcclCommunicator::start_all_reduce_sum(torch::Tensor& tensor) {
  const ncclDataType_t type = nccl_type(tensor.scalar_type());
  return enqueue(state_, tensor, "ncclAllReduce", [&](cudaStream_t stream) {
    return ncclAllReduce(tensor.data_ptr(), tensor.data_ptr(), static_cast<size_t>(tensor.numel()), type,
                         ncclSum, state_->comm(), stream);
  });
}

}  // namespace e2e
