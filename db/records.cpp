#include "db/records.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <array>
#include <chrono>
#include <ctime>
#include <utility>

#include "configs/config.hpp"
#include "configs/hash.hpp"

namespace e2e {

namespace {

template <typename Enum, std::size_t N>
std::string name_of(Enum value, const std::array<std::pair<Enum, const char*>, N>& names) {
  for (const auto& [candidate, name] : names)
    if (candidate == value) return name;
  return "?";
}

template <typename Enum, std::size_t N>
Enum parse_named(const std::string& text, const std::string& what,
                 const std::array<std::pair<Enum, const char*>, N>& names) {
  std::string accepted;
  for (const auto& [value, name] : names) {
    if (text == name) return value;
    accepted += (accepted.empty() ? "" : "|") + std::string(name);
  }
  throw ConfigError(what + ": expected one of " + accepted + ", got '" + text + "'");
}

constexpr std::array<std::pair<JobStatus, const char*>, 6> kStatusNames{
    {{JobStatus::Pending, "pending"},
     {JobStatus::Running, "running"},
     {JobStatus::Done, "done"},
     {JobStatus::Failed, "failed"},
     {JobStatus::Preempted, "preempted"},
     {JobStatus::Interrupted, "interrupted"}}};

constexpr std::array<std::pair<EventKind, const char*>, 8> kEventNames{
    {{EventKind::Started, "started"},
     {EventKind::Checkpointed, "checkpointed"},
     {EventKind::Preempted, "preempted"},
     {EventKind::Retried, "retried"},
     {EventKind::Failed, "failed"},
     {EventKind::Resumed, "resumed"},
     {EventKind::Interrupted, "interrupted"},
     {EventKind::Done, "done"}}};

constexpr std::array<std::pair<MaskKind, const char*>, 2> kMaskNames{
    {{MaskKind::Final, "final"}, {MaskKind::Periodic, "periodic"}}};

constexpr std::array<std::pair<JobKind, const char*>, 2> kJobKindNames{
    {{JobKind::Train, "train"}, {JobKind::Ensemble, "ensemble"}}};

constexpr std::array<std::pair<Split, const char*>, 2> kSplitNames{
    {{Split::Cv, "cv"}, {Split::Test, "test"}}};

}  // namespace

std::string to_string(JobStatus status) {
  return name_of(status, kStatusNames);
}
std::string to_string(EventKind kind) {
  return name_of(kind, kEventNames);
}
std::string to_string(MaskKind kind) {
  return name_of(kind, kMaskNames);
}
std::string to_string(JobKind kind) {
  return name_of(kind, kJobKindNames);
}
std::string to_string(Split split) {
  return name_of(split, kSplitNames);
}

JobStatus parse_job_status(const std::string& text, const std::string& what) {
  return parse_named(text, what, kStatusNames);
}
EventKind parse_event_kind(const std::string& text, const std::string& what) {
  return parse_named(text, what, kEventNames);
}
MaskKind parse_mask_kind(const std::string& text, const std::string& what) {
  return parse_named(text, what, kMaskNames);
}
JobKind parse_job_kind(const std::string& text, const std::string& what) {
  return parse_named(text, what, kJobKindNames);
}
Split parse_split(const std::string& text, const std::string& what) {
  return parse_named(text, what, kSplitNames);
}

std::string utc_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03d}Z", buffer, static_cast<int>(millis));
}

std::string job_key(const std::string& experiment, int fold, double sparsity, uint64_t seed,
                    const std::string& config_hash) {
  // Shortest round-trip text of the sparsity: 0.8 and 0.80 are one job; fields are length-prefixed.
  const std::string canonical = fmt::format("e2e-job/1\n{}:{}\nfold={}\nsparsity={}\nseed={}\nconfig={}\n",
                                            experiment.size(), experiment, fold, sparsity, seed, config_hash);
  return sha256_hex(canonical);
}

std::string ensemble_job_key(const std::string& experiment, double sparsity, uint64_t seed,
                             const std::vector<int>& folds, const std::string& config_hash) {
  const std::string canonical =
      fmt::format("e2e-ensemble/1\n{}:{}\nfolds={}\nsparsity={}\nseed={}\nconfig={}\n", experiment.size(),
                  experiment, fmt::join(folds, ","), sparsity, seed, config_hash);
  return sha256_hex(canonical);
}

}  // namespace e2e
