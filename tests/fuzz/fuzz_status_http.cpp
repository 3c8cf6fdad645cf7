// libFuzzer harness: the status server's HTTP request handling. One StatusServer runs for the whole process
// (127.0.0.1, ephemeral port); each input is sent over a fresh TCP connection as raw bytes (any number of
// pipelined requests), the write side is shut, and the answer is read until the server closes. The server
// must answer or close every connection without crashing, leaking or hanging; the read is bounded, and a
// server that neither answers nor closes within it is reported as a hang.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "orchestrator/status_server.hpp"

namespace {

constexpr int kReadTimeoutSeconds = 5;  // well above the server's own request/idle timeouts below

e2e::StatusServer& server() {
  static const std::unique_ptr<e2e::StatusServer> instance = [] {
    spdlog::set_level(spdlog::level::off);
    e2e::StatusServer::Limits limits;
    limits.request_timeout = std::chrono::milliseconds(1000);
    limits.idle_timeout = std::chrono::milliseconds(1000);
    limits.write_timeout = std::chrono::milliseconds(1000);
    limits.max_requests_per_connection = 4;  // the Connection: close path is reached too
    limits.snapshot_max_age = std::chrono::milliseconds(0);
    const nlohmann::json snapshot = nlohmann::json::parse(R"({
      "experiment": "fuzz", "started": "2024-05-01T12:00:00.000Z",
      "jobs": {"pending": 1, "running": 1, "done": 0, "failed": 0, "preempted": 0, "interrupted": 0},
      "running": [{"job": 1, "fold": 0, "sparsity": 0.5, "seed": 0, "group": 0, "epoch": 1, "epochs": 2,
                   "progress": 0.5, "eta_seconds": null, "last_heartbeat": "2024-05-01T12:34:56.789Z"}],
      "eta_seconds": 10.0})");
    auto made =
        std::make_unique<e2e::StatusServer>([snapshot] { return snapshot; }, e2e::PrometheusTextFn{}, limits);
    made->start();
    return made;
  }();
  return *instance;
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_status_http: %s (errno %d)\n", what, errno);
  std::abort();
}

int connect_to(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    // libFuzzer's timeout alarm (SIGALRM) can interrupt connect(); the connection then completes on its own.
    if (errno != EINTR) fail("connect");
    pollfd writable{fd, POLLOUT, 0};
    while (::poll(&writable, 1, kReadTimeoutSeconds * 1000) < 0)
      if (errno != EINTR) fail("poll");
    int error = 0;
    socklen_t length = sizeof(error);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0)
      fail("connect (completed)");
  }
  const timeval timeout{kReadTimeoutSeconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  // Close with a reset: a million connections must not leave a million sockets in TIME_WAIT.
  const linger reset{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  return fd;
}

// Sends what it can: the server may answer and close before it has read everything (400, 413, 431).
void send_all(int fd, const uint8_t* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void read_until_closed(int fd) {
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), 0);
    if (n > 0) continue;
    if (n == 0 || errno == ECONNRESET) return;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      fail("the server neither answered nor closed the connection");
    fail("recv");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const int fd = connect_to(server().port());
  send_all(fd, data, size);
  ::shutdown(fd, SHUT_WR);
  read_until_closed(fd);
  ::close(fd);
  return 0;
}
