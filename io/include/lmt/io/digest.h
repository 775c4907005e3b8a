// lmt::io: FNV-1a, 64 bit, the digest of checkpoint files, model weights and the ranks' module
// hash: detects truncation and bit rot (not an adversary), cheap enough to run on every load.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lmt::io {

constexpr uint64_t kFnv1a64Offset = 14695981039346656037ull;

// Continues `hash` over `size` bytes; start with kFnv1a64Offset.
uint64_t fnv1a64(const void* data, size_t size, uint64_t hash = kFnv1a64Offset);
inline uint64_t fnv1a64(std::string_view bytes, uint64_t hash = kFnv1a64Offset) {
  return fnv1a64(bytes.data(), bytes.size(), hash);
}
// The digest of a file's bytes and its size. Throws IoError naming `path`.
uint64_t file_fnv1a64(const std::string& path, int64_t* size);

// 16 lower-case hex digits.
std::string hex64(uint64_t value);

}  // namespace lmt::io
