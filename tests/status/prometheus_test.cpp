// Prometheus text of a status snapshot: the gauges, label escaping, odd input, and the ISO 8601 parser.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <sstream>

#include "orchestrator/status_server.hpp"

namespace e2e {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(Prometheus, EscapesLabelValues) {
  EXPECT_EQ(prometheus_escape_label("plain"), "plain");
  EXPECT_EQ(prometheus_escape_label("a\"b"), "a\\\"b");
  EXPECT_EQ(prometheus_escape_label("a\\b"), "a\\\\b");
  EXPECT_EQ(prometheus_escape_label("a\nb"), "a\\nb");
  EXPECT_EQ(prometheus_escape_label("\\\"\n"), "\\\\\\\"\\n");
  EXPECT_EQ(prometheus_escape_label("ünïcode {x=1}"), "ünïcode {x=1}");
}

TEST(Prometheus, GaugesOfASnapshot) {
  const nlohmann::json snapshot = nlohmann::json::parse(R"({
    "experiment": "demo",
    "started": "1970-01-01T00:01:40Z",
    "jobs": {"pending": 7, "running": 1, "done": 3, "failed": 0, "preempted": 0, "interrupted": 0},
    "running": [{"job": 12, "fold": 0, "sparsity": 0.9, "seed": 0, "group": 1, "epoch": 4, "epochs": 10,
                 "progress": 0.4, "eta_seconds": 300.5, "last_heartbeat": "1970-01-01T00:03:20.250Z"}],
    "eta_seconds": 1800
  })");
  const std::string text = prometheus_from_status(snapshot);
  const std::string labels = R"({job="12",fold="0",sparsity="0.9",seed="0",group="1"})";
  for (const std::string& line :
       {std::string("e2e_up 1"), std::string("e2e_sweep_info{experiment=\"demo\"} 1"),
        std::string("e2e_sweep_started_seconds 100"), std::string("e2e_jobs{state=\"pending\"} 7"),
        std::string("e2e_jobs{state=\"running\"} 1"), std::string("e2e_jobs{state=\"done\"} 3"),
        std::string("e2e_jobs{state=\"failed\"} 0"), std::string("e2e_jobs{state=\"preempted\"} 0"),
        std::string("e2e_jobs{state=\"interrupted\"} 0"), std::string("e2e_jobs_total 11"),
        std::string("e2e_eta_seconds 1800"), "e2e_job_progress" + labels + " 0.4",
        "e2e_job_epoch" + labels + " 4", "e2e_job_epochs" + labels + " 10",
        "e2e_job_eta_seconds" + labels + " 300.5", "e2e_job_last_heartbeat_seconds" + labels + " 200.25"})
    EXPECT_THAT(text, HasSubstr("\n" + line + "\n")) << line;

  // Well-formed exposition: every line a comment or "name{labels} value"; each family's HELP/TYPE once and
  // before its samples; a trailing newline.
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  std::istringstream lines(text);
  std::string line, family;
  std::set<std::string> typed;
  while (std::getline(lines, line)) {
    ASSERT_FALSE(line.empty());
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string type;
      words >> family >> type;
      EXPECT_EQ(type, "gauge");
      EXPECT_TRUE(typed.insert(family).second) << family << " typed twice";
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    const std::string name = line.substr(0, line.find_first_of("{ "));
    EXPECT_EQ(name, family) << line;
    EXPECT_NE(line.find(' '), std::string::npos);
  }
}

TEST(Prometheus, LabelValuesFromTheSnapshotAreEscaped) {
  const nlohmann::json snapshot = {
      {"experiment", "x\"} 1\nevil_metric{a=\"b"},
      {"jobs", {{"done", 1}, {"we\"ird", 2}}},
      {"running", {{{"job", "a\\b\"c\nd"}, {"progress", 0.5}}}},
  };
  const std::string text = prometheus_from_status(snapshot);
  EXPECT_THAT(text, HasSubstr("e2e_sweep_info{experiment=\"x\\\"} 1\\nevil_metric{a=\\\"b\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("e2e_jobs{state=\"we\\\"ird\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("e2e_job_progress{job=\"a\\\\b\\\"c\\nd\"} 0.5\n"));
  EXPECT_THAT(text, Not(HasSubstr("\nevil_metric")));
  EXPECT_THAT(text, HasSubstr("e2e_jobs_total 3\n"));
}

TEST(Prometheus, OddSnapshotsNeverThrowAndMissingFieldsAreLeftOut) {
  for (const nlohmann::json& odd :
       {nlohmann::json(), nlohmann::json::array(), nlohmann::json(3), nlohmann::json("text"),
        nlohmann::json::object(), nlohmann::json{{"jobs", "many"}, {"running", 5}, {"eta_seconds", "soon"}},
        nlohmann::json{{"running", {1, "x", nullptr, {{"job", nullptr}}, {{"job", {1, 2}}}}}},
        nlohmann::json{{"started", "yesterday"}, {"experiment", {{"nested", 1}}}}}) {
    std::string text;
    ASSERT_NO_THROW(text = prometheus_from_status(odd)) << odd.dump();
    EXPECT_THAT(text, HasSubstr("e2e_up 1\n"));
    EXPECT_THAT(text, HasSubstr("e2e_jobs{state=\"done\"} 0\n"));
    EXPECT_THAT(text, Not(HasSubstr("e2e_eta_seconds ")));
    EXPECT_THAT(text, Not(HasSubstr("e2e_job_progress")));
    EXPECT_THAT(text, Not(HasSubstr("e2e_sweep_started_seconds ")));
  }
  // A null ETA (unknown) is left out; non-finite numbers are written the Prometheus way.
  EXPECT_THAT(prometheus_from_status({{"eta_seconds", nullptr}}), Not(HasSubstr("e2e_eta_seconds ")));
  const nlohmann::json infinite = {{"running", {{{"job", 1}, {"eta_seconds", INFINITY}}}}};
  // nlohmann stores infinity as a number; the output must still parse as a Prometheus value.
  EXPECT_THAT(prometheus_from_status(infinite), HasSubstr("e2e_job_eta_seconds{job=\"1\"} +Inf\n"));
}

TEST(Iso8601, ParsesUtcTimestamps) {
  double t = -1;
  ASSERT_TRUE(parse_iso8601_utc("1970-01-01T00:00:00Z", t));
  EXPECT_DOUBLE_EQ(t, 0);
  ASSERT_TRUE(parse_iso8601_utc("2024-05-01T12:34:56.789Z", t));
  EXPECT_NEAR(t, 1714566896.789, 1e-6);
  ASSERT_TRUE(parse_iso8601_utc("2024-02-29T00:00:00Z", t));
  EXPECT_DOUBLE_EQ(t, 1709164800);
  ASSERT_TRUE(parse_iso8601_utc("2024-05-01T14:34:56+02:00", t));
  EXPECT_DOUBLE_EQ(t, 1714566896);
  ASSERT_TRUE(parse_iso8601_utc("2000-01-01T00:00:00.5z", t));
  EXPECT_DOUBLE_EQ(t, 946684800.5);
  for (const char* bad : {"", "2024-05-01", "2024-05-01 12:34:56Z", "2024-05-01T12:34:56",
                          "2024-13-01T00:00:00Z", "2024-05-01T12:34:56.Z", "2024-05-01T12:34:56Zjunk",
                          "2024-05-01T25:00:00Z", "2024-05-01T12:34:56+0200", "x024-05-01T12:34:56Z"})
    EXPECT_FALSE(parse_iso8601_utc(bad, t)) << bad;
}

}  // namespace
}  // namespace e2e
