#include "orchestrator/status_server.hpp"

// GCC 12 + Asio: <utility> before boost/asio.hpp.
#include <utility>
// clang-format off
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <vector>

#include "configs/config.hpp"

namespace e2e {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr const char* kServerName = "e2e-status";
constexpr const char* kJsonType = "application/json";
constexpr const char* kPrometheusType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextType = "text/plain; charset=utf-8";

bool is_http_error(const beast::error_code& ec) {
  return ec.category() == beast::http::make_error_code(http::error::end_of_stream).category();
}

}  // namespace

// Everything that lives on the server thread. Members are touched only from that thread once it runs, except
// `port` (set before the thread starts) and the io_context itself (post()).
class StatusServer::Impl {
 public:
  class Session;

  Impl(StatusSnapshotFn snapshot, PrometheusTextFn prometheus, const Limits& limits,
       std::shared_ptr<Stats> stats)
      : snapshot_(std::move(snapshot)),
        prometheus_(std::move(prometheus)),
        limits_(limits),
        stats_(std::move(stats)) {}

  ~Impl() {
    // Handlers still queued (none after a clean run) are destroyed with the io_context, while the rest of
    // this object is alive.
    stopping_ = true;
    retry_timer_.reset();
    acceptor_.reset();
    ioc_.reset();
  }

  uint16_t listen(const std::string& address, uint16_t port) {
    std::string host = address == "localhost" ? "127.0.0.1" : address;
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    beast::error_code ec;
    const asio::ip::address ip = asio::ip::make_address(host, ec);
    if (ec)
      throw InputError(
          fmt::format("status address: '{}' is not an IP address (e.g. 127.0.0.1, ::1, 0.0.0.0)", address));
    const tcp::endpoint endpoint(ip, port);
    acceptor_.emplace(*ioc_);
    const auto fail = [&](const char* what) {
      throw std::runtime_error(
          fmt::format("status server: cannot {} {}:{}: {}", what, address, port, ec.message()));
    };
    acceptor_->open(endpoint.protocol(), ec);
    if (ec) fail("open a socket for");
    acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
    if (ec) fail("set options on");
    acceptor_->bind(endpoint, ec);
    if (ec) fail("bind");
    acceptor_->listen(asio::socket_base::max_listen_connections, ec);
    if (ec) fail("listen on");
    port_ = acceptor_->local_endpoint().port();
    return port_;
  }

  void run_thread() {
    asio::post(*ioc_, [this] { accept(); });
    thread_ = std::thread([this] {
      for (;;) {
        try {
          ioc_->run();
          return;
        } catch (const std::exception& e) {  // a handler threw: log it and keep serving
          spdlog::error("status server: {}", e.what());
        }
      }
    });
  }

  void shutdown() {
    if (thread_.joinable()) {
      asio::post(*ioc_, [this] { close_all(); });
      thread_.join();
    }
  }

  uint16_t port() const { return port_; }

  // --- server thread only ---
  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void close_all();
  void session_opened(Session* s) {
    sessions_.insert(s);
    ++active_;
  }
  void session_closed(Session* s) {
    sessions_.erase(s);
    --active_;
    if (paused_ && !stopping_) {
      paused_ = false;
      accept();
    }
  }
  http::response<http::string_body> answer(const http::request<http::string_body>& req);

  // A rendered /status or /metrics answer, reused for Limits::snapshot_max_age.
  struct Rendered {
    bool valid = false;
    std::chrono::steady_clock::time_point at;
    http::status status = http::status::ok;
    const char* type = kTextType;
    std::string body;
  };
  const Rendered& render(bool is_status);

  const Limits& limits() const { return limits_; }
  Stats& stats() { return *stats_; }
  bool stopping() const { return stopping_; }

