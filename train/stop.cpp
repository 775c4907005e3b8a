// Stop requests: SIGUSR1 and SIGTERM set an async-signal-safe flag that the loop polls.
#include <lmt/train/stop.h>

#include <csignal>

namespace lmt::train {
namespace {
volatile std::sig_atomic_t g_stop_signal = 0;
void on_stop_signal(int) { g_stop_signal = 1; }
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}
bool stop_signal_received() { return g_stop_signal != 0; }
void request_stop() { g_stop_signal = 1; }

}  // namespace lmt::train
