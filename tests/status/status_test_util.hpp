// Helpers of the status tests: a raw blocking TCP client (to send what a real HTTP client never would) and a
// deadline-bounded wait.
#pragma once

#include <sys/socket.h>
#include <sys/time.h>

#include <utility>
// clang-format off
#include <boost/asio.hpp>
// clang-format on

#include <chrono>
#include <cstdint>
#include <string>

namespace e2e::testing {

class RawClient {
 public:
  // Connects to 127.0.0.1:port; reads give up after recv_timeout.
  explicit RawClient(uint16_t port, std::chrono::milliseconds recv_timeout = std::chrono::seconds(10)) {
    socket_.connect({boost::asio::ip::make_address("127.0.0.1"), port});
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(recv_timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((recv_timeout.count() % 1000) * 1000);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  // False once the server has closed the connection (or reset it).
  bool send(const std::string& bytes) {
    boost::system::error_code ec;
    boost::asio::write(socket_, boost::asio::buffer(bytes), ec);
    return !ec;
  }

  // Reads until the server closes the connection, an error, or the receive timeout. `closed` tells which.
  std::string read_all(bool* closed = nullptr) {
    std::string out;
    char chunk[4096];
    for (;;) {
      const ssize_t n = ::recv(socket_.native_handle(), chunk, sizeof chunk, 0);
      if (n > 0) {
        out.append(chunk, static_cast<std::size_t>(n));
        continue;
      }
      if (closed) *closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
      return out;
    }
  }

  // Reads one response with a Content-Length body (keep-alive tests).
  std::string read_response() {
    std::string out;
    char c;
    while (out.find("\r\n\r\n") == std::string::npos) {
      if (::recv(socket_.native_handle(), &c, 1, 0) != 1) return out;
      out += c;
    }
    std::size_t length = 0;
    const auto at = out.find("Content-Length: ");
    if (at != std::string::npos) length = std::stoul(out.substr(at + 16));
    std::string body(length, '\0');
    std::size_t got = 0;
    while (got < length) {
      const ssize_t n = ::recv(socket_.native_handle(), body.data() + got, length - got, 0);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    return out + body.substr(0, got);
  }

  void close() {
    boost::system::error_code ec;
    socket_.close(ec);
  }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_{ioc_};
};

inline int status_code(const std::string& response) {
  if (response.rfind("HTTP/1.", 0) != 0 || response.size() < 12) return 0;
  return std::stoi(response.substr(9, 3));
}

inline std::string body_of(const std::string& response) {
  const auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace e2e::testing
