// The coordinator's live-status endpoint: a small read-only HTTP/1.1 server (Boost.Asio + Beast) on its own
// thread, bound to 127.0.0.1 by default.
//
//   GET /status   application/json: the snapshot below, produced by the status_snapshot callback
//   GET /metrics  text/plain; version=0.0.4: Prometheus text exposition (prometheus_text callback, or
//                 prometheus_from_status(snapshot) when none is given)
//   HEAD of both; any other path → 404; any other method → 405 (Allow: GET, HEAD)
//
// Guards: request headers are limited (Limits::header_limit, default 8 KiB → 431 and close), request bodies
// too (→ 413 and close), malformed requests get 400 and close; each request must arrive completely within
// Limits::request_timeout (a client trickling bytes is dropped), each response must be written within
// Limits::write_timeout, an idle keep-alive connection is closed after Limits::idle_timeout; at most
// Limits::max_connections connections are served at once (further clients wait in the listen backlog until a
// slot frees). A query string ("/status?pretty") is ignored.
//
// The callbacks run on the server thread, one call at a time and at most once per Limits::snapshot_max_age
// and endpoint: they must be thread-safe with respect to the caller's own threads (e.g. copy the state under
// a mutex), must not block for long, and must not call stop(). A callback that throws yields a 500 answer;
// the server goes on. Nothing a client sends reaches the caller.
//
// The snapshot JSON (what the coordinator produces; extra fields are allowed and passed through):
//   {
//     "experiment": "amos-sparsity",                     // string
//     "started": "2024-05-01T12:00:00.000Z",             // ISO 8601 UTC, when the sweep (this run) started
//     "jobs": {"pending": 7, "running": 2, "done": 5,    // job counts by state; every state present
//              "failed": 0, "preempted": 0, "interrupted": 1},
//     "running": [                                       // one entry per running job
//       {"job": 12,                                      // job id (integer; a string is accepted too)
//        "fold": 0, "sparsity": 0.9, "seed": 0,
//        "group": 1,                                     // worker group index
//        "epoch": 4, "epochs": 10,                       // epochs finished / planned
//        "progress": 0.4,                                // 0..1
//        "eta_seconds": 300.0,                           // null while unknown
//        "last_heartbeat": "2024-05-01T12:34:56.789Z"}   // ISO 8601 UTC of the last EPOCH message
//     ],
//     "eta_seconds": 1800.0                              // whole sweep; null while unknown
//   }
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace e2e {

using StatusSnapshotFn = std::function<nlohmann::json()>;
using PrometheusTextFn = std::function<std::string()>;

// Guards of the status server (see StatusServer).
struct StatusServerLimits {
  std::size_t header_limit = 8 * 1024;              // bytes of request line + headers
  std::size_t body_limit = 1024;                    // bytes of request body (GET has none)
  std::chrono::milliseconds request_timeout{5000};  // a whole request must arrive within this
  std::chrono::milliseconds write_timeout{5000};    // a whole response must be taken within this
  std::chrono::milliseconds idle_timeout{15000};    // keep-alive wait for the next request
  std::size_t max_connections = 64;                 // served at once
  std::size_t max_requests_per_connection = 1000;   // then Connection: close
  // An answer of /status or /metrics (or its 500) is reused this long, so a flood of requests calls the
  // callbacks (and reads the store behind them) at most once per period and endpoint. 0 = every request.
  std::chrono::milliseconds snapshot_max_age{1000};
};

class StatusServer {
 public:
  using Limits = StatusServerLimits;

  // address: an IPv4/IPv6 literal ("127.0.0.1", "::1", "0.0.0.0"); port 0 = ephemeral (see start()).
  // prometheus_text may be empty: /metrics then renders prometheus_from_status(status_snapshot()).
  // Throws InputError naming the field for an empty snapshot callback or zero limits.
  StatusServer(std::string address, uint16_t port, StatusSnapshotFn status_snapshot,
               PrometheusTextFn prometheus_text = {}, Limits limits = {});
  // 127.0.0.1, an ephemeral port.
  explicit StatusServer(StatusSnapshotFn status_snapshot, PrometheusTextFn prometheus_text = {},
                        Limits limits = {});
  ~StatusServer();  // stop()

  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Binds, listens and starts the server thread; returns the bound port. Throws InputError ("status
  // address: ...") for an address that is not an IP literal and std::runtime_error when the port cannot be
  // bound (in use, no permission). Calling start() on a running server returns its port; after stop() the
  // server can be started again.
  uint16_t start();
  // Closes the listener and every connection, then joins the thread. Idempotent; safe without start().
  void stop();

  bool running() const;
  uint16_t port() const;  // 0 when not running
  const std::string& address() const { return address_; }
  std::string url() const;  // "http://127.0.0.1:PORT" (IPv6 in brackets)

  // Counters (for tests and logs): responses written; connections closed early by a timeout, an oversized
  // or malformed request.
  uint64_t requests_served() const { return stats_->served.load(); }
  uint64_t connections_dropped() const { return stats_->dropped.load(); }

 private:
  struct Stats {
    std::atomic<uint64_t> served{0};
    std::atomic<uint64_t> dropped{0};
  };
  class Impl;

  std::string url_locked() const;

  std::string address_;
  uint16_t requested_port_;
  StatusSnapshotFn snapshot_;
  PrometheusTextFn prometheus_;
  Limits limits_;
  std::shared_ptr<Stats> stats_;
  mutable std::mutex mutex_;  // guards impl_ (start/stop/port from any thread)
  std::unique_ptr<Impl> impl_;
};

// Prometheus text format 0.0.4 of a snapshot: e2e_up, e2e_sweep_info{experiment}, e2e_sweep_started_seconds,
// e2e_jobs{state}, e2e_jobs_total, e2e_eta_seconds and, per running job (labels job, fold, sparsity, seed,
// group), e2e_job_progress, e2e_job_epoch, e2e_job_epochs, e2e_job_eta_seconds and
// e2e_job_last_heartbeat_seconds (Unix time). Fields that are missing, null or of the wrong type are left
// out; it never throws on odd input.
std::string prometheus_from_status(const nlohmann::json& snapshot);

// Prometheus label value escaping: backslash, double quote and newline.
std::string prometheus_escape_label(const std::string& value);

// "2024-05-01T12:34:56.789Z" (or "+hh:mm" offsets, or no fraction) → seconds since the Unix epoch;
// returns false for anything else.
bool parse_iso8601_utc(const std::string& text, double& seconds_since_epoch);

}  // namespace e2e
