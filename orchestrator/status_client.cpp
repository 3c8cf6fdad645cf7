#include "orchestrator/status_client.hpp"

// GCC 12 + Asio: <utility> before boost/asio.hpp.
#include <utility>
// clang-format off
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
// clang-format on
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "common/errors.hpp"
#include "orchestrator/status_server.hpp"

namespace e2e {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr std::size_t kMaxBody = 16u << 20;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

bool valid_host_name(const std::string& host) {
  if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') return false;
  return std::all_of(host.begin(), host.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '.' || c == '_'; });
}

}  // namespace

HttpUrl parse_http_url(const std::string& url, const std::string& what) {
  const auto bad = [&](const std::string& why) {
    return InputError(
        fmt::format("{}: '{}' is not a valid status URL ({}); expected http://HOST:PORT", what, url, why));
  };
  if (url.empty()) throw bad("empty");
  for (const char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) throw bad("spaces or control characters");
  std::string rest = url;
  if (const auto scheme_end = rest.find("://"); scheme_end != std::string::npos) {
    const std::string scheme = lower(rest.substr(0, scheme_end));
    if (scheme == "https")
      throw bad(
          "https is not supported: the status endpoint is plain HTTP on 127.0.0.1; reach it through an "
          "SSH tunnel");
    if (scheme != "http") throw bad(fmt::format("scheme '{}'", scheme));
    rest = rest.substr(scheme_end + 3);
  }
  HttpUrl out;
  const auto path_at = rest.find_first_of("/?#");
  std::string authority = rest.substr(0, path_at);
  std::string target = path_at == std::string::npos ? "" : rest.substr(path_at);
  if (const auto hash = target.find('#'); hash != std::string::npos) target.resize(hash);
  if (target.empty() || target.front() != '/') target = "/" + target;
  out.target = target;
  if (authority.find('@') != std::string::npos) throw bad("user info is not supported");
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string::npos) throw bad("unterminated IPv6 address");
    out.host = authority.substr(1, close - 1);
    const std::string after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw bad("text after the IPv6 address");
      port_text = after.substr(1);
      if (port_text.empty()) throw bad("empty port");
    }
    beast::error_code ec;
    asio::ip::make_address_v6(out.host, ec);
    if (ec) throw bad(fmt::format("bad IPv6 address '{}'", out.host));
  } else {
    const auto colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) throw bad("empty port");
    }
    if (out.host.empty()) throw bad("no host");
    if (!valid_host_name(out.host)) throw bad(fmt::format("bad host '{}'", out.host));
  }
  if (!port_text.empty()) {
    if (port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(), [](unsigned char c) { return std::isdigit(c); }))
      throw bad(fmt::format("bad port '{}'", port_text));
    const long port = std::stol(port_text);
    if (port < 1 || port > 65535) throw bad(fmt::format("port {} out of range 1-65535", port));
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

HttpResponse http_get(const HttpUrl& url, std::chrono::milliseconds timeout) {
  const std::string where = fmt::format(
      "{}:{}", url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host, url.port);
  asio::io_context ioc(1);
  tcp::resolver resolver(ioc);
  beast::tcp_stream stream(ioc);
  beast::flat_buffer buffer;
  http::request<http::empty_body> req{http::verb::get, url.target, 11};
  req.set(http::field::host, where);
  req.set(http::field::user_agent, "e2e-status-client");
  req.set(http::field::accept, "application/json, text/plain");
  req.keep_alive(false);
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxBody);

  beast::error_code result;
  const char* stage = "resolve";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  asio::steady_timer resolve_timer(ioc, deadline);
  bool resolved = false;
  resolve_timer.async_wait([&](beast::error_code ec) {
    if (!ec && !resolved) resolver.cancel();
  });
  resolver.async_resolve(
      url.host, std::to_string(url.port),
      [&](beast::error_code ec, const tcp::resolver::results_type& endpoints) {
        resolved = true;
        resolve_timer.cancel();
        if (ec) {
          result = ec == asio::error::operation_aborted ? beast::error_code(beast::error::timeout) : ec;
          return;
        }
        stage = "connect to";
        stream.expires_at(deadline);
        stream.async_connect(endpoints, [&](beast::error_code ec2, const tcp::endpoint&) {
          if (ec2) {
            result = ec2;
            return;
          }
          stage = "send a request to";
          http::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
            if (ec3) {
              result = ec3;
              return;
            }
            stage = "read the answer of";
            http::async_read(stream, buffer, parser,
                             [&](beast::error_code ec4, std::size_t) { result = ec4; });
          });
        });
      });
  ioc.run();
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  if (result == beast::error::timeout)
    throw std::runtime_error(
        fmt::format("cannot {} http://{}: timed out after {} ms", stage, where, timeout.count()));
  if (result)
    throw std::runtime_error(fmt::format("cannot {} http://{}: {}", stage, where, result.message()));
  const auto& res = parser.get();
  HttpResponse out;
  out.status = static_cast<int>(res.result_int());
  out.reason = std::string(res.reason());
  if (const auto it = res.find(http::field::content_type); it != res.end())
    out.content_type = std::string(it->value());
  out.body = res.body();
  return out;
}

