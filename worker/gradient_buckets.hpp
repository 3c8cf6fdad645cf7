// Data-parallel gradient averaging in buckets, overlapped with the backward pass.
//
// BucketSchedule groups the parameters into buckets and decides when each may launch. An autograd hook
// copies each gradient into its bucket's flat buffer (allocated once) and starts the all-reduces the
// schedule releases, always in bucket order. On NCCL they run on the communicator's own CUDA stream,
// ordered against the compute stream by events. finish() launches what is left, joins every all-reduce and
// writes the averages into the parameters' .grad, in place.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "worker/communicator.hpp"

namespace e2e {

class GradientBuckets {
 public:
  // All parameters must share one dtype and device.
  GradientBuckets(const std::vector<torch::Tensor>& parameters, Communicator& comm,
                  int64_t bucket_bytes = int64_t{25} << 20);
  ~GradientBuckets();
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  void prepare();  // before backward
  void finish();   // after backward: the .grad of every parameter that got one holds the average
  int64_t bucket_count() const;

 private:
  struct State;
  std::shared_ptr<State> state_;  // shared with the hooks, which may outlive this object
};

}  // namespace e2e
