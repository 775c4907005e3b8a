// lmt::io: the one JSON reader of the tree: safetensors headers (train/init_from.cpp) and the
// JSON-lines files lmt writes (metrics.jsonl, read back by `lmt plot`). Objects keep their keys
// in file order.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace lmt::io {

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> array;
  std::vector<std::pair<std::string, Json>> object;
  // The value under `key` of an object (the first, if repeated); null when absent or not an
  // object.
  const Json* find(const std::string& key) const;
  // The number under `key`, or nullptr when absent or not a number.
  const double* number_at(const std::string& key) const;
};

// Parses one JSON text (RFC 8259; \u escapes outside the BMP are encoded one unit at a time).
// Throws IoError "malformed JSON (WHAT at byte N)".
Json parse_json(const std::string& text);

}  // namespace lmt::io
