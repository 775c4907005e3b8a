// lmt::io: a step timeline in Chrome's JSON trace-event format (chrome://tracing, Perfetto,
// Horovod's timeline): complete events ("ph":"X") with name, category, start and duration in
// microseconds, process = MPI rank, thread = a small id per recording thread (named with
// "thread_name" metadata events). Off by default; while off a TraceScope costs one relaxed atomic
// load and records nothing.
//
//   io::trace::start(rank);                 // begin recording (rank = the trace's pid)
//   { io::TraceScope s("forward", "step"); ... }
//   { io::TraceScope s("allreduce", "comm"); s.arg("bytes", n); ... }
//   io::trace::stop();
//   std::string events = io::trace::take_events();   // ",\n"-joined JSON objects
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace lmt::io {
namespace trace {

namespace detail {
extern std::atomic<bool> recording;
}

inline bool enabled() { return detail::recording.load(std::memory_order_relaxed); }
// Microseconds on the trace's clock (steady_clock since start()'s origin).
int64_t now_us();
// Starts recording events for process `pid` (the rank); the clock's origin is this call, so
// ranks that start after a barrier share an origin to within the barrier's skew.
void start(int pid);
void stop();
// Names the calling thread in the trace (e.g. "train", "allreduce"); recorded at its first event.
void set_thread_name(const std::string& name);
// Adds one complete event. `args_json` is empty or the body of a JSON object ("\"bytes\":4096").
void complete(const char* name, const char* category, int64_t start_us, int64_t duration_us,
              const std::string& args_json = "");
// Adds an interval that may overlap others of its kind (an all-reduce from its launch to its
// result): a pair of async events ("ph":"b"/"e", nestable) with this id, on the calling thread.
void async_span(const char* name, const char* category, uint64_t id, int64_t start_us,
                int64_t end_us, const std::string& args_json = "");
// The events recorded so far (and the metadata naming the process and threads), as JSON objects
// joined by ",\n"; clears them.
std::string take_events();

}  // namespace trace

// Records [construction, destruction) as one complete event when tracing is on.
class TraceScope {
 public:
  TraceScope(const char* name, const char* category)
      : name_(name), category_(category), on_(trace::enabled()) {
    if (on_) start_ = trace::now_us();
  }
  ~TraceScope() {
    if (on_) trace::complete(name_, category_, start_, trace::now_us() - start_, args_);
  }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;
  // Adds an integer argument ("bytes", 4096) shown with the event.
  void arg(const char* key, int64_t value) {
    if (on_) args_ += (args_.empty() ? "\"" : ",\"") + std::string(key) + "\":" + std::to_string(value);
  }

 private:
  const char* name_;
  const char* category_;
  bool on_;
  int64_t start_ = 0;
  std::string args_;
};

}  // namespace lmt::io
