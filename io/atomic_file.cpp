// The checked file writes: every system call's return code looked at, the temporary file removed
// on any failure (a full disk ends in one named error, never in a half-written file).
#include <lmt/io/atomic_file.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lmt::io {
namespace {

[[noreturn]] void fail(const std::string& path, const char* action, int error) {
  throw IoError(path + ": cannot " + action + ": " + std::strerror(error));
}

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// Writes every byte or returns the errno of the failing write.
int write_all(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;
    p += n;
    left -= size_t(n);
  }
  return 0;
}

// Opens (O_TRUNC) and writes `parts` to `path`, fsync and close included; on failure removes the
// file and throws IoError naming `report` (the file the caller asked for).
void write_new_file(const std::string& path, const std::vector<std::string_view>& parts,
                    const std::string& report) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(report, "write", errno);
  int error = 0;
  for (const auto& part : parts)
    if ((error = write_all(fd, part)) != 0) break;
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (::close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    ::unlink(path.c_str());
    fail(report, "write", error);
  }
}

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  write_new_file(tmp, parts, path);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int error = errno;
    ::unlink(tmp.c_str());
    fail(path, "write (rename)", error);
  }
  fsync_directory(directory_of(path));
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  write_file_atomic(path, std::vector<std::string_view>{bytes});
}

void write_file_synced(const std::string& path, std::string_view bytes) {
  write_new_file(path, {bytes}, path);
}

void append_to_file(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail(path, "append", errno);
  struct stat before {};
  const bool sized = ::fstat(fd, &before) == 0;
  int error = sized ? 0 : errno;
  if (error == 0) error = write_all(fd, bytes);
  if (error == 0 && ::fsync(fd) != 0) error = errno;
  if (error != 0) {
    // Best effort: back to the old size (a line is whole or absent), only if it is known (never
    // a truncation to 0 of a file whose size fstat could not tell); the error reported is the
    // write's.
    if (sized && ::ftruncate(fd, before.st_size) == 0) ::fsync(fd);
    ::close(fd);
    fail(path, "append", error);
  }
  if (::close(fd) != 0) fail(path, "append", errno);
}

void fsync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(dir, "open directory for fsync", errno);
  const int error = ::fsync(fd) != 0 ? errno : 0;
  ::close(fd);
  if (error != 0) fail(dir, "fsync directory", error);
}

std::string read_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "read", errno);
  std::string bytes;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && st.st_size > 0) bytes.reserve(size_t(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      fail(path, "read", error);
    }
    if (n == 0) break;
    bytes.append(buffer, size_t(n));
  }
  ::close(fd);
  return bytes;
}

}  // namespace lmt::io
