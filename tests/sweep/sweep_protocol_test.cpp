// The sweep's messages: every one survives its codec field for field, byte strings travel raw, NaN stays NaN,
// and bytes that are not a message fail with a ProtocolError naming the message and the field.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "orchestrator/sweep_protocol.hpp"

namespace e2e {
namespace {

using nlohmann::json;

template <typename Message>
Message round_trip(const Message& message) {
  const EncodedMessage encoded = encode(message);
  EXPECT_EQ(encoded.tag, tag_of<Message>());
  const SweepMessage decoded = decode(encoded.tag, encoded.bytes);
  EXPECT_TRUE(std::holds_alternative<Message>(decoded)) << message_name(encoded.tag);
  return std::get<Message>(decoded);
}

std::string msgpack_of(const json& body) {
  const std::vector<std::uint8_t> bytes = json::to_msgpack(body);
  return {bytes.begin(), bytes.end()};
}

std::string every_byte_value(int repeats) {
  std::string bytes;
  for (int r = 0; r < repeats; ++r)
    for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
  return bytes;
}

TEST(SweepProtocol, ReadyAndJobRoundTrip) {
  const ReadyMessage ready = round_trip(ReadyMessage{3, "node-7", true});
  EXPECT_EQ(ready.group, 3);
  EXPECT_EQ(ready.node, "node-7");
  EXPECT_TRUE(ready.stopping);

  JobMessage job;
  job.job = 42;
  job.kind = JobKind::Ensemble;
  job.fold = -1;
  job.sparsity = 0.8;
  job.seed = 18446744073709551615ULL;  // the largest seed a config can hold
  job.attempt = 2;
  job.out_dir = "runs/demo/test_s0.8_seed1";
  job.folds = {0, 2};
  job.fold_dirs = {"runs/demo/fold0_s0.8_seed1", "runs/demo/fold2_s0.8_seed1"};
  const JobMessage back = round_trip(job);
  EXPECT_EQ(back.job, 42);
  EXPECT_EQ(back.kind, JobKind::Ensemble);
  EXPECT_EQ(back.fold, -1);
  EXPECT_EQ(back.sparsity, 0.8);
  EXPECT_EQ(back.seed, job.seed);
  EXPECT_EQ(back.attempt, 2);
  EXPECT_EQ(back.out_dir, job.out_dir);
  EXPECT_EQ(back.folds, job.folds);
  EXPECT_EQ(back.fold_dirs, job.fold_dirs);
}

TEST(SweepProtocol, ReportsRoundTripWithNaNKept) {
  const StepMessage step = round_trip(StepMessage{5, 1, 8, 15, 50, std::nan(""), 4.25});
  EXPECT_EQ(step.job, 5);
  EXPECT_EQ(step.epoch, 1);
  EXPECT_EQ(step.epochs, 8);
  EXPECT_EQ(step.step, 15);
  EXPECT_EQ(step.steps, 50);
  EXPECT_TRUE(std::isnan(step.loss));
  EXPECT_EQ(step.iterations_per_second, 4.25);

  EpochRecord epoch;
  epoch.epoch = 3;
  epoch.train_loss = 0.5;
  epoch.val_loss = std::nan("");
  epoch.pseudo_dice = {0.25, std::nan("")};
  epoch.topology_updates = 7;
  const EpochMessage e = round_trip(EpochMessage{5, epoch});
  EXPECT_EQ(e.job, 5);
  EXPECT_EQ(e.epoch.epoch, 3);
  EXPECT_EQ(e.epoch.train_loss, 0.5);
  EXPECT_TRUE(std::isnan(e.epoch.val_loss));
  ASSERT_EQ(e.epoch.pseudo_dice.size(), 2U);
  EXPECT_TRUE(std::isnan(e.epoch.pseudo_dice[1]));
  EXPECT_EQ(e.epoch.topology_updates, 7);

  const CheckpointMessage c = round_trip(CheckpointMessage{5, {"runs/x/checkpoint.pt", "ab12", 400}});
  EXPECT_EQ(c.checkpoint.path, "runs/x/checkpoint.pt");
  EXPECT_EQ(c.checkpoint.sha256, "ab12");
  EXPECT_EQ(c.checkpoint.iteration, 400);

  const CaseDoneMessage d = round_trip(CaseDoneMessage{6, "case_007", 3, 9});
  EXPECT_EQ(d.case_id, "case_007");
  EXPECT_EQ(d.done, 3);
  EXPECT_EQ(d.total, 9);
}

TEST(SweepProtocol, OutcomesRoundTrip) {
  const FailedMessage failed = round_trip(FailedMessage{9, "loss is NaN", true});
  EXPECT_EQ(failed.job, 9);
  EXPECT_EQ(failed.error, "loss is NaN");
  EXPECT_TRUE(failed.permanent);
  EXPECT_EQ(round_trip(PreemptedMessage{11}).job, 11);
  const PreparedMessage prepared = round_trip(PreparedMessage{2, "data.dataset: no such folder"});
  EXPECT_EQ(prepared.exit_code, 2);
  EXPECT_EQ(prepared.error, "data.dataset: no such folder");
  round_trip(WaitMessage{});
  round_trip(StopMessage{});
  round_trip(StopNowMessage{});

  const SweepMessage outcome = to_message(PreemptedMessage{11});
  ASSERT_TRUE(std::holds_alternative<PreemptedMessage>(outcome));
  EXPECT_EQ(std::get<PreemptedMessage>(outcome).job, 11);
}

// The final topology is the largest thing a worker sends: it goes as a MessagePack byte string, not as text
// (hex would double it), and every byte value survives, NUL included.
TEST(SweepProtocol, ResultCarriesTheTopologyAsRawBytes) {
  ResultMessage result;
  result.job = 12;
  result.metrics = {{"summary", {{"mean_dice", 0.75}}}, {"cases", json::array()}};
  result.topology = every_byte_value(200);  // 51,200 bytes
  result.topology_updates = 30;
  const EncodedMessage encoded = encode(result);
  EXPECT_LT(encoded.bytes.size(), result.topology.size() + 256);
  const auto back = std::get<ResultMessage>(decode(encoded.tag, encoded.bytes));
  EXPECT_EQ(back.topology, result.topology);
  EXPECT_EQ(back.metrics, result.metrics);
  EXPECT_EQ(back.kind, JobKind::Train);
  EXPECT_EQ(back.topology_updates, 30);
}

TEST(SweepProtocol, EveryMessageHasItsOwnTagAndName) {
  std::set<int> tags;
  std::set<std::string> names;
  for (std::size_t i = 0; i < std::variant_size_v<SweepMessage>; ++i) {
    const int tag = kFirstMessageTag + static_cast<int>(i);
    tags.insert(tag);
    names.insert(message_name(tag));
  }
  EXPECT_EQ(tags.size(), std::variant_size_v<SweepMessage>);
  EXPECT_EQ(names.size(), std::variant_size_v<SweepMessage>);
  EXPECT_EQ(message_name(tag_of<ReadyMessage>()), "READY");
  EXPECT_EQ(message_name(tag_of<StopNowMessage>()), "STOP_NOW");
  EXPECT_EQ(message_name(tag_of<PreparedMessage>()), "PREPARED");
  EXPECT_EQ(tag_of(SweepMessage(ResultMessage{})), tag_of<ResultMessage>());
  EXPECT_EQ(message_name(7), "tag 7");
}

void expect_protocol_error(int tag, const std::string& bytes, const std::vector<std::string>& mentions) {
  try {
    decode(tag, bytes);
    FAIL() << "decoded without an error";
  } catch (const ProtocolError& e) {
    for (const std::string& text : mentions)
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(SweepProtocol, BadBytesNameTheMessageAndTheField) {
  expect_protocol_error(99, msgpack_of(json::object()), {"unknown tag 99"});
  expect_protocol_error(tag_of<ResultMessage>(), "\xc1 not msgpack", {"RESULT", "not MessagePack"});
  expect_protocol_error(tag_of<ReadyMessage>(), msgpack_of(json::array({1, 2})), {"READY", "not a map"});
  expect_protocol_error(tag_of<FailedMessage>(), msgpack_of({{"job", 1}}),
                        {"FAILED", "\"error\"", "missing"});
  expect_protocol_error(tag_of<FailedMessage>(),
                        msgpack_of({{"job", "one"}, {"error", "x"}, {"permanent", false}}),
                        {"FAILED", "\"job\"", "wrong type"});
  expect_protocol_error(tag_of<ResultMessage>(),
                        msgpack_of({{"job", 1},
                                    {"kind", "train"},
                                    {"metrics", json::array()},
                                    {"topology", json::binary({})},
                                    {"topology_updates", 0}}),
                        {"RESULT", "\"metrics\"", "not an object"});
  expect_protocol_error(tag_of<ResultMessage>(),
                        msgpack_of({{"job", 1},
                                    {"kind", "train"},
                                    {"metrics", json::object()},
                                    {"topology", "0a0b"},
                                    {"topology_updates", 0}}),
                        {"RESULT", "\"topology\"", "not a byte string"});
  expect_protocol_error(tag_of<JobMessage>(),
                        msgpack_of({{"job", 1},
                                    {"kind", "cluster"},
                                    {"fold", 0},
                                    {"sparsity", 0.5},
                                    {"seed", 0},
                                    {"attempt", 1},
                                    {"out_dir", "x"},
                                    {"folds", json::array()},
                                    {"fold_dirs", json::array()}}),
                        {"JOB", "\"kind\"", "cluster"});
  expect_protocol_error(tag_of<EpochMessage>(), msgpack_of({{"job", 1}, {"epoch", 3}}),
                        {"EPOCH", "\"epoch\""});
}

TEST(SweepProtocol, FramesCarryTheTagForBroadcasts) {
  JobMessage job;
  job.job = 4;
  job.out_dir = "runs/demo/fold1_s0.5_seed0";
  const SweepMessage back = unframe(frame(job));
  ASSERT_TRUE(std::holds_alternative<JobMessage>(back));
  EXPECT_EQ(std::get<JobMessage>(back).out_dir, job.out_dir);
  EXPECT_TRUE(std::holds_alternative<StopMessage>(unframe(frame(StopMessage{}))));
  EXPECT_THROW(unframe(""), ProtocolError);
  EXPECT_THROW(unframe(msgpack_of(json::array({tag_of<JobMessage>(), "text, not bytes"}))), ProtocolError);
}

}  // namespace
}  // namespace e2e
