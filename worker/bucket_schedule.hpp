// Which gradient bucket may start its all-reduce, and when (no LibTorch: unit-tested on its own).
//
// Parameters are assigned, in reverse registration order (roughly the order backward produces their
// gradients), to buckets of at least `bucket_bytes` (the last one may be smaller; a parameter is never
// split). A bucket is complete when all its parameters have a gradient. Buckets launch strictly in bucket
// order, so that every rank issues the same collectives in the same order: a bucket that completes before an
// earlier one waits for it. Parameters that get no gradient in a step (unused heads) hold their bucket back
// until finish().
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace e2e {

// Buckets [first, last) in bucket order.
struct BucketRange {
  std::size_t first = 0;
  std::size_t last = 0;
  bool empty() const { return first == last; }
  std::size_t size() const { return last - first; }
};

class BucketSchedule {
 public:
  // parameter_bytes: the gradient size of each parameter, in registration order.
  BucketSchedule(const std::vector<int64_t>& parameter_bytes, int64_t bucket_bytes);

  std::size_t parameter_count() const { return bucket_of_.size(); }
  std::size_t bucket_count() const { return buckets_.size(); }
  std::size_t bucket_of(std::size_t parameter) const { return bucket_of_.at(parameter); }
  int64_t offset_of(std::size_t parameter) const { return offset_of_.at(parameter); }  // bytes, in its bucket
  const std::vector<std::size_t>& parameters_in(std::size_t bucket) const {
    return buckets_.at(bucket).members;
  }
  int64_t bytes_of(std::size_t bucket) const { return buckets_.at(bucket).bytes; }

  void reset();  // a new step: no gradient received, nothing launched
  // A parameter's gradient arrived: the buckets that may launch now (possibly none). Throws std::logic_error
  // for a second gradient of the same parameter in one step, or for one after finish().
  BucketRange mark_ready(std::size_t parameter);
  // Backward is over: the buckets not launched yet (incomplete ones included).
  BucketRange finish();

  bool received(std::size_t parameter) const { return received_.at(parameter); }
  std::size_t launched() const { return next_launch_; }

 private:
  struct Bucket {
    std::vector<std::size_t> members;
    int64_t bytes = 0;
    std::size_t ready = 0;  // members with a gradient this step
  };

  std::vector<Bucket> buckets_;
  std::vector<std::size_t> bucket_of_;
  std::vector<int64_t> offset_of_;
  std::vector<bool> received_;
  std::size_t next_launch_ = 0;
  bool finished_ = false;
};

}  // namespace e2e
