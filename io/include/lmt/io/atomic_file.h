// lmt::io: how lmt writes a file, whole or not at all: one checked atomic write (temporary file,
// write, fsync, rename, fsync of the directory), a checked append, and whole-file reads.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace lmt::io {

// A failed read or write; the message names the file and the system's reason, on one line.
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes the concatenation of `parts` to `path` so that a reader finds either the previous file
// or the whole new one: PATH.tmp.PID in the same directory, every byte written (EINTR retried),
// fsync, close, rename onto `path`, fsync of the directory, each return code checked. On any
// failure the temporary file is removed, `path` is left as it was, and IoError
// "PATH: cannot write: No space left on device" (or the failing call's reason) is thrown.
void write_file_atomic(const std::string& path, const std::vector<std::string_view>& parts);
void write_file_atomic(const std::string& path, std::string_view bytes);

// Creates or truncates `path` and writes `bytes` with fsync, every call checked; removes the file
// and throws IoError on failure. For files inside a temporary directory that is renamed as a
// whole afterwards (checkpoints).
void write_file_synced(const std::string& path, std::string_view bytes);

// Appends `bytes` to `path` (created if missing) and fsyncs it. A failed append is cut off again
// (ftruncate to the old size), so the file never ends in half a line. Throws IoError.
void append_to_file(const std::string& path, std::string_view bytes);

// fsync of a directory, after a rename into it. Throws IoError.
void fsync_directory(const std::string& dir);

// The whole file. Throws IoError naming `path` when it cannot be opened or read.
std::string read_file(const std::string& path);

}  // namespace lmt::io
