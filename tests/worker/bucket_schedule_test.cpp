#include "worker/bucket_schedule.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::size_t> range_of(BucketRange range) {
  std::vector<std::size_t> buckets;
  for (std::size_t b = range.first; b < range.last; ++b) buckets.push_back(b);
  return buckets;
}

// Four parameters of 40, 8, 24 and 16 bytes with 32-byte buckets: bucket 0 = {3, 2}, bucket 1 = {1, 0}.
BucketSchedule two_buckets() {
  return BucketSchedule({40, 8, 24, 16}, 32);
}

TEST(BucketSchedule, AssignsInReverseRegistrationOrderUntilABucketIsFull) {
  const BucketSchedule schedule = two_buckets();
  ASSERT_EQ(schedule.bucket_count(), 2u);
  EXPECT_THAT(schedule.parameters_in(0), ElementsAre(3u, 2u));
  EXPECT_THAT(schedule.parameters_in(1), ElementsAre(1u, 0u));
  EXPECT_EQ(schedule.bytes_of(0), 40);
  EXPECT_EQ(schedule.bytes_of(1), 48);
  EXPECT_EQ(schedule.bucket_of(0), 1u);
  EXPECT_EQ(schedule.bucket_of(3), 0u);
  EXPECT_EQ(schedule.offset_of(3), 0);
  EXPECT_EQ(schedule.offset_of(2), 16);
  EXPECT_EQ(schedule.offset_of(1), 0);
  EXPECT_EQ(schedule.offset_of(0), 8);
}

TEST(BucketSchedule, LargeParameterGetsItsOwnBucketAndTinyCapOneEach) {
  const BucketSchedule big({4, 1000, 4}, 16);
  ASSERT_EQ(big.bucket_count(), 2u);
  EXPECT_THAT(big.parameters_in(0), ElementsAre(2u, 1u));
  EXPECT_THAT(big.parameters_in(1), ElementsAre(0u));
  const BucketSchedule tiny({4, 4, 4}, 0);
  EXPECT_EQ(tiny.bucket_count(), 3u);
  const BucketSchedule none({}, 16);
  EXPECT_EQ(none.bucket_count(), 0u);
  EXPECT_THROW(BucketSchedule({4, -1}, 16), std::invalid_argument);
}

TEST(BucketSchedule, BucketLaunchesWhenItsLastGradientArrives) {
  BucketSchedule schedule = two_buckets();
  schedule.reset();
  EXPECT_TRUE(schedule.mark_ready(3).empty());
  EXPECT_THAT(range_of(schedule.mark_ready(2)), ElementsAre(0u));
  EXPECT_TRUE(schedule.mark_ready(1).empty());
  EXPECT_THAT(range_of(schedule.mark_ready(0)), ElementsAre(1u));
  EXPECT_EQ(schedule.launched(), 2u);
  EXPECT_TRUE(schedule.finish().empty());
}

TEST(BucketSchedule, LateBucketHoldsBackTheLaterOnesThenAllLaunchInOrder) {
  BucketSchedule schedule({4, 4, 4, 4}, 4);  // one parameter per bucket: bucket b holds parameter 3 - b
  schedule.reset();
  EXPECT_TRUE(schedule.mark_ready(0).empty());  // bucket 3 complete, 0..2 not
  EXPECT_TRUE(schedule.mark_ready(2).empty());  // bucket 1 complete, bucket 0 not
  EXPECT_THAT(range_of(schedule.mark_ready(3)), ElementsAre(0u, 1u));
  EXPECT_THAT(range_of(schedule.mark_ready(1)), ElementsAre(2u, 3u));
  EXPECT_TRUE(schedule.finish().empty());
}

TEST(BucketSchedule, SecondGradientInOneStepIsAnError) {
  BucketSchedule schedule = two_buckets();
  schedule.reset();
  schedule.mark_ready(3);
  try {
    schedule.mark_ready(3);
    FAIL() << "no error for a duplicate gradient";
  } catch (const std::logic_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("parameter 3 received a second gradient"));
  }
  EXPECT_THROW(schedule.mark_ready(4), std::out_of_range);
}

TEST(BucketSchedule, UnusedParameterHoldsItsBucketUntilFinish) {
  BucketSchedule schedule = two_buckets();
  schedule.reset();
  schedule.mark_ready(3);
  // Parameter 2 never gets a gradient: bucket 0 and the complete bucket 1 behind it wait for finish().
  EXPECT_TRUE(schedule.mark_ready(1).empty());
  EXPECT_TRUE(schedule.mark_ready(0).empty());
  EXPECT_FALSE(schedule.received(2));
  EXPECT_TRUE(schedule.received(0));
  EXPECT_THAT(range_of(schedule.finish()), ElementsAre(0u, 1u));
  EXPECT_THROW(schedule.mark_ready(2), std::logic_error);  // too late: its bucket is in flight
}

TEST(BucketSchedule, FinishLaunchesOnlyWhatIsLeft) {
  BucketSchedule schedule = two_buckets();
  schedule.reset();
  schedule.mark_ready(3);
  schedule.mark_ready(2);
  EXPECT_THAT(range_of(schedule.finish()), ElementsAre(1u));
}

TEST(BucketSchedule, ResetStartsANewStep) {
  BucketSchedule schedule = two_buckets();
  for (int step = 0; step < 3; ++step) {
    schedule.reset();
    EXPECT_EQ(schedule.launched(), 0u);
    EXPECT_FALSE(schedule.received(3));
    schedule.mark_ready(3);
    EXPECT_THAT(range_of(schedule.mark_ready(2)), ElementsAre(0u));
    EXPECT_THAT(range_of(schedule.finish()), ElementsAre(1u));
  }
}

}  // namespace
}  // namespace e2e
