// The live-status HTTP server: answers, errors, hostile clients (oversized, malformed, slow), concurrency and
// a clean stop.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "common/errors.hpp"
#include "orchestrator/status_client.hpp"
#include "orchestrator/status_server.hpp"
#include "tests/status/status_test_util.hpp"

namespace e2e {
namespace {

using testing::body_of;
using ::testing::HasSubstr;
using testing::RawClient;
using testing::seconds_since;
using testing::status_code;
using namespace std::chrono_literals;

nlohmann::json sample_snapshot() {
  return nlohmann::json::parse(R"({
    "experiment": "demo",
    "started": "2024-05-01T12:00:00.000Z",
    "jobs": {"pending": 7, "running": 2, "done": 5, "failed": 0, "preempted": 0, "interrupted": 1},
    "running": [
      {"job": 12, "fold": 0, "sparsity": 0.9, "seed": 0, "group": 1, "epoch": 4, "epochs": 10,
       "progress": 0.4, "eta_seconds": 300.0, "last_heartbeat": "2024-05-01T12:34:56.789Z"},
      {"job": 13, "fold": 1, "sparsity": 0.9, "seed": 0, "group": 2, "epoch": 1, "epochs": 10,
       "progress": 0.1, "eta_seconds": null, "last_heartbeat": "2024-05-01T12:35:00.000Z"}
    ],
    "eta_seconds": 1800.0
  })");
}

StatusServer::Limits fast_limits() {
  StatusServer::Limits limits;
  limits.request_timeout = 1000ms;
  limits.write_timeout = 1000ms;
  limits.idle_timeout = 1000ms;
  limits.snapshot_max_age = 0ms;  // every request calls the callback
  return limits;
}

HttpResponse get(uint16_t port, const std::string& target, std::chrono::milliseconds timeout = 5s) {
  return http_get(HttpUrl{"127.0.0.1", port, target}, timeout);
}

std::string raw_request(uint16_t port, const std::string& request) {
  RawClient client(port);
  EXPECT_TRUE(client.send(request));
  return client.read_all();
}

TEST(StatusServer, ServesTheSnapshotAsJson) {
  StatusServer server(sample_snapshot);
  const uint16_t port = server.start();
  ASSERT_NE(port, 0);
  EXPECT_TRUE(server.running());
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(server.url(), "http://127.0.0.1:" + std::to_string(port));
  const HttpResponse res = get(port, "/status");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.content_type, "application/json");
  EXPECT_EQ(nlohmann::json::parse(res.body), sample_snapshot());
  // The query string is ignored; fetch_status reads the same.
  EXPECT_EQ(nlohmann::json::parse(get(port, "/status?pretty=1").body), sample_snapshot());
  EXPECT_EQ(fetch_status(server.url(), 5s), sample_snapshot());
  EXPECT_EQ(fetch_status(server.url() + "/", 5s), sample_snapshot());
  EXPECT_GE(server.requests_served(), 4u);
}

TEST(StatusServer, ServesMetricsFromItsCallbackOrFromTheSnapshot) {
  StatusServer own(sample_snapshot, [] { return std::string("custom_metric 1\n"); });
  const HttpResponse custom = get(own.start(), "/metrics");
  EXPECT_EQ(custom.status, 200);
  EXPECT_EQ(custom.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(custom.body, "custom_metric 1\n");

  StatusServer derived(sample_snapshot);
  const HttpResponse res = get(derived.start(), "/metrics");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, prometheus_from_status(sample_snapshot()));
  EXPECT_THAT(res.body, HasSubstr("e2e_jobs{state=\"done\"} 5\n"));
  EXPECT_THAT(
      res.body,
      HasSubstr("e2e_job_progress{job=\"12\",fold=\"0\",sparsity=\"0.9\",seed=\"0\",group=\"1\"} 0.4\n"));
}

