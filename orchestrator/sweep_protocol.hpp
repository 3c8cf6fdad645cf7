// The messages of `e2e sweep` between the coordinator (rank 0) and the worker groups' leaders, as typed
// structs, and their one wire codec. Plain C++: no MPI here (orchestrator/sweep.cpp moves the bytes).
//
//   leader → coordinator   Ready, then per job: Step (a few times a second, the live view only), Epoch
//                          (per epoch; a heartbeat), Checkpoint, CaseDone (test ensembles), and one outcome:
//                          Result | Failed | Preempted
//   coordinator → leader   Job | Wait | Stop (the answer to Ready); StopNow (checkpoint and stop: a signal
//                          or a preempted group)
//   rank 0 → every rank    Prepared (broadcast once: whether the coordinator's preparation failed)
//
// Wire format: each message is a MessagePack map (nlohmann::json's codec), sent with the message's tag. Byte
// strings (a topology) travel as MessagePack binary, raw. decode() checks every field and throws
// ProtocolError naming the message and the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "common/epoch_record.hpp"
#include "db/records.hpp"

namespace e2e {

// A message that does not decode, or one that breaks the protocol (an outcome for a job the sender does not
// run). A bug, not bad user input: the sweep ends; rerunning the command resumes it from the store.
class ProtocolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ReadyMessage {
  int group = 0;
  std::string node;       // the leader's host name
  bool stopping = false;  // the group was signalled: it wants Stop, not work
};

struct JobMessage {
  int64_t job = 0;
  JobKind kind = JobKind::Train;
  int fold = 0;  // -1 for a test ensemble
  double sparsity = 0;
  uint64_t seed = 0;
  int attempt = 1;  // 1-based
  std::string out_dir;
  std::vector<int> folds;              // a test ensemble's folds …
  std::vector<std::string> fold_dirs;  // … and their job folders
};

struct WaitMessage {};
struct StopMessage {};
struct StopNowMessage {};

struct StepMessage {
  int64_t job = 0;
  int64_t epoch = 0;  // 0-based
  int64_t epochs = 0;
  int64_t step = 0;
  int64_t steps = 0;
  double loss = 0;  // the epoch's running mean (NaN before the first step)
  double iterations_per_second = 0;
};

struct EpochMessage {
  int64_t job = 0;
  EpochRecord epoch;
};

struct CheckpointMessage {
  int64_t job = 0;
  Checkpoint checkpoint;
};

struct CaseDoneMessage {
  int64_t job = 0;
  std::string case_id;
  int64_t done = 0;
  int64_t total = 0;
};

struct ResultMessage {
  int64_t job = 0;
  JobKind kind = JobKind::Train;
  nlohmann::json metrics = nlohmann::json::object();  // the job's metrics.json (a JSON object)
  std::string topology;                               // training jobs: the final Topology::serialize() bytes
  int64_t topology_updates = 0;
};

struct FailedMessage {
  int64_t job = 0;
  std::string error;
  bool permanent = false;  // bad input: no retry can fix it
};

struct PreemptedMessage {
  int64_t job = 0;
};

struct PreparedMessage {
  int exit_code = 0;  // 0: prepared; else the code every rank exits with (1 failure, 2 bad config/input)
  std::string error;
};

using SweepMessage = std::variant<ReadyMessage, JobMessage, WaitMessage, StopMessage, StopNowMessage,
                                  StepMessage, EpochMessage, CheckpointMessage, CaseDoneMessage,
                                  ResultMessage, FailedMessage, PreemptedMessage, PreparedMessage>;
// What running one claimed job ends with.
using OutcomeMessage = std::variant<ResultMessage, FailedMessage, PreemptedMessage>;

SweepMessage to_message(OutcomeMessage outcome);

// The tags (MPI tags) of the messages: kFirstMessageTag + the alternative's index in SweepMessage.
constexpr int kFirstMessageTag = 100;
int tag_of(const SweepMessage& message);
namespace detail {
template <typename Message, typename... Alternatives>
constexpr int alternative_index(const std::variant<Alternatives...>* /*unused*/) {
  constexpr bool same[] = {std::is_same_v<Message, Alternatives>...};
  for (int i = 0; i < static_cast<int>(sizeof...(Alternatives)); ++i)
    if (same[i]) return i;
  return -1;
}
}  // namespace detail
template <typename Message>
constexpr int tag_of() {
  return kFirstMessageTag + detail::alternative_index<Message>(static_cast<const SweepMessage*>(nullptr));
}
// "READY", "JOB", … ("tag 42" for a tag that is not a message's).
std::string message_name(int tag);

struct EncodedMessage {
  int tag = 0;
  std::string bytes;
};
EncodedMessage encode(const SweepMessage& message);
// Throws ProtocolError for an unknown tag, bytes that are not a MessagePack map, or a missing or mistyped
// field.
SweepMessage decode(int tag, const std::string& bytes);

// One message with its tag in one byte string, for a broadcast (a reply a group leader passes on to its
// group, the coordinator's PREPARED): MessagePack [tag, binary message].
std::string frame(const SweepMessage& message);
SweepMessage unframe(const std::string& framed);

}  // namespace e2e
