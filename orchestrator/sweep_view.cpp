#include "orchestrator/sweep_view.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace e2e {

SweepTotals count_jobs(const std::vector<Job>& jobs) {
  SweepTotals totals;
  for (const Job& job : jobs) {
    switch (job.status) {
      case JobStatus::Done:
        ++totals.done;
        continue;
      case JobStatus::Running:
        ++totals.running;
        continue;
      case JobStatus::Failed:
        if (job.failed_for_good()) {
          ++totals.failed;
          continue;
        }
        break;
      default:
        break;
    }
    ++totals.pending;
    ++(job.kind == JobKind::Ensemble ? totals.pending_ensemble : totals.pending_train);
  }
  return totals;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) seconds = 0;
  const auto total = static_cast<int64_t>(std::llround(seconds));
  if (total < 60) return fmt::format("{}s", total);
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  return fmt::format("{}h{:02}m", total / 3600, (total % 3600) / 60);
}

namespace {

std::string group_line(const GroupView& g, double elapsed) {
  const std::string head = fmt::format("group {:<2} ", g.group);
  if (!g.busy) return head + "idle";
  if (g.kind == JobKind::Ensemble) {
    std::string line =
        fmt::format("{}job {:<4} test ensemble  s={:<4} seed {}", head, g.job, g.sparsity, g.seed);
    if (g.cases_total > 0) line += fmt::format("  case {}/{}", g.cases_done, g.cases_total);
    return line + fmt::format("  {}", format_duration(elapsed - g.started));
  }
  std::string line =
      fmt::format("{}job {:<4} fold {}  s={:<4} seed {}", head, g.job, g.fold, g.sparsity, g.seed);
  if (!g.has_step) return line + "  starting";
  return line + fmt::format("  epoch {}/{}  it {}/{}  loss {:.4f}  {:.1f} it/s", g.epoch + 1, g.epochs,
                            g.step, g.steps, g.loss, g.iterations_per_second);
}

}  // namespace

std::string render_summary(const SweepViewState& s) {
  return fmt::format("done {}  running {}  pending {}  failed {}  elapsed {}  ETA {}", s.totals.done,
                     s.totals.running, s.totals.pending, s.totals.failed, format_duration(s.elapsed),
                     s.eta ? format_duration(*s.eta) : std::string("?"));
}

std::vector<std::string> render_view(const SweepViewState& state) {
  std::vector<std::string> lines;
  lines.reserve(state.groups.size() + 1);
  for (const GroupView& g : state.groups) lines.push_back(group_line(g, state.elapsed));
  lines.push_back(fmt::format("{}: {}", state.experiment, render_summary(state)));
  return lines;
}

// ------------------------------------------------------------------------------------------ SweepTracker

SweepTracker::SweepTracker(std::string experiment, int groups, double now)
    : experiment_(std::move(experiment)), start_(now) {
  for (int g = 0; g < groups; ++g) {
    GroupView view;
    view.group = g;
    groups_.push_back(view);
  }
}

GroupView* SweepTracker::find(int64_t job) {
  for (GroupView& g : groups_)
    if (g.busy && g.job == job) return &g;
  return nullptr;
}

void SweepTracker::job_started(int group, const Job& job, double now) {
  if (group < 0 || group >= static_cast<int>(groups_.size())) return;
  GroupView view;
  view.group = group;
  view.busy = true;
  view.job = job.id;
  view.kind = job.kind;
  view.fold = job.fold;
  view.sparsity = job.sparsity;
  view.seed = job.seed;
  view.started = now - start_;
  groups_[static_cast<std::size_t>(group)] = view;
}

void SweepTracker::step(int64_t job, int64_t epoch, int64_t epochs, int64_t step, int64_t steps, double loss,
                        double iterations_per_second) {
  GroupView* g = find(job);
  if (!g) return;
  g->has_step = true;
  g->epoch = epoch;
  g->epochs = epochs;
  g->step = step;
  g->steps = steps;
  g->loss = loss;
  g->iterations_per_second = iterations_per_second;
}

void SweepTracker::case_done(int64_t job, int64_t done, int64_t total) {
  GroupView* g = find(job);
  if (!g) return;
  g->cases_done = done;
  g->cases_total = total;
}

void SweepTracker::job_ended(int64_t job, bool measured, double now) {
  GroupView* g = find(job);
  if (!g) return;
  if (measured) {
    auto& [sum, count] = measured_[g->kind];
    sum += now - start_ - g->started;
    ++count;
  }
  g->busy = false;
}

std::optional<double> SweepTracker::eta(double now) const {
  auto mean_of = [this](JobKind kind) -> std::optional<double> {
    const auto it = measured_.find(kind);
    if (it == measured_.end() || it->second.second == 0) return std::nullopt;
    return it->second.first / it->second.second;
  };
  std::optional<double> train = mean_of(JobKind::Train);
  const std::optional<double> ensemble = mean_of(JobKind::Ensemble);
  // Before any training job finished: the pace of the running ones (time so far over the share done).
  if (!train) {
    double sum = 0;
    int count = 0;
    for (const GroupView& g : groups_) {
      if (!g.busy || g.kind != JobKind::Train || !g.has_step || g.epochs <= 0 || g.steps <= 0) continue;
      const double share =
          static_cast<double>(g.epoch * g.steps + g.step) / static_cast<double>(g.epochs * g.steps);
      if (share <= 0) continue;
      sum += (now - start_ - g.started) / std::min(share, 1.0);
      ++count;
    }
    if (count == 0) return std::nullopt;
    train = sum / count;
  }
  // A test ensemble takes a fraction of a training job; before one was measured it counts as a tenth.
  const double ensemble_seconds = ensemble ? *ensemble : *train / 10;
  double remaining = static_cast<double>(totals_.pending_train) * *train +
                     static_cast<double>(totals_.pending_ensemble) * ensemble_seconds;
  for (const GroupView& g : groups_) {
    if (!g.busy) continue;
    const double expected = g.kind == JobKind::Ensemble ? ensemble_seconds : *train;
    remaining += std::max(0.0, expected - (now - start_ - g.started));
  }
  const int groups = std::max<int>(1, static_cast<int>(groups_.size()));
  return remaining / groups;
}

SweepViewState SweepTracker::state(double now) const {
  SweepViewState s;
  s.experiment = experiment_;
  s.groups = groups_;
  s.totals = totals_;
  s.elapsed = now - start_;
  s.eta = eta(now);
  return s;
}

}  // namespace e2e
