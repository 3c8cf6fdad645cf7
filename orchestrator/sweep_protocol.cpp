#include "orchestrator/sweep_protocol.hpp"

#include <fmt/format.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <utility>

#include "common/errors.hpp"

namespace e2e {

namespace {

using nlohmann::json;

constexpr std::array<const char*, std::variant_size_v<SweepMessage>> kNames = {
    "READY",      "JOB",       "WAIT",   "STOP",   "STOP_NOW",  "STEP",    "EPOCH",
    "CHECKPOINT", "CASE_DONE", "RESULT", "FAILED", "PREEMPTED", "PREPARED"};

// Reads a decoded message's fields; every problem is a ProtocolError naming the message and the field.
class Fields {
 public:
  Fields(const json& body, int tag) : body_(body), tag_(tag) {}

  template <typename T>
  T get(const char* name) const {
    const json& value = at(name);
    try {
      return value.get<T>();
    } catch (const json::exception&) {
      fail(name, fmt::format("has the wrong type ({})", value.type_name()));
    }
  }

  const json& at(const char* name) const {
    const auto it = body_.find(name);
    if (it == body_.end()) fail(name, "is missing");
    return *it;
  }

  std::string bytes(const char* name) const {
    const json& value = at(name);
    if (!value.is_binary()) fail(name, fmt::format("is not a byte string ({})", value.type_name()));
    const auto& binary = value.get_binary();
    return {binary.begin(), binary.end()};
  }

  JobKind kind(const char* name) const {
    const auto text = get<std::string>(name);
    try {
      return parse_job_kind(text, name);
    } catch (const ConfigError& e) {
      fail(name, e.what());
    }
  }

  [[noreturn]] void fail(const char* field, const std::string& problem) const {
    throw ProtocolError(fmt::format("sweep message {}: field \"{}\" {}", message_name(tag_), field, problem));
  }

