// lmt::data: the isolated first read of HDF5 files without metadata checksums (hdf5_guard.h).
#include "hdf5_guard.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "hdf5_handle.h"

namespace lmt::data::detail {
namespace {
bool g_in_child = false;

using FileKey = std::tuple<dev_t, ino_t, off_t, int64_t, int64_t>;

bool file_key(const std::string& path, FileKey& key) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  key = FileKey(st.st_dev, st.st_ino, st.st_size, int64_t(st.st_mtim.tv_sec),
                int64_t(st.st_mtim.tv_nsec));
  return true;
}

// Files checked in this process: "" passed, else the DataError message. Guarded by the HDF5 lock.
std::map<FileKey, std::string>& checked_files() {
  static std::map<FileKey, std::string> results;
  return results;
}

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += size_t(n);
  }
}

[[noreturn]] void child_main(int fd, const std::function<void()>& read) {
  g_in_child = true;
  const int null_fd = ::open("/dev/null", O_WRONLY);
  if (null_fd >= 0) {
    ::dup2(null_fd, 1);
    ::dup2(null_fd, 2);
  }
  const struct rlimit no_core { 0, 0 };
  ::setrlimit(RLIMIT_CORE, &no_core);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::signal(sig, SIG_DFL);
  std::string reply = "E";
  try {
    read();
    reply = "O";
  } catch (const DataError& e) {
    reply = std::string("D") + e.what();
  } catch (const std::exception& e) {
    reply = std::string("E") + e.what();
  } catch (...) {
  }
  write_all(fd, reply);
  ::_exit(0);  // no atexit handlers: HDF5's own would run on the child's copy of its state
}

void check_in_child(const std::string& path, const std::function<void()>& read, int timeout_s) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) fail(path, "cannot create a pipe to check the file");
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    fail(path, "cannot fork to check the file");
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_main(fds[1], read);
  }
  ::close(fds[1]);

  std::string reply;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now())
                          .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd p {
      fds[0], POLLIN, 0
    };
    const int rc = ::poll(&p, 1, int(left));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) continue;  // re-evaluates the deadline
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EOF: the child exited (or crashed)
    reply.append(buf, size_t(n));
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  pid_t waited;
  do {
    waited = ::waitpid(pid, &status, 0);
  } while (waited < 0 && errno == EINTR);
  // waited < 0 (ECHILD: SIGCHLD ignored by the application): the reply alone decides.

  const std::string where = " (checked in a separate process)";
  if (timed_out)
    fail(path, "corrupt file: reading its HDF5 metadata did not finish within " +
                   std::to_string(timeout_s) + " s" + where);
  if (waited == pid && WIFSIGNALED(status))
    fail(path, "corrupt file: the HDF5 library crashed reading it (signal " +
                   std::to_string(WTERMSIG(status)) + ")" + where);
  if (!reply.empty() && reply[0] == 'O') return;
  if (!reply.empty() && reply[0] == 'D') throw DataError(reply.substr(1));
  fail(path, "corrupt file: reading it failed" +
                 (reply.size() > 1 ? ": " + reply.substr(1) : std::string()) + where);
}

}  // namespace

bool in_isolated_check() { return g_in_child; }

int superblock_version(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  int version = -1;
  for (off_t at = 0; version < 0; at = at == 0 ? 512 : at * 2) {
    unsigned char buf[9];
    if (::pread(fd, buf, sizeof buf, at) != ssize_t(sizeof buf)) break;
    if (std::memcmp(buf, signature, 8) == 0) version = buf[8];
  }
  ::close(fd);
  return version;
}

bool has_variable_length_strings(hid_t file) {
  bool found = false;
  const auto visit = [](hid_t location, const char* name, const H5A_info_t*, void* data) -> herr_t {
    const hid_t attr = H5Aopen(location, name, H5P_DEFAULT);
    if (attr < 0) return -1;
    const hid_t type = H5Aget_type(attr);
    if (type >= 0) {
      if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0)
        *static_cast<bool*>(data) = true;
      H5Tclose(type);
    }
    H5Aclose(attr);
    return type < 0 ? -1 : 0;
  };
  hsize_t index = 0;
  // An iteration failure (unreadable attribute metadata) counts as "check it in the child".
  if (H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_NATIVE, &index, visit, &found) < 0) return true;
  return found;
}

void run_isolated_check(const std::string& path, int timeout_s, const std::function<void()>& read) {
  if (g_in_child) {
    read();
    return;
  }
  FileKey key;
  const bool have_key = file_key(path, key);
  if (have_key) {
    const auto it = checked_files().find(key);
    if (it != checked_files().end()) {
      if (it->second.empty()) return;
      throw DataError(it->second);
    }
  }
  try {
    check_in_child(path, read, timeout_s);
  } catch (const DataError& e) {
    if (have_key) checked_files()[key] = e.what();
    throw;
  }
  if (have_key) checked_files()[key] = "";
}

}  // namespace lmt::data::detail
