// Stop requests: SIGUSR1, SIGTERM and a first SIGINT set an async-signal-safe flag that the loop
// polls; a second SIGINT ends the process at once, as SIGINT does by default.
#include <lmt/train/stop.h>

#include <unistd.h>

#include <csignal>

namespace lmt::train {
namespace {
volatile std::sig_atomic_t g_stop_signal = 0;
volatile std::sig_atomic_t g_interrupted = 0;
volatile std::sig_atomic_t g_stderr_is_tty = 0;
void on_stop_signal(int) { g_stop_signal = 1; }
void on_interrupt(int) {
  if (g_interrupted) {  // the second one: die of SIGINT, so the shell sees 130 and stops too
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_interrupted = 1;
  g_stop_signal = 1;
  static const char kText[] =
      "\nlmt: interrupted: stopping after this step with a checkpoint (exit 3); interrupt again "
      "to quit at once\n";
  // write(2) is async-signal-safe; skip the leading newline when it would be an empty line.
  const char* text = g_stderr_is_tty ? kText : kText + 1;
  ssize_t ignored = ::write(STDERR_FILENO, text, sizeof kText - 1 - (g_stderr_is_tty ? 0 : 1));
  (void)ignored;
}
}  // namespace

void install_stop_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // SIGINT left ignored by the parent (a `cmd &` of a script) stays ignored, as shells expect.
  struct sigaction previous {};
  sigaction(SIGINT, nullptr, &previous);
  if (previous.sa_handler == SIG_IGN) return;
  g_stderr_is_tty = ::isatty(STDERR_FILENO) == 1;
  action.sa_handler = on_interrupt;
  sigaction(SIGINT, &action, nullptr);
}
bool stop_signal_received() { return g_stop_signal != 0; }
void request_stop() { g_stop_signal = 1; }

}  // namespace lmt::train
