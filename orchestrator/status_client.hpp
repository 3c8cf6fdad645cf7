// The reading side of the status endpoint (`e2e status --url`): a small HTTP GET with a deadline, and the
// text view of a status snapshot (the JSON documented in orchestrator/status_server.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace e2e {

struct HttpUrl {
  std::string host;    // a name, an IPv4 literal or an IPv6 literal (without brackets)
  uint16_t port = 80;  // default 80
  std::string target;  // path (+ query), always starting with '/'
};

// "http://HOST[:PORT][/PATH]" (the scheme may be left out). Throws InputError naming `what` for anything
// else: another scheme (https: use an SSH tunnel instead), user info, a bad host or port, spaces or control
// characters.
HttpUrl parse_http_url(const std::string& url, const std::string& what = "--url");

struct HttpResponse {
  int status = 0;
  std::string reason;
  std::string content_type;
  std::string body;
};

// GET url.target from url.host:url.port; the whole exchange (resolve, connect, write, read) must finish
// within `timeout`. Throws std::runtime_error naming the address when it is unreachable, times out, or the
// answer is not HTTP (bodies over 16 MiB count as such).
HttpResponse http_get(const HttpUrl& url, std::chrono::milliseconds timeout);

// GET /status (a URL with no path or "/" means /status): the snapshot. Throws InputError for a malformed URL,
// std::runtime_error when the server is unreachable, answers with a status other than 200, or not with a
// JSON object.
nlohmann::json fetch_status(const std::string& url, std::chrono::milliseconds timeout);

// Jobs by state, the sweep's ETA and a progress bar per running job. Missing fields are left out; never
// throws on odd input. `now_seconds` (Unix time, 0 = the clock) gives heartbeat ages.
std::string render_status_text(const nlohmann::json& snapshot, double now_seconds = 0);

// "1h02m", "3m05s", "42s".
std::string duration_text(double seconds);

}  // namespace e2e
