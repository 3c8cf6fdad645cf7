#include "worker/mpi_communicator.hpp"

#include <climits>
#include <cstdlib>
#include <stdexcept>

#ifdef E2E_HAVE_NCCL
#include "worker/nccl_communicator.hpp"
#endif

namespace e2e {

namespace {

MPI_Datatype mpi_type(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat32:
      return MPI_FLOAT;
    case torch::kFloat64:
      return MPI_DOUBLE;
    case torch::kInt32:
      return MPI_INT32_T;
    case torch::kInt64:
      return MPI_INT64_T;
    case torch::kUInt8:
      return MPI_UINT8_T;
    case torch::kBool:
      return MPI_C_BOOL;
    default:
      throw std::invalid_argument(std::string("MPI communicator: unsupported dtype ") + c10::toString(type));
  }
}

void check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  char message[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, message, &length);
  throw std::runtime_error(std::string(what) + ": " + std::string(message, length));
}

void check_tensor(const torch::Tensor& t) {
  TORCH_CHECK(t.device().is_cpu(), "MPI communicator needs CPU tensors (use NCCL for CUDA)");
  TORCH_CHECK(t.is_contiguous(), "MPI communicator needs contiguous tensors");
}

// MPI counts are ints: large tensors go in chunks.
template <typename Fn>
void in_chunks(int64_t count, std::size_t element_size, char* data, Fn fn) {
  const int64_t chunk = INT_MAX / 2;
  for (int64_t offset = 0; offset < count; offset += chunk)
    fn(data + offset * static_cast<int64_t>(element_size), static_cast<int>(std::min(chunk, count - offset)));
}

}  // namespace

bool nccl_available() {
#ifdef E2E_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Communicator> make_job_communicator(MPI_Comm group) {
  int size = 1;
  MPI_Comm_size(group, &size);
  if (size == 1) return std::make_unique<SingleProcessCommunicator>();
  if (nccl_available() && torch::cuda::is_available())
    return make_nccl_communicator(group, local_cuda_device());
  return std::make_unique<MpiCommunicator>(group);
}

std::unique_ptr<Communicator> make_nccl_communicator(MPI_Comm group, int cuda_device) {
#ifdef E2E_HAVE_NCCL
  return std::make_unique<NcclCommunicator>(group, cuda_device);
#else
  (void)group;
  (void)cuda_device;
  throw std::runtime_error("this build has no NCCL communicator (LibTorch without CUDA, or NCCL not found)");
#endif
}

void ensure_mpi_initialized() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
  std::atexit([] {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  });
}

MpiCommunicator::MpiCommunicator(MPI_Comm comm) {
  check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (comm_ != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm_);
}

void MpiCommunicator::broadcast(torch::Tensor& tensor, int root) {
  if (size_ == 1) return;
  check_tensor(tensor);
  const MPI_Datatype type = mpi_type(tensor.scalar_type());
  in_chunks(tensor.numel(), tensor.element_size(), static_cast<char*>(tensor.data_ptr()),
            [&](char* data, int count) { check(MPI_Bcast(data, count, type, root, comm_), "MPI_Bcast"); });
}

void MpiCommunicator::all_reduce_sum(torch::Tensor& tensor) {
  if (size_ == 1) return;
  check_tensor(tensor);
  const MPI_Datatype type = mpi_type(tensor.scalar_type());
  in_chunks(tensor.numel(), tensor.element_size(), static_cast<char*>(tensor.data_ptr()),
            [&](char* data, int count) {
              check(MPI_Allreduce(MPI_IN_PLACE, data, count, type, MPI_SUM, comm_), "MPI_Allreduce");
            });
}

namespace {

class MpiPending : public PendingCollective {
 public:
  explicit MpiPending(std::vector<MPI_Request> requests) : requests_(std::move(requests)) {}
  void wait() override {
    if (requests_.empty()) return;
    check(MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE),
          "MPI_Waitall");
    requests_.clear();
  }
  ~MpiPending() override {
    if (!requests_.empty())
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
  }

 private:
  std::vector<MPI_Request> requests_;
};

}  // namespace

std::unique_ptr<PendingCollective> MpiCommunicator::start_all_reduce_sum(torch::Tensor& tensor) {
  std::vector<MPI_Request> requests;
  if (size_ > 1) {
    check_tensor(tensor);
    const MPI_Datatype type = mpi_type(tensor.scalar_type());
    in_chunks(tensor.numel(), tensor.element_size(), static_cast<char*>(tensor.data_ptr()),
              [&](char* data, int count) {
                MPI_Request request;
                check(MPI_Iallreduce(MPI_IN_PLACE, data, count, type, MPI_SUM, comm_, &request),
                      "MPI_Iallreduce");
                requests.push_back(request);
              });
  }
  return std::make_unique<MpiPending>(std::move(requests));
}

void MpiCommunicator::all_reduce_sum(std::vector<double>& values) {
  if (size_ == 1 || values.empty()) return;
  check(
      MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()), MPI_DOUBLE, MPI_SUM, comm_),
      "MPI_Allreduce");
}

void MpiCommunicator::broadcast_bytes(std::string& bytes, int root) {
  if (size_ == 1) return;
  uint64_t length = bytes.size();
  check(MPI_Bcast(&length, 1, MPI_UINT64_T, root, comm_), "MPI_Bcast");
  bytes.resize(length);
  in_chunks(static_cast<int64_t>(length), 1, bytes.data(), [&](char* data, int count) {
    check(MPI_Bcast(data, count, MPI_CHAR, root, comm_), "MPI_Bcast");
  });
}

void MpiCommunicator::barrier() {
  if (size_ > 1) check(MPI_Barrier(comm_), "MPI_Barrier");
}

}  // namespace e2e