 private:
  StatusSnapshotFn snapshot_;
  PrometheusTextFn prometheus_;
  Limits limits_;
  std::shared_ptr<Stats> stats_;
  std::unique_ptr<asio::io_context> ioc_ = std::make_unique<asio::io_context>(1);
  std::optional<tcp::acceptor> acceptor_;
  std::optional<asio::steady_timer> retry_timer_;
  std::thread thread_;
  uint16_t port_ = 0;
  std::unordered_set<Session*> sessions_;
  std::size_t active_ = 0;
  Rendered status_cache_;
  Rendered metrics_cache_;
  bool paused_ = false;  // at max_connections: accept() resumes when a session ends
  bool stopping_ = false;
};

// One connection: read a request (bounded in size and time), answer, repeat while keep-alive.
class StatusServer::Impl::Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Impl& server, tcp::socket socket)
      : server_(server),
        stream_(std::move(socket)),
        buffer_(server.limits().header_limit + server.limits().body_limit + 1024) {
    server_.session_opened(this);
  }
  ~Session() { server_.session_closed(this); }

  void start() { read_request(server_.limits().request_timeout); }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  // Waits for the first byte of a keep-alive request (idle timeout), then reads the request.
  void wait_for_next_request() {
    stream_.expires_after(server_.limits().idle_timeout);
    stream_.async_read_some(buffer_.prepare(512),
                            [self = shared_from_this()](beast::error_code ec, std::size_t n) {
                              if (ec) return self->close();  // closed by the client, idle timeout or shutdown
                              self->buffer_.commit(n);
                              self->read_request(self->server_.limits().request_timeout);
                            });
  }

  void read_request(std::chrono::milliseconds deadline) {
    if (server_.stopping()) return close();
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_.limits().header_limit));
    parser_->body_limit(server_.limits().body_limit);
    stream_.expires_after(deadline);  // the whole request: a trickling client runs into it
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (!ec) {
      const http::request<http::string_body>& req = parser_->get();
      ++requests_;
      const bool keep_alive =
          req.keep_alive() && requests_ < server_.limits().max_requests_per_connection && !server_.stopping();
      response_ = server_.answer(req);
      response_->keep_alive(keep_alive);
      return write(keep_alive);
    }
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted) return close();
    ++server_.stats().dropped;
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow ||
        ec == beast::error_code(asio::error::no_buffer_space))
      return reject(http::status::request_header_fields_too_large, "request header too large\n");
    if (ec == http::error::body_limit)
      return reject(http::status::payload_too_large, "request body too large\n");
    if (is_http_error(ec) && ec != http::error::partial_message)
      return reject(http::status::bad_request, fmt::format("malformed request: {}\n", ec.message()));
    close();  // timeout, reset by peer, EOF inside a request
  }

  // An error answer; the connection is closed after it (the rest of the request is never read).
  void reject(http::status status, std::string body) {
    http::response<http::string_body> res{status, 11};
    res.set(http::field::server, kServerName);
    res.set(http::field::content_type, kTextType);
    res.body() = std::move(body);
    res.keep_alive(false);
    res.prepare_payload();
    response_ = std::move(res);
    write(false);
  }

  void write(bool keep_alive) {
    stream_.expires_after(server_.limits().write_timeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, std::size_t) {
                        self->response_.reset();
                        if (ec) return self->close();
                        ++self->server_.stats().served;
                        if (!keep_alive || self->server_.stopping()) return self->close();
                        if (self->buffer_.size() > 0)  // pipelined request already buffered
                          return self->read_request(self->server_.limits().request_timeout);
                        self->wait_for_next_request();
                      });
  }

  Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> response_;
  std::size_t requests_ = 0;
};

void StatusServer::Impl::accept() {
  if (stopping_ || !acceptor_ || !acceptor_->is_open()) return;
  if (active_ >= limits_.max_connections) {
    paused_ = true;  // further clients wait in the listen backlog
    return;
  }
  acceptor_->async_accept(
      [this](beast::error_code ec, tcp::socket socket) { on_accept(ec, std::move(socket)); });
}

void StatusServer::Impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (ec == asio::error::operation_aborted || stopping_) return;
  if (ec) {
    // E.g. out of file descriptors: try again shortly instead of spinning.
    spdlog::warn("status server: accept failed: {}", ec.message());
    retry_timer_.emplace(*ioc_, std::chrono::milliseconds(100));
    retry_timer_->async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec) accept();
    });
    return;
  }
  std::make_shared<Session>(*this, std::move(socket))->start();
  accept();
}

