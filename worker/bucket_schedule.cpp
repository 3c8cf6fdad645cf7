#include "worker/bucket_schedule.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace e2e {

BucketSchedule::BucketSchedule(const std::vector<int64_t>& parameter_bytes, int64_t bucket_bytes)
    : bucket_of_(parameter_bytes.size()),
      offset_of_(parameter_bytes.size()),
      received_(parameter_bytes.size(), false) {
  for (std::size_t k = parameter_bytes.size(); k-- > 0;) {
    if (parameter_bytes[k] < 0)
      throw std::invalid_argument("gradient buckets: parameter " + std::to_string(k) +
                                  " has a negative size");
    if (buckets_.empty() || buckets_.back().bytes >= bucket_bytes) buckets_.emplace_back();
    Bucket& bucket = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    offset_of_[k] = bucket.bytes;
    bucket.members.push_back(k);
    bucket.bytes += parameter_bytes[k];
  }
}

void BucketSchedule::reset() {
  for (Bucket& bucket : buckets_) bucket.ready = 0;
  std::fill(received_.begin(), received_.end(), false);
  next_launch_ = 0;
  finished_ = false;
}

BucketRange BucketSchedule::mark_ready(std::size_t parameter) {
  if (parameter >= received_.size())
    throw std::out_of_range("gradient buckets: no parameter " + std::to_string(parameter));
  if (finished_)
    throw std::logic_error("gradient buckets: parameter " + std::to_string(parameter) +
                           " received a gradient after the step's buckets were finished");
  if (received_[parameter])
    throw std::logic_error("gradient buckets: parameter " + std::to_string(parameter) +
                           " received a second gradient in one step (two backward passes between prepare() "
                           "and finish()?); its bucket may already be in flight");
  received_[parameter] = true;
  ++buckets_[bucket_of_[parameter]].ready;
  const std::size_t first = next_launch_;
  while (next_launch_ < buckets_.size() &&
         buckets_[next_launch_].ready == buckets_[next_launch_].members.size())
    ++next_launch_;
  return {first, next_launch_};
}

BucketRange BucketSchedule::finish() {
  finished_ = true;
  const BucketRange rest{next_launch_, buckets_.size()};
  next_launch_ = buckets_.size();
  return rest;
}

}  // namespace e2e
