// lmt::io: machine-readable output. JsonLine builds one JSON object; MetricsWriter appends lines
// to a JSON-lines file (RUN_DIR/metrics.jsonl), each fsync'ed: a crash keeps every finished line.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace lmt::io {

class JsonLine {
 public:
  JsonLine& add(const std::string& key, double value);
  JsonLine& add(const std::string& key, int64_t value);
  JsonLine& add(const std::string& key, int value) { return add(key, int64_t(value)); }
  JsonLine& add(const std::string& key, const std::string& value);
  JsonLine& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonLine& add(const std::string& key, bool value);
  JsonLine& add(const std::string& key, const std::vector<double>& values);
  // A value that is already JSON (an object or array built elsewhere).
  JsonLine& add_raw(const std::string& key, const std::string& json);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  void key(const std::string& k);
  std::string body_;
};

std::string json_escape(const std::string& text);

class MetricsWriter {
 public:
  MetricsWriter() = default;
  // Appends to `path` (a resumed run continues the same file); `truncate` empties it first.
  explicit MetricsWriter(const std::string& path, bool truncate = false);
  // One line, appended and fsync'ed with append_to_file: whole or not at all (a full disk
  // throws IoError naming the file and leaves no half line).
  void write(const JsonLine& line);
  bool is_open() const { return open_; }

 private:
  std::string path_;
  bool open_ = false;
};

}  // namespace lmt::io
