// FNV-1a, 64 bit (Fowler, Noll, Vo): xor a byte, multiply by the FNV prime.
#include <lmt/io/digest.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <lmt/io/atomic_file.h>

namespace lmt::io {

uint64_t fnv1a64(const void* data, size_t size, uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

uint64_t file_fnv1a64(const std::string& path, int64_t* size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot read: " + std::strerror(errno));
  std::vector<char> buffer(1 << 20);
  uint64_t hash = kFnv1a64Offset;
  int64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      throw IoError(path + ": cannot read: " + std::strerror(error));
    }
    if (n == 0) break;
    hash = fnv1a64(buffer.data(), size_t(n), hash);
    total += n;
  }
  ::close(fd);
  if (size) *size = total;
  return hash;
}

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", (unsigned long long)value);
  return text;
}

}  // namespace lmt::io
