// The trace-event recorder (lmt/io/trace.h): events appended under a mutex while recording.
#include <lmt/io/json_lines.h>
#include <lmt/io/trace.h>

#include <mutex>
#include <vector>

namespace lmt::io::trace {

namespace detail {
std::atomic<bool> recording{false};
}

namespace {

using Clock = std::chrono::steady_clock;

struct State {
  std::mutex mutex;
  Clock::time_point origin = Clock::now();
  int pid = 0;
  int next_tid = 0;
  std::vector<std::string> events;
  bool process_named = false;
  int generation = 0;  // take_events() starts a new one: threads name themselves again
};

State& state() {
  static State s;
  return s;
}

struct ThreadInfo {
  int tid = -1;
  std::string name;
  int named_generation = -1;
};
thread_local ThreadInfo this_thread;

// Called with the mutex held: the thread's id, and its name's metadata event once.
int thread_id(State& s) {
  if (this_thread.tid < 0) this_thread.tid = s.next_tid++;
  if (this_thread.named_generation != s.generation) {
    this_thread.named_generation = s.generation;
    const std::string name =
        this_thread.name.empty() ? "thread " + std::to_string(this_thread.tid) : this_thread.name;
    s.events.push_back("{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" + std::to_string(s.pid) +
                       ",\"tid\":" + std::to_string(this_thread.tid) +
                       ",\"args\":{\"name\":" + json_escape(name) + "}}");
  }
  return this_thread.tid;
}

}  // namespace

int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - state().origin)
      .count();
}

void start(int pid) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.origin = Clock::now();
  s.pid = pid;
  if (!s.process_named) {
    s.process_named = true;
    s.events.push_back("{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(pid) +
                       ",\"tid\":0,\"args\":{\"name\":\"rank " + std::to_string(pid) + "\"}}");
    s.events.push_back("{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":" +
                       std::to_string(pid) + ",\"tid\":0,\"args\":{\"sort_index\":" +
                       std::to_string(pid) + "}}");
  }
  detail::recording.store(true, std::memory_order_relaxed);
}

void stop() { detail::recording.store(false, std::memory_order_relaxed); }

void set_thread_name(const std::string& name) {
  this_thread.name = name;
  this_thread.named_generation = -1;
}

void complete(const char* name, const char* category, int64_t start_us, int64_t duration_us,
              const std::string& args_json) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!enabled()) return;  // a scope that outlived stop()
  const int tid = thread_id(s);
  std::string e = "{\"name\":" + json_escape(name) + ",\"cat\":" + json_escape(category) +
                  ",\"ph\":\"X\",\"ts\":" + std::to_string(start_us) +
                  ",\"dur\":" + std::to_string(duration_us) + ",\"pid\":" + std::to_string(s.pid) +
                  ",\"tid\":" + std::to_string(tid);
  if (!args_json.empty()) e += ",\"args\":{" + args_json + "}";
  s.events.push_back(e + "}");
}

void async_span(const char* name, const char* category, uint64_t id, int64_t start_us,
                int64_t end_us, const std::string& args_json) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!enabled()) return;
  const int tid = thread_id(s);
  const std::string common = "{\"name\":" + json_escape(name) + ",\"cat\":" +
                             json_escape(category) + ",\"id\":" + std::to_string(id) +
                             ",\"pid\":" + std::to_string(s.pid) + ",\"tid\":" +
                             std::to_string(tid);
  s.events.push_back(common + ",\"ph\":\"b\",\"ts\":" + std::to_string(start_us) +
                     (args_json.empty() ? "" : ",\"args\":{" + args_json + "}") + "}");
  s.events.push_back(common + ",\"ph\":\"e\",\"ts\":" + std::to_string(end_us) + "}");
}

std::string take_events() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  std::string out;
  for (const auto& e : s.events) out += (out.empty() ? "" : ",\n") + e;
  s.events.clear();
  s.process_named = false;
  ++s.generation;
  return out;
}

}  // namespace lmt::io::trace
