// SIGUSR1 (Slurm's warning before the time limit) and SIGTERM (preemption, time limit) become a stop
// request: training checkpoints at the next step and the command exits with code 3 (requeue me).
#pragma once

#include <atomic>

namespace e2e {

constexpr int kExitPreempted = 3;

// Installs the handlers (idempotent) and returns the flag they set.
const std::atomic<bool>* install_stop_signal_handlers();
int stop_signal_received();  // the signal number, 0 if none

}  // namespace e2e