nlohmann::json fetch_status(const std::string& url, std::chrono::milliseconds timeout) {
  HttpUrl parsed = parse_http_url(url);
  if (parsed.target == "/") parsed.target = "/status";
  const HttpResponse res = http_get(parsed, timeout);
  if (res.status != 200) {
    std::string body = res.body.substr(0, 200);
    while (!body.empty() && std::isspace(static_cast<unsigned char>(body.back()))) body.pop_back();
    throw std::runtime_error(
        fmt::format("GET {}: HTTP {} {}{}{}", url, res.status, res.reason, body.empty() ? "" : ": ", body));
  }
  nlohmann::json snapshot = nlohmann::json::parse(res.body, nullptr, /*allow_exceptions=*/false);
  if (!snapshot.is_object())
    throw std::runtime_error(fmt::format(
        "GET {}: the answer is not a status JSON object (is this the sweep's status port?)", url));
  return snapshot;
}

std::string duration_text(double seconds) {
  if (!std::isfinite(seconds)) return "?";
  const auto total = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (total >= 86400) return fmt::format("{}d{:02d}h", total / 86400, (total % 86400) / 3600);
  if (total >= 3600) return fmt::format("{}h{:02d}m", total / 3600, (total % 3600) / 60);
  if (total >= 60) return fmt::format("{}m{:02d}s", total / 60, total % 60);
  return fmt::format("{}s", total);
}

namespace {

std::optional<double> number(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return std::nullopt;
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

std::string text(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_float()) return fmt::format("{}", it->get<double>());
  return it->dump();
}

std::string bar(double fraction, int width) {
  const double f = std::isfinite(fraction) ? std::clamp(fraction, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(std::lround(f * width));
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

}  // namespace

std::string render_status_text(const nlohmann::json& s, double now_seconds) {
  if (now_seconds <= 0)
    now_seconds = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string out;
  const std::string experiment = text(s, "experiment");
  out += "experiment " + (experiment.empty() ? std::string("(all)") : experiment);
  if (const std::string started = text(s, "started"); !started.empty()) out += ", started " + started;
  out += "\n";

  static const char* const kStates[] = {"pending", "running", "done", "failed", "preempted", "interrupted"};
  std::string states;
  double total = 0, finished = 0;
  if (s.is_object() && s.contains("jobs") && s["jobs"].is_object()) {
    const nlohmann::json& jobs = s["jobs"];
    std::vector<std::string> names(std::begin(kStates), std::end(kStates));
    for (const auto& [name, value] : jobs.items())
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    for (const std::string& name : names) {
      const double n = number(jobs, name.c_str()).value_or(0);
      total += n;
      if (name == "done") finished += n;
      states += fmt::format("{}{} {}", states.empty() ? "" : ", ", static_cast<int64_t>(n), name);
    }
    out += fmt::format("jobs: {} ({} total)\n", states, static_cast<int64_t>(total));
  }
  const std::optional<double> progress = number(s, "progress");
  const double overall = progress ? *progress : (total > 0 ? finished / total : 0.0);
  out += fmt::format("{} {:5.1f}%", bar(overall, 30), 100 * overall);
  if (const auto eta = number(s, "eta_seconds")) out += "  ETA " + duration_text(*eta);
  out += "\n";

  if (s.is_object() && s.contains("running") && s["running"].is_array()) {
    for (const nlohmann::json& job : s["running"]) {
      const double fraction = number(job, "progress").value_or(0.0);
      out += fmt::format("  job {:>5}  fold {}  s={}  seed {}", text(job, "job"), text(job, "fold"),
                         text(job, "sparsity"), text(job, "seed"));
      if (const std::string group = text(job, "group"); !group.empty()) out += "  group " + group;
      out += fmt::format("  {} {:5.1f}%", bar(fraction, 20), 100 * fraction);
      const auto epoch = number(job, "epoch");
      const auto epochs = number(job, "epochs");
      if (epoch && epochs) out += fmt::format("  epoch {}/{}", *epoch, *epochs);
      if (const auto eta = number(job, "eta_seconds")) out += "  ETA " + duration_text(*eta);
      double beat = 0;
      if (parse_iso8601_utc(text(job, "last_heartbeat"), beat))
        out += "  heartbeat " + duration_text(now_seconds - beat) + " ago";
      out += "\n";
    }
  }
  return out;
}

}  // namespace e2e
