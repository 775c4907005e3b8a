// JSON line building (numbers with round-trip precision, escaped strings) and the metrics file.
#include <lmt/io/json_lines.h>

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include <lmt/io/atomic_file.h>

namespace lmt::io {

std::string json_escape(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

static std::string number(double value) {
  if (!std::isfinite(value)) return "null";  // JSON has no NaN/Inf
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", value);
  return buf;
}

void JsonLine::key(const std::string& k) {
  if (!body_.empty()) body_ += ",";
  body_ += json_escape(k) + ":";
}

JsonLine& JsonLine::add(const std::string& k, double value) {
  key(k);
  body_ += number(value);
  return *this;
}
JsonLine& JsonLine::add(const std::string& k, int64_t value) {
  key(k);
  body_ += std::to_string(value);
  return *this;
}
JsonLine& JsonLine::add(const std::string& k, const std::string& value) {
  key(k);
  body_ += json_escape(value);
  return *this;
}
JsonLine& JsonLine::add(const std::string& k, bool value) {
  key(k);
  body_ += value ? "true" : "false";
  return *this;
}
JsonLine& JsonLine::add(const std::string& k, const std::vector<double>& values) {
  key(k);
  body_ += "[";
  for (size_t i = 0; i < values.size(); ++i) body_ += (i ? "," : "") + number(values[i]);
  body_ += "]";
  return *this;
}
JsonLine& JsonLine::add_raw(const std::string& k, const std::string& json) {
  key(k);
  body_ += json;
  return *this;
}

MetricsWriter::MetricsWriter(const std::string& path, bool truncate) : path_(path), open_(true) {
  if (truncate) write_file_atomic(path, "");
}

void MetricsWriter::write(const JsonLine& line) {
  append_to_file(path_, line.str() + "\n");  // a whole line or none; IoError names the file
}

}  // namespace lmt::io