 private:
  const json& body_;
  int tag_;
};

// MessagePack bytes → a value; `what` names them in the ProtocolError.
json unpack(const std::string& bytes, const std::string& what) {
  try {
    return json::from_msgpack(bytes);
  } catch (const json::exception& e) {
    throw ProtocolError(
        fmt::format("{}: {} bytes that are not MessagePack: {}", what, bytes.size(), e.what()));
  }
}

json bytes_value(const std::string& bytes) {
  return json::binary({bytes.begin(), bytes.end()});
}

// ------------------------------------------------------------------------------------------ encoding

json body_of(const ReadyMessage& m) {
  return {{"group", m.group}, {"node", m.node}, {"stopping", m.stopping}};
}
json body_of(const JobMessage& m) {
  return {{"job", m.job},
          {"kind", to_string(m.kind)},
          {"fold", m.fold},
          {"sparsity", m.sparsity},
          {"seed", m.seed},
          {"attempt", m.attempt},
          {"out_dir", m.out_dir},
          {"folds", m.folds},
          {"fold_dirs", m.fold_dirs}};
}
json body_of(const WaitMessage& /*unused*/) {
  return json::object();
}
json body_of(const StopMessage& /*unused*/) {
  return json::object();
}
json body_of(const StopNowMessage& /*unused*/) {
  return json::object();
}
// MessagePack carries NaN as a float, so the numbers go as they are.
json body_of(const StepMessage& m) {
  return {{"job", m.job},
          {"epoch", m.epoch},
          {"epochs", m.epochs},
          {"step", m.step},
          {"steps", m.steps},
          {"loss", m.loss},
          {"it_s", m.iterations_per_second}};
}
json body_of(const EpochMessage& m) {
  return {{"job", m.job}, {"epoch", m.epoch.to_json()}};
}
json body_of(const CheckpointMessage& m) {
  return {{"job", m.job},
          {"path", m.checkpoint.path},
          {"sha256", m.checkpoint.sha256},
          {"iteration", m.checkpoint.iteration}};
}
json body_of(const CaseDoneMessage& m) {
  return {{"job", m.job}, {"case", m.case_id}, {"done", m.done}, {"total", m.total}};
}
json body_of(const ResultMessage& m) {
  return {{"job", m.job},
          {"kind", to_string(m.kind)},
          {"metrics", m.metrics},
          {"topology", bytes_value(m.topology)},
          {"topology_updates", m.topology_updates}};
}
json body_of(const FailedMessage& m) {
  return {{"job", m.job}, {"error", m.error}, {"permanent", m.permanent}};
}
json body_of(const PreemptedMessage& m) {
  return {{"job", m.job}};
}
json body_of(const PreparedMessage& m) {
  return {{"exit_code", m.exit_code}, {"error", m.error}};
}

// ------------------------------------------------------------------------------------------ decoding

template <typename Message>
Message read(const Fields& f);

template <>
ReadyMessage read(const Fields& f) {
  return {f.get<int>("group"), f.get<std::string>("node"), f.get<bool>("stopping")};
}
template <>
JobMessage read(const Fields& f) {
  JobMessage m;
  m.job = f.get<int64_t>("job");
  m.kind = f.kind("kind");
  m.fold = f.get<int>("fold");
  m.sparsity = f.get<double>("sparsity");
  m.seed = f.get<uint64_t>("seed");
  m.attempt = f.get<int>("attempt");
  m.out_dir = f.get<std::string>("out_dir");
  m.folds = f.get<std::vector<int>>("folds");
  m.fold_dirs = f.get<std::vector<std::string>>("fold_dirs");
  if (m.folds.size() != m.fold_dirs.size()) f.fail("fold_dirs", "does not match \"folds\" in length");
  return m;
}
template <>
WaitMessage read(const Fields& /*unused*/) {
  return {};
}
template <>
StopMessage read(const Fields& /*unused*/) {
  return {};
}
template <>
StopNowMessage read(const Fields& /*unused*/) {
  return {};
}
template <>
StepMessage read(const Fields& f) {
  StepMessage m;
  m.job = f.get<int64_t>("job");
  m.epoch = f.get<int64_t>("epoch");
  m.epochs = f.get<int64_t>("epochs");
  m.step = f.get<int64_t>("step");
  m.steps = f.get<int64_t>("steps");
  m.loss = f.get<double>("loss");
  m.iterations_per_second = f.get<double>("it_s");
  return m;
}
template <>
EpochMessage read(const Fields& f) {
  EpochMessage m;
  m.job = f.get<int64_t>("job");
  const json& epoch = f.at("epoch");
  if (!epoch.is_object()) f.fail("epoch", fmt::format("is not an epoch record ({})", epoch.type_name()));
  try {
    m.epoch = EpochRecord::from_json(epoch);
  } catch (const std::exception& e) {
    f.fail("epoch", fmt::format("is not an epoch record: {}", e.what()));
  }
  return m;
}
template <>
CheckpointMessage read(const Fields& f) {
  return {f.get<int64_t>("job"),
          {f.get<std::string>("path"), f.get<std::string>("sha256"), f.get<int64_t>("iteration")}};
}
template <>
CaseDoneMessage read(const Fields& f) {
  return {f.get<int64_t>("job"), f.get<std::string>("case"), f.get<int64_t>("done"), f.get<int64_t>("total")};
}
template <>
ResultMessage read(const Fields& f) {
  ResultMessage m;
  m.job = f.get<int64_t>("job");
  m.kind = f.kind("kind");
  m.metrics = f.at("metrics");
  if (!m.metrics.is_object()) f.fail("metrics", fmt::format("is not an object ({})", m.metrics.type_name()));
  m.topology = f.bytes("topology");
  m.topology_updates = f.get<int64_t>("topology_updates");
  return m;
}
template <>
FailedMessage read(const Fields& f) {
  return {f.get<int64_t>("job"), f.get<std::string>("error"), f.get<bool>("permanent")};
}
template <>
PreemptedMessage read(const Fields& f) {
  return {f.get<int64_t>("job")};
}
template <>
PreparedMessage read(const Fields& f) {
  return {f.get<int>("exit_code"), f.get<std::string>("error")};
}

template <std::size_t... Index>
SweepMessage read_alternative(std::size_t index, const Fields& fields,
                              std::index_sequence<Index...> /*unused*/) {
  SweepMessage message;
  // Exactly one alternative's index matches: read that one.
  (void)((index == Index ? (message = read<std::variant_alternative_t<Index, SweepMessage>>(fields), true)
                         : false) ||
         ...);
  return message;
}

}  // namespace

SweepMessage to_message(OutcomeMessage outcome) {
  return std::visit([](auto& m) -> SweepMessage { return std::move(m); }, outcome);
}

int tag_of(const SweepMessage& message) {
  return kFirstMessageTag + static_cast<int>(message.index());
}

std::string message_name(int tag) {
  const int index = tag - kFirstMessageTag;
  if (index < 0 || index >= static_cast<int>(kNames.size())) return fmt::format("tag {}", tag);
  return kNames[static_cast<std::size_t>(index)];
}

EncodedMessage encode(const SweepMessage& message) {
  const json body = std::visit([](const auto& m) { return body_of(m); }, message);
  const std::vector<std::uint8_t> packed = json::to_msgpack(body);
  return {tag_of(message), std::string(packed.begin(), packed.end())};
}

SweepMessage decode(int tag, const std::string& bytes) {
  const int index = tag - kFirstMessageTag;
  if (index < 0 || index >= static_cast<int>(std::variant_size_v<SweepMessage>))
    throw ProtocolError(fmt::format("sweep message with unknown tag {} ({} bytes)", tag, bytes.size()));
  const json body = unpack(bytes, "sweep message " + message_name(tag));
  if (!body.is_object())
    throw ProtocolError(fmt::format("sweep message {}: not a map ({})", message_name(tag), body.type_name()));
  return read_alternative(static_cast<std::size_t>(index), Fields(body, tag),
                          std::make_index_sequence<std::variant_size_v<SweepMessage>>{});
}

std::string frame(const SweepMessage& message) {
  const EncodedMessage encoded = encode(message);
  const std::vector<std::uint8_t> packed =
      json::to_msgpack(json::array({encoded.tag, bytes_value(encoded.bytes)}));
  return {packed.begin(), packed.end()};
}

SweepMessage unframe(const std::string& framed) {
  const json pair = unpack(framed, "framed sweep message");
  if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() || !pair[1].is_binary())
    throw ProtocolError(fmt::format("framed sweep message: expected [tag, bytes], got {} {}",
                                    pair.type_name(),
                                    pair.is_array() ? fmt::format("of {} elements", pair.size()) : ""));
  const auto& binary = pair[1].get_binary();
  return decode(pair[0].get<int>(), std::string(binary.begin(), binary.end()));
}

}  // namespace e2e
