#include "orchestrator/signals.hpp"

#include <csignal>

namespace e2e {

namespace {

std::atomic<bool> stop_requested{false};
std::atomic<int> stop_signal{0};

extern "C" void on_stop_signal(int signal) {
  stop_signal.store(signal);
  stop_requested.store(true);
}

}  // namespace

const std::atomic<bool>* install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return &stop_requested;
}

int stop_signal_received() {
  return stop_signal.load();
}

}  // namespace e2e