TEST(StatusServer, UnknownPathsAre404AndOtherMethods405) {
  StatusServer server(sample_snapshot);
  const uint16_t port = server.start();
  EXPECT_EQ(get(port, "/").status, 404);
  EXPECT_EQ(get(port, "/statusx").status, 404);
  EXPECT_EQ(get(port, "/../etc/passwd").status, 404);

  const std::string post = raw_request(
      port, "POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");
  EXPECT_EQ(status_code(post), 405);
  EXPECT_THAT(post, HasSubstr("Allow: GET, HEAD"));
  for (const char* method : {"PUT", "DELETE", "PATCH", "OPTIONS"}) {
    const std::string res = raw_request(
        port, std::string(method) +
                  " /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(status_code(res), 405) << method;
  }
  // HEAD: the headers of GET, no body.
  const std::string head = raw_request(port, "HEAD /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(status_code(head), 200);
  EXPECT_EQ(body_of(head), "");
  // HTTP/1.0 without Host.
  const std::string old = raw_request(port, "GET /status HTTP/1.0\r\n\r\n");
  EXPECT_EQ(status_code(old), 200);
  EXPECT_EQ(nlohmann::json::parse(body_of(old)), sample_snapshot());
  // Still serving.
  EXPECT_EQ(get(port, "/status").status, 200);
}

TEST(StatusServer, KeepAliveAndPipelinedRequestsAreAnswered) {
  StatusServer server(sample_snapshot);
  const uint16_t port = server.start();
  RawClient client(port);
  ASSERT_TRUE(client.send("GET /status HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(status_code(client.read_response()), 200);
  ASSERT_TRUE(client.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(status_code(client.read_response()), 200);
  EXPECT_EQ(status_code(client.read_response()), 404);
}

TEST(StatusServer, MalformedRequestsGet400AndTheServerGoesOn) {
  StatusServer server(sample_snapshot, {}, fast_limits());
  const uint16_t port = server.start();
  for (const std::string& junk : {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 16),
                                  std::string("GET /status HTTP/9.9\r\n\r\n"), std::string("HELLO\r\n\r\n"),
                                  std::string("GET /status HTTP/1.1\r\nBad Header\r\n\r\n"),
                                  std::string("GET /status HTTP/1.1\r\nContent-Length: x\r\n\r\n")}) {
    RawClient client(port);
    client.send(junk);
    bool closed = false;
    const std::string res = client.read_all(&closed);
    EXPECT_TRUE(closed);
    EXPECT_EQ(status_code(res), 400) << res;
  }
  EXPECT_EQ(get(port, "/status").status, 200);
}

TEST(StatusServer, OversizedRequestsAreRejectedAndTheNextClientIsServed) {
  StatusServer server(sample_snapshot, {}, fast_limits());
  const uint16_t port = server.start();
  {
    RawClient client(port);
    const std::string request =
        "GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n";
    client.send(request);  // may fail half-way: the server stops reading at 8 KiB
    bool closed = false;
    const std::string res = client.read_all(&closed);
    EXPECT_TRUE(closed);
    // Either the 431 made it out before the close, or the connection was reset: never a 200.
    if (!res.empty()) {
      EXPECT_EQ(status_code(res), 431) << res.substr(0, 200);
    }
  }
  {
    // Many small headers add up too.
    RawClient client(port);
    std::string request = "GET /status HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 2000; ++i) request += "X-H" + std::to_string(i) + ": v\r\n";
    client.send(request + "\r\n");
    bool closed = false;
    const std::string res = client.read_all(&closed);
    EXPECT_TRUE(closed);
    if (!res.empty()) {
      EXPECT_EQ(status_code(res), 431);
    }
  }
  {
    // A body past the limit: 413 (or reset).
    RawClient client(port);
    client.send("GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                std::string(100000, 'b'));
    bool closed = false;
    const std::string res = client.read_all(&closed);
    EXPECT_TRUE(closed);
    if (!res.empty()) {
      EXPECT_EQ(status_code(res), 413);
    }
  }
  EXPECT_GE(server.connections_dropped(), 3u);
  const HttpResponse next = get(port, "/status");
  EXPECT_EQ(next.status, 200);
  EXPECT_EQ(nlohmann::json::parse(next.body), sample_snapshot());
}

TEST(StatusServer, ASlowClientIsDroppedWhileOthersAreServed) {
  StatusServer server(sample_snapshot, {}, fast_limits());  // a request must arrive within 1 s
  const uint16_t port = server.start();
  std::promise<double> dropped_after;
  std::thread slow([&] {
    RawClient client(port);
    const std::string request = "GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(200, 'z');
    const auto t0 = std::chrono::steady_clock::now();
    for (const char c : request) {
      if (!client.send(std::string(1, c))) break;  // reset by the server
      std::this_thread::sleep_for(100ms);
      if (seconds_since(t0) > 15) break;
    }
    // Closed: the next read sees EOF (or the send above already failed).
    bool closed = false;
    client.read_all(&closed);
    dropped_after.set_value(closed ? seconds_since(t0) : 1e9);
  });
  // Meanwhile other clients are answered at once.
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(get(port, "/status").status, 200);
    EXPECT_LT(seconds_since(t0), 2.0);
    std::this_thread::sleep_for(100ms);
  }
  const double seconds = dropped_after.get_future().get();
  slow.join();
  EXPECT_GE(seconds, 0.5);
  EXPECT_LT(seconds, 6.0);  // request timeout 1 s + slack for a loaded machine
  EXPECT_GE(server.connections_dropped(), 1u);
}

TEST(StatusServer, IdleConnectionsAreClosed) {
  StatusServer server(sample_snapshot, {}, fast_limits());
  const uint16_t port = server.start();
  RawClient silent(port);  // connects and sends nothing
  RawClient kept(port);    // one request, then keep-alive silence
  ASSERT_TRUE(kept.send("GET /status HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(status_code(kept.read_response()), 200);
  const auto t0 = std::chrono::steady_clock::now();
  bool closed_silent = false, closed_kept = false;
  silent.read_all(&closed_silent);
  kept.read_all(&closed_kept);
  EXPECT_TRUE(closed_silent);
  EXPECT_TRUE(closed_kept);
  EXPECT_LT(seconds_since(t0), 6.0);
}

TEST(StatusServer, FiftyConcurrentClientsAllGetAnswers) {
  std::atomic<int> calls{0};
  StatusServer::Limits limits;
  limits.snapshot_max_age = 0ms;
  StatusServer server(
      [&] {
        ++calls;
        return sample_snapshot();
      },
      {}, limits);
  const uint16_t port = server.start();
  std::vector<std::future<int>> answers;
  for (int i = 0; i < 50; ++i)
    answers.push_back(std::async(std::launch::async, [port, i] {
      const HttpResponse res = get(port, i % 2 ? "/status" : "/metrics", 20s);
      if (i % 2 && nlohmann::json::parse(res.body) != sample_snapshot()) return -1;
      return res.status;
    }));
  for (auto& answer : answers) EXPECT_EQ(answer.get(), 200);
  EXPECT_EQ(calls.load(), 50);
}

TEST(StatusServer, ConnectionsBeyondTheLimitWaitForAFreeSlot) {
  StatusServer::Limits limits = fast_limits();
  limits.max_connections = 2;
  StatusServer server(sample_snapshot, {}, limits);
  const uint16_t port = server.start();
  RawClient a(port), b(port);  // hold both slots until their request timeout
  const HttpResponse res = get(port, "/status", 10s);
  EXPECT_EQ(res.status, 200);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(get(port, "/status", 10s).status, 200);
}

TEST(StatusServer, ACallbackThatThrowsGets500AndTheServerGoesOn) {
  std::atomic<int> calls{0};
  StatusServer server(
      [&]() -> nlohmann::json {
        if (calls++ % 2 == 0) throw std::runtime_error("store busy");
        return sample_snapshot();
      },
      {}, fast_limits());
  const uint16_t port = server.start();
  const HttpResponse failed = get(port, "/status");
  EXPECT_EQ(failed.status, 500);
  EXPECT_THAT(nlohmann::json::parse(failed.body).at("error").get<std::string>(), HasSubstr("store busy"));
  EXPECT_EQ(get(port, "/status").status, 200);
  EXPECT_EQ(get(port, "/metrics").status, 500);
  EXPECT_EQ(get(port, "/metrics").status, 200);
  EXPECT_THROW(fetch_status("http://127.0.0.1:" + std::to_string(port), 5s), std::runtime_error);

  StatusServer odd([] { return nlohmann::json{{"experiment", std::string("bad \xff utf-8")}}; });
  const HttpResponse res = get(odd.start(), "/status");
  EXPECT_EQ(res.status, 200);
  EXPECT_NO_THROW(nlohmann::json::parse(res.body));
}

TEST(StatusServer, AnswersAreReusedForTheSnapshotMaxAge) {
  std::atomic<int> status_calls{0}, metrics_calls{0};
  StatusServer::Limits limits;
  limits.snapshot_max_age = 60s;
  StatusServer server(
      [&]() -> nlohmann::json {
        if (status_calls++ == 0) throw std::runtime_error("store busy");
        return sample_snapshot();
      },
      [&] {
        ++metrics_calls;
        return std::string("m 1\n");
      },
      limits);
  const uint16_t port = server.start();
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(get(port, "/status").status, 500);  // a failure is reused too: no hammering of a sick store
    EXPECT_EQ(get(port, "/metrics").body, "m 1\n");
  }
  EXPECT_EQ(status_calls.load(), 1);
  EXPECT_EQ(metrics_calls.load(), 1);

  limits.snapshot_max_age = 100ms;
  status_calls = 0;
  StatusServer fresh(
      [&] {
        ++status_calls;
        return sample_snapshot();
      },
      {}, limits);
  const uint16_t fresh_port = fresh.start();
  EXPECT_EQ(get(fresh_port, "/status").status, 200);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(get(fresh_port, "/status").status, 200);
  EXPECT_EQ(status_calls.load(), 2);
}

TEST(StatusServer, StopIsCleanWithClientsConnectedAndIdempotent) {
  StatusServer::Limits limits;  // default timeouts: stop() must not wait for them
  StatusServer server(sample_snapshot, {}, limits);
  StatusServer never_started(sample_snapshot);
  never_started.stop();
  never_started.stop();

  const uint16_t port = server.start();
  EXPECT_EQ(server.start(), port);  // already running
  RawClient idle(port);
  RawClient partial(port);
  partial.send("GET /status HTTP/1.1\r\nHo");
  RawClient kept(port);
  kept.send("GET /status HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(status_code(kept.read_response()), 200);
  std::atomic<bool> stop_hammering{false};
  std::thread hammer([&] {
    while (!stop_hammering) {
      try {
        get(port, "/status", 1s);
      } catch (const std::exception&) {
      }
    }
  });
  std::this_thread::sleep_for(200ms);

  const auto t0 = std::chrono::steady_clock::now();
  server.stop();
  EXPECT_LT(seconds_since(t0), 2.0);
  stop_hammering = true;
  hammer.join();
  EXPECT_FALSE(server.running());
  EXPECT_EQ(server.port(), 0);
  for (RawClient* c : {&idle, &partial, &kept}) {
    bool closed = false;
    c->read_all(&closed);
    EXPECT_TRUE(closed);
  }
  EXPECT_THROW(get(port, "/status", 1s), std::runtime_error);
  server.stop();

  // It can start again.
  const uint16_t again = server.start();
  EXPECT_EQ(get(again, "/status").status, 200);
}

TEST(StatusServer, BadAddressesAndBusyPortsAreClearErrors) {
  EXPECT_THROW(StatusServer("not an address", 0, sample_snapshot).start(), InputError);
  EXPECT_THROW(StatusServer("256.1.1.1", 0, sample_snapshot).start(), InputError);
  EXPECT_THROW(StatusServer(StatusSnapshotFn{}), InputError);
  StatusServer::Limits zero;
  zero.max_connections = 0;
  EXPECT_THROW(StatusServer(sample_snapshot, {}, zero), InputError);
  zero = {};
  zero.request_timeout = 0ms;
  try {
    StatusServer server(sample_snapshot, {}, zero);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("request_timeout"));
  }

  StatusServer first("127.0.0.1", 0, sample_snapshot);
  const uint16_t port = first.start();
  StatusServer second("127.0.0.1", port, sample_snapshot);
  try {
    second.start();
    FAIL();
  } catch (const InputError&) {
    FAIL() << "a busy port is not bad input";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(std::to_string(port)));
  }
  EXPECT_FALSE(second.running());
  EXPECT_EQ(get(port, "/status").status, 200);

  StatusServer local("localhost", 0, sample_snapshot);
  EXPECT_EQ(get(local.start(), "/status").status, 200);
}

}  // namespace
}  // namespace e2e
