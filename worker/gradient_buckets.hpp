// Data-parallel gradient averaging in buckets, overlapped with the backward pass.
//
// Parameters are grouped, in reverse registration order (roughly the order backward produces their
// gradients), into buckets of about `bucket_bytes`. An autograd hook copies each gradient into its bucket's
// flat buffer; a bucket's all-reduce starts as soon as the bucket is complete, always in bucket order so
// that every rank issues the same collectives in the same order. finish() starts what is left, waits, and
// writes the averages into the parameters' .grad.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "worker/communicator.hpp"

namespace e2e {

class GradientBuckets {
 public:
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
