// lmt::train: stop requests. A signal or a call sets a flag; the training loop polls it at step
// boundaries, the ranks agree on it, and the run checkpoints and stops.
#pragma once

namespace lmt::train {

// Exit code of `lmt train` when it stopped early on request (SIGUSR1/SIGTERM/SIGINT or
// --stop-after-steps) after writing a checkpoint: "not finished, requeue me with --resume auto".
constexpr int kExitCheckpointedStop = 3;

// install_stop_signal_handlers() makes SIGUSR1, SIGTERM and a first SIGINT (Ctrl-C) set the flag
// (async-signal-safe); a second SIGINT kills the process (exit status 130). A SIGINT ignored on
// entry (a script's `lmt train &`) stays ignored.
void install_stop_signal_handlers();
bool stop_signal_received();
void request_stop();  // as if a signal arrived (tests, embedding programs)

}  // namespace lmt::train