void StatusServer::Impl::close_all() {
  stopping_ = true;
  beast::error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  if (retry_timer_) retry_timer_->cancel();
  // Copy: closing never runs a handler synchronously, but keep iteration independent of the set anyway.
  const std::vector<Session*> open(sessions_.begin(), sessions_.end());
  for (Session* s : open) s->close();
}

const StatusServer::Impl::Rendered& StatusServer::Impl::render(bool is_status) {
  Rendered& cached = is_status ? status_cache_ : metrics_cache_;
  const auto now = std::chrono::steady_clock::now();
  if (cached.valid && now - cached.at < limits_.snapshot_max_age) return cached;
  try {
    if (is_status) {
      const nlohmann::json snapshot = snapshot_();
      cached.body = snapshot.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
      cached.type = kJsonType;
    } else {
      cached.body = prometheus_ ? prometheus_() : prometheus_from_status(snapshot_());
      cached.type = kPrometheusType;
    }
    cached.status = http::status::ok;
  } catch (const std::exception& e) {
    spdlog::warn("status server: {} callback failed: {}", is_status ? "status" : "metrics", e.what());
    const nlohmann::json error = {{"error", std::string("status callback failed: ") + e.what()}};
    cached.body = error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    cached.type = kJsonType;
    cached.status = http::status::internal_server_error;
  } catch (...) {
    cached.body = "{\"error\":\"status callback failed\"}\n";
    cached.type = kJsonType;
    cached.status = http::status::internal_server_error;
  }
  cached.at = std::chrono::steady_clock::now();
  cached.valid = true;
  return cached;
}

http::response<http::string_body> StatusServer::Impl::answer(const http::request<http::string_body>& req) {
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.set(http::field::server, kServerName);
  res.set(http::field::cache_control, "no-store");
  const auto finish = [&](http::status status, const char* type, std::string body) {
    res.result(status);
    res.set(http::field::content_type, type);
    res.body() = std::move(body);
    res.prepare_payload();
    if (req.method() == http::verb::head) res.body().clear();  // Content-Length stays that of the GET
    return std::move(res);
  };

  std::string path(req.target());
  if (const auto q = path.find_first_of("?#"); q != std::string::npos) path.resize(q);
  const bool is_status = path == "/status";
  const bool is_metrics = path == "/metrics";
  if (!is_status && !is_metrics)
    return finish(http::status::not_found, kTextType, "not found; endpoints: GET /status, GET /metrics\n");
  if (req.method() != http::verb::get && req.method() != http::verb::head) {
    res.set(http::field::allow, "GET, HEAD");
    return finish(http::status::method_not_allowed, kTextType, "method not allowed (read-only: GET, HEAD)\n");
  }
  const Rendered& body = render(is_status);
  return finish(body.status, body.type, body.body);
}

// ----------------------------------------------------------------------------------------------------------

namespace {

void validate(const StatusServer::Limits& limits, const StatusSnapshotFn& snapshot) {
  if (!snapshot) throw InputError("status server: status_snapshot callback is empty");
  if (limits.header_limit < 256) throw InputError("status server limits.header_limit: must be at least 256");
  if (limits.max_connections == 0) throw InputError("status server limits.max_connections: must be positive");
  if (limits.max_requests_per_connection == 0)
    throw InputError("status server limits.max_requests_per_connection: must be positive");
  for (const auto& [name, value] :
       {std::pair{"request_timeout", limits.request_timeout},
        std::pair{"write_timeout", limits.write_timeout}, std::pair{"idle_timeout", limits.idle_timeout}})
    if (value.count() <= 0) throw InputError(fmt::format("status server limits.{}: must be positive", name));
}

}  // namespace

StatusServer::StatusServer(std::string address, uint16_t port, StatusSnapshotFn status_snapshot,
                           PrometheusTextFn prometheus_text, Limits limits)
    : address_(std::move(address)),
      requested_port_(port),
      snapshot_(std::move(status_snapshot)),
      prometheus_(std::move(prometheus_text)),
      limits_(limits),
      stats_(std::make_shared<Stats>()) {
  validate(limits_, snapshot_);
}

