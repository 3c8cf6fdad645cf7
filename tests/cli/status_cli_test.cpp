// e2e status as a user runs it: a live endpoint (a canned HTTP server here), exit codes for unreachable and
// malformed URLs, unusable stores and bad usage.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "run_e2e.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

namespace {

using ::testing::HasSubstr;

using Result = e2e_cli::CliResult;
using e2e_cli::run_e2e;

// Answers every connection on 127.0.0.1 with one canned HTTP response.
class CannedServer {
 public:
  explicit CannedServer(std::string response) : response_(std::move(response)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::listen(fd_, 16);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        const int client = ::accept(fd_, nullptr, nullptr);
        if (client < 0 || stop_) {
          if (client >= 0) ::close(client);
          return;
        }
        std::string request;
        char chunk[1024];
        while (request.find("\r\n\r\n") == std::string::npos) {
          const ssize_t n = ::recv(client, chunk, sizeof chunk, 0);
          if (n <= 0) break;
          request.append(chunk, static_cast<std::size_t>(n));
        }
        ::send(client, response_.data(), response_.size(), MSG_NOSIGNAL);
        ::close(client);
      }
    });
  }
  ~CannedServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string response_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::string http_response(int code, const std::string& reason, const std::string& type,
                          const std::string& body) {
  return "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

const char* kSnapshot = R"({
  "experiment": "demo", "started": "2024-05-01T12:00:00.000Z",
  "jobs": {"pending": 7, "running": 1, "done": 2, "failed": 0, "preempted": 0, "interrupted": 0},
  "running": [{"job": 12, "fold": 3, "sparsity": 0.9, "seed": 0, "group": 1, "epoch": 4, "epochs": 10,
               "progress": 0.4, "eta_seconds": 300, "last_heartbeat": "2024-05-01T12:34:00Z"}],
  "eta_seconds": 1800
})";

TEST(StatusCli, PrintsTheLiveSnapshotAsTextOrJson) {
  CannedServer server(http_response(200, "OK", "application/json", kSnapshot));
  const Result text = run_e2e("status --url " + server.url());
  EXPECT_EQ(text.exit_code, 0) << text.output;
  EXPECT_THAT(text.output, HasSubstr("experiment demo"));
  EXPECT_THAT(text.output, HasSubstr("jobs: 7 pending, 1 running, 2 done"));
  EXPECT_THAT(text.output, HasSubstr("ETA 30m00s"));
  EXPECT_THAT(text.output, HasSubstr("job    12  fold 3  s=0.9"));
  EXPECT_THAT(text.output, HasSubstr("epoch 4/10  ETA 5m00s"));

  const Result json = run_e2e("status --format json --url " + server.url() + "/status", false);
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_EQ(nlohmann::json::parse(json.output), nlohmann::json::parse(kSnapshot));
}

TEST(StatusCli, UnreachableOrFailingEndpointsExit1) {
  int port = 0;
  {
    CannedServer closed("");
    port = std::stoi(closed.url().substr(closed.url().rfind(':') + 1));
  }
  Result r = run_e2e("status --timeout 2 --url http://127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("cannot connect to http://127.0.0.1:" + std::to_string(port)));

  CannedServer failing(http_response(500, "Internal Server Error", "application/json", R"({"error":"x"})"));
  r = run_e2e("status --url " + failing.url());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("HTTP 500"));

  CannedServer not_json(http_response(200, "OK", "text/html", "<html>hello</html>"));
  r = run_e2e("status --url " + not_json.url());
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("not a status JSON object"));
}

TEST(StatusCli, BadUsageMalformedUrlsAndUnusableStoresExit2) {
  for (const std::string& args :
       {std::string("status"), std::string("status --url http://127.0.0.1:1 --db x.db"),
        std::string("status --url 'http://a b'"), std::string("status --url https://127.0.0.1:8787"),
        std::string("status --url http://127.0.0.1:70000"), std::string("status --url ftp://x"),
        std::string("status --url http://127.0.0.1:1 --format xml"),
        std::string("status --url http://127.0.0.1:1 --timeout -1"),
        std::string("status --db /nonexistent/e2e.db")}) {
    const Result r = run_e2e(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  }
  const auto junk = std::filesystem::temp_directory_path() / "e2e_status_cli_junk.db";
  std::ofstream(junk) << "not a database";
  const Result r = run_e2e("status --db " + junk.string());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  std::filesystem::remove(junk);

  const Result help = run_e2e("status --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("--url"));
  EXPECT_THAT(help.output, HasSubstr("--db"));
}

}  // namespace
