// `e2e status` building blocks: URL parsing, GET with a deadline, the text view, and the store's snapshot.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/errors.hpp"
#include "db/store.hpp"
#include "orchestrator/status_client.hpp"
#include "orchestrator/status_server.hpp"
#include "orchestrator/status_store.hpp"
#include "tests/status/status_test_util.hpp"

namespace e2e {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

TEST(StatusUrl, ParsesHttpUrls) {
  HttpUrl u = parse_http_url("http://127.0.0.1:8080");
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/");
  u = parse_http_url("HTTP://localhost:9/status?x=1#frag");
  EXPECT_EQ(u.host, "localhost");
  EXPECT_EQ(u.port, 9);
  EXPECT_EQ(u.target, "/status?x=1");
  u = parse_http_url("http://[::1]:7000/metrics");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 7000);
  EXPECT_EQ(u.target, "/metrics");
  u = parse_http_url("node-12.cluster:5000");
  EXPECT_EQ(u.host, "node-12.cluster");
  EXPECT_EQ(u.port, 5000);
  EXPECT_EQ(parse_http_url("http://example").port, 80);
}

TEST(StatusUrl, MalformedUrlsAreInputErrorsNamingTheOption) {
  for (const char* bad : {"", "http://", "http://:80", "https://127.0.0.1:1", "ftp://x", "http://a b:1",
                          "http://127.0.0.1:0", "http://127.0.0.1:65536", "http://127.0.0.1:12ab",
                          "http://127.0.0.1:", "http://user@127.0.0.1:1", "http://[::1", "http://[nope]:1",
                          "http://[::1]x", "http://bad_host!:1", "http://127.0.0.1:99999999", "\n"}) {
    try {
      parse_http_url(bad);
      ADD_FAILURE() << bad;
    } catch (const InputError& e) {
      EXPECT_THAT(e.what(), HasSubstr("--url"));
    }
  }
  try {
    parse_http_url("https://x:1");
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("SSH tunnel"));
  }
}

uint16_t closed_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor acceptor(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();  // closed again when this returns
}

TEST(StatusFetch, UnreachableAndSilentServersAreRuntimeErrors) {
  const std::string url = "http://127.0.0.1:" + std::to_string(closed_port());
  try {
    fetch_status(url, 2s);
    FAIL();
  } catch (const InputError&) {
    FAIL() << "unreachable is not bad input";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot connect to http://127.0.0.1:"));
  }

  // Accepts, never answers: the deadline ends it.
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor silent(ioc, {boost::asio::ip::make_address("127.0.0.1"), 0});
  const auto t0 = std::chrono::steady_clock::now();
  try {
    fetch_status("http://127.0.0.1:" + std::to_string(silent.local_endpoint().port()), 300ms);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("timed out"));
  }
  EXPECT_LT(testing::seconds_since(t0), 3.0);
}

TEST(StatusFetch, NonJsonAndErrorAnswersAreRuntimeErrors) {
  StatusServer server([] { return nlohmann::json{{"jobs", {{"done", 1}}}}; });
  const std::string base = "http://127.0.0.1:" + std::to_string(server.start());
  EXPECT_EQ(fetch_status(base + "/status", 2s).at("jobs").at("done"), 1);
  try {
    fetch_status(base + "/metrics", 2s);  // Prometheus text, not JSON
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("not a status JSON object"));
  }
  try {
    fetch_status(base + "/elsewhere", 2s);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("HTTP 404"));
  }
}