StatusServer::StatusServer(StatusSnapshotFn status_snapshot, PrometheusTextFn prometheus_text, Limits limits)
    : StatusServer("127.0.0.1", 0, std::move(status_snapshot), std::move(prometheus_text), limits) {}

StatusServer::~StatusServer() {
  stop();
}

uint16_t StatusServer::start() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (impl_) return impl_->port();
  auto impl = std::make_unique<Impl>(snapshot_, prometheus_, limits_, stats_);
  const uint16_t port = impl->listen(address_, requested_port_);
  impl->run_thread();
  impl_ = std::move(impl);
  spdlog::debug("status server: listening on {}", url_locked());
  return port;
}

void StatusServer::stop() {
  std::unique_ptr<Impl> impl;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    impl = std::move(impl_);
  }
  if (impl) impl->shutdown();
}

bool StatusServer::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return impl_ != nullptr;
}

uint16_t StatusServer::port() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return impl_ ? impl_->port() : 0;
}

std::string StatusServer::url() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return url_locked();
}

std::string StatusServer::url_locked() const {
  const bool v6 = address_.find(':') != std::string::npos && address_.front() != '[';
  return fmt::format("http://{}{}{}:{}", v6 ? "[" : "", address_, v6 ? "]" : "", impl_ ? impl_->port() : 0);
}

// ----------------------------------------------------------------------------------------------------------
// Prometheus text format

std::string prometheus_escape_label(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

bool parse_iso8601_utc(const std::string& text, double& seconds_since_epoch) {
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute, &second,
                  &consumed) != 6 ||
      consumed != 19)
    return false;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60 ||
      year < 1970)
    return false;
  std::size_t i = 19;
  double fraction = 0;
  if (i < text.size() && text[i] == '.') {
    double scale = 0.1;
    ++i;
    const std::size_t digits_from = i;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i, scale /= 10)
      fraction += (text[i] - '0') * scale;
    if (i == digits_from) return false;
  }
  int offset_seconds = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int oh = 0, om = 0, n = 0;
    if (std::sscanf(text.c_str() + i + 1, "%2d:%2d%n", &oh, &om, &n) != 2 || n != 5 || oh > 23 || om > 59)
      return false;
    offset_seconds = (text[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    i += 6;
  } else {
    return false;  // local time is ambiguous
  }
  if (i != text.size()) return false;
  // Days from the civil date (proleptic Gregorian), without the local time zone.
  const int y = year - (month <= 2 ? 1 : 0);
  const int era = y / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const int64_t days = static_cast<int64_t>(era) * 146097 + doe - 719468;
  seconds_since_epoch =
      static_cast<double>(days * 86400 + hour * 3600 + minute * 60 + second - offset_seconds) + fraction;
  return true;
}