TEST(StatusText, JobsByStateBarsAndEtas) {
  const nlohmann::json snapshot = nlohmann::json::parse(R"({
    "experiment": "demo", "started": "2024-05-01T12:00:00.000Z",
    "jobs": {"pending": 7, "running": 1, "done": 2, "failed": 0, "preempted": 0, "interrupted": 0},
    "running": [{"job": 12, "fold": 3, "sparsity": 0.9, "seed": 0, "group": 1, "epoch": 4, "epochs": 10,
                 "progress": 0.4, "eta_seconds": 3725, "last_heartbeat": "2024-05-01T12:34:00Z"}],
    "eta_seconds": 90061
  })");
  double now = 0;
  ASSERT_TRUE(parse_iso8601_utc("2024-05-01T12:34:42Z", now));
  const std::string text = render_status_text(snapshot, now);
  EXPECT_THAT(text, HasSubstr("experiment demo, started 2024-05-01T12:00:00.000Z\n"));
  EXPECT_THAT(
      text, HasSubstr("jobs: 7 pending, 1 running, 2 done, 0 failed, 0 preempted, 0 interrupted (10 total)"));
  EXPECT_THAT(text, HasSubstr(" 20.0%  ETA 1d01h\n"));  // 2 of 10 done without a "progress" field
  EXPECT_THAT(text, HasSubstr("job    12  fold 3  s=0.9  seed 0  group 1  [########............]  40.0%"));
  EXPECT_THAT(text, HasSubstr("epoch 4/10  ETA 1h02m  heartbeat 42s ago\n"));

  for (const nlohmann::json& odd :
       {nlohmann::json(), nlohmann::json::object(), nlohmann::json{{"running", 1}},
        nlohmann::json{{"running", {nullptr, 1, {{"progress", "x"}}}}}})
    EXPECT_NO_THROW(render_status_text(odd)) << odd.dump();
  EXPECT_EQ(duration_text(59.6), "1m00s");
  EXPECT_EQ(duration_text(-5), "0s");
  EXPECT_EQ(duration_text(NAN), "?");
}

class TempFolder {
 public:
  TempFolder() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("e2e_status_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

TEST(StatusStore, SnapshotOfAStoreHasTheLiveShape) {
  TempFolder dir;
  const std::string path = dir.file("e2e.db");
  int64_t running = 0;
  {
    Store store(path);
    const int64_t experiment =
        store.upsert_experiment({"demo", R"({"training": {"epochs": 10}})", "hash-a", "fingerprint", "test"});
    store.enumerate_jobs(experiment, JobGrid{{0, 1, 2}, {0.9}, {0}, 3});
    running = store.claim_next(experiment, 4)->job.id;
    store.mark_running(running, "node-7");
    for (int64_t e = 0; e < 4; ++e) {
      EpochRecord row;
      row.epoch = e;
      row.seconds = 2.0;
      store.record_epoch(running, row);
    }
  }
  const nlohmann::json s = snapshot_from_store(path, std::string("demo"));
  EXPECT_EQ(s.at("source"), "store");
  EXPECT_EQ(s.at("experiment"), "demo");
  EXPECT_EQ(s.at("jobs").at("pending"), 2);
  EXPECT_EQ(s.at("jobs").at("running"), 1);
  EXPECT_EQ(s.at("jobs").at("done"), 0);
  ASSERT_EQ(s.at("running").size(), 1u);
  const nlohmann::json& job = s.at("running")[0];
  EXPECT_EQ(job.at("job"), running);
  EXPECT_EQ(job.at("group"), 4);
  EXPECT_EQ(job.at("epoch"), 4);
  EXPECT_EQ(job.at("epochs"), 10);
  EXPECT_DOUBLE_EQ(job.at("progress").get<double>(), 0.4);
  EXPECT_DOUBLE_EQ(job.at("eta_seconds").get<double>(), 12.0);  // 6 epochs × 2 s
  EXPECT_EQ(job.at("node"), "node-7");
  EXPECT_TRUE(job.at("last_heartbeat").is_string());
  EXPECT_DOUBLE_EQ(s.at("eta_seconds").get<double>(), 26 * 2.0);  // 26 epochs left, one job running
  // Same text view and metrics as the live endpoint.
  EXPECT_THAT(render_status_text(s), HasSubstr("epoch 4/10"));
  EXPECT_THAT(prometheus_from_status(s), HasSubstr("e2e_jobs{state=\"pending\"} 2\n"));
  EXPECT_EQ(snapshot_from_store(path).at("experiment"), nullptr);

  EXPECT_THROW(snapshot_from_store(path, std::string("nope' OR 1=1 --")), InputError);
  EXPECT_THROW(snapshot_from_store(dir.file("missing.db")), InputError);
  EXPECT_FALSE(fs::exists(dir.file("missing.db")));
  const std::string junk = dir.file("junk.db");
  { std::ofstream(junk) << "not a database"; }
  EXPECT_THROW(snapshot_from_store(junk), InputError);
}

}  // namespace
}  // namespace e2e