namespace {

std::string sample_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

std::optional<double> number(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find(key);
  if (it == j.end()) return std::nullopt;
  if (it->is_number()) return it->get<double>();
  if (it->is_boolean()) return it->get<bool>() ? 1.0 : 0.0;
  return std::nullopt;
}

// A label value from a JSON scalar; nullopt for null, objects and arrays.
std::optional<std::string> label_text(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find(key);
  if (it == j.end() || it->is_null() || it->is_structured()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_float()) return fmt::format("{}", it->get<double>());
  return it->dump();
}

class Exposition {
 public:
  // One metric family: HELP and TYPE once, then its samples.
  void family(const std::string& name, const std::string& help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
  }
  void sample(const std::string& name, const std::vector<std::pair<std::string, std::string>>& labels,
              double value) {
    out_ += name;
    if (!labels.empty()) {
      out_ += '{';
      for (std::size_t i = 0; i < labels.size(); ++i)
        out_ += fmt::format("{}{}=\"{}\"", i ? "," : "", labels[i].first,
                            prometheus_escape_label(labels[i].second));
      out_ += '}';
    }
    out_ += ' ' + sample_value(value) + '\n';
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

std::string prometheus_from_status(const nlohmann::json& snapshot) {
  Exposition e;
  e.family("e2e_up", "1 while the sweep coordinator serves its status.");
  e.sample("e2e_up", {}, 1);
  if (const auto experiment = label_text(snapshot, "experiment")) {
    e.family("e2e_sweep_info", "The running sweep (value always 1).");
    e.sample("e2e_sweep_info", {{"experiment", *experiment}}, 1);
  }
  double started = 0;
  if (const auto text = label_text(snapshot, "started"); text && parse_iso8601_utc(*text, started)) {
    e.family("e2e_sweep_started_seconds", "Start of the sweep, seconds since the Unix epoch.");
    e.sample("e2e_sweep_started_seconds", {}, started);
  }

  static const char* const kStates[] = {"pending", "running", "done", "failed", "preempted", "interrupted"};
  std::vector<std::pair<std::string, double>> states;
  for (const char* s : kStates) states.emplace_back(s, 0.0);
  if (snapshot.is_object() && snapshot.contains("jobs") && snapshot["jobs"].is_object()) {
    for (const auto& [state, count] : snapshot["jobs"].items()) {
      if (!count.is_number()) continue;
      bool known = false;
      for (auto& [name, value] : states)
        if (name == state) value = count.get<double>(), known = true;
      if (!known) states.emplace_back(state, count.get<double>());
    }
  }
  double total = 0;
  e.family("e2e_jobs", "Jobs of the sweep by state.");
  for (const auto& [state, count] : states) {
    e.sample("e2e_jobs", {{"state", state}}, count);
    total += count;
  }
  e.family("e2e_jobs_total", "Jobs of the sweep.");
  e.sample("e2e_jobs_total", {}, total);
  if (const auto eta = number(snapshot, "eta_seconds")) {
    e.family("e2e_eta_seconds", "Estimated seconds until every job of the sweep has finished.");
    e.sample("e2e_eta_seconds", {}, *eta);
  }

  // Per running job: one family at a time, each over every job.
  std::vector<std::pair<std::vector<std::pair<std::string, std::string>>, const nlohmann::json*>> jobs;
  if (snapshot.is_object() && snapshot.contains("running") && snapshot["running"].is_array()) {
    for (const nlohmann::json& job : snapshot["running"]) {
      const auto id = label_text(job, "job");
      if (!id) continue;
      std::vector<std::pair<std::string, std::string>> labels{{"job", *id}};
      for (const char* key : {"fold", "sparsity", "seed", "group"})
        if (const auto value = label_text(job, key)) labels.emplace_back(key, *value);
      jobs.emplace_back(std::move(labels), &job);
    }
  }
  struct PerJob {
    const char* name;
    const char* key;
    const char* help;
  };
  static const PerJob kPerJob[] = {
      {"e2e_job_progress", "progress", "Fraction of the running job's epochs done (0..1)."},
      {"e2e_job_epoch", "epoch", "Epochs the running job has finished."},
      {"e2e_job_epochs", "epochs", "Epochs the running job trains for."},
      {"e2e_job_eta_seconds", "eta_seconds", "Estimated seconds until the running job finishes."},
  };
  for (const PerJob& metric : kPerJob) {
    bool any = false;
    for (const auto& [labels, job] : jobs) {
      const auto value = number(*job, metric.key);
      if (!value) continue;
      if (!any) e.family(metric.name, metric.help);
      any = true;
      e.sample(metric.name, labels, *value);
    }
  }
  bool any_heartbeat = false;
  for (const auto& [labels, job] : jobs) {
    double seconds = 0;
    const auto text = label_text(*job, "last_heartbeat");
    if (!text || !parse_iso8601_utc(*text, seconds)) continue;
    if (!any_heartbeat)
      e.family("e2e_job_last_heartbeat_seconds", "Last progress message of the running job, Unix time.");
    any_heartbeat = true;
    e.sample("e2e_job_last_heartbeat_seconds", labels, seconds);
  }
  return e.take();
}

}  // namespace e2e
