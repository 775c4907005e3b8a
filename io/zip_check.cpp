// The zip check before LibTorch parses an archive: the end record (zip64 too), each central
// directory entry against its local header, and each entry's CRC-32 (zlib) over its data. Every
// offset and length is checked against the buffer before it is used.
#include <lmt/io/zip_check.h>

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include <lmt/io/atomic_file.h>

namespace lmt::io {
namespace {

constexpr uint32_t kLocalHeader = 0x04034b50, kCentralHeader = 0x02014b50;
constexpr uint32_t kEndRecord = 0x06054b50, kZip64EndRecord = 0x06064b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr size_t kEndSize = 22, kLocatorSize = 20, kZip64EndSize = 56;
constexpr size_t kCentralSize = 46, kLocalSize = 30;

struct Reader {
  const unsigned char* data;
  size_t size;
  const std::string& name;

  [[noreturn]] void damaged(const std::string& what) const {
    throw IoError(name + ": damaged archive (" + what + ")");
  }
  // Bytes [at, at + n) exist.
  void need(uint64_t at, uint64_t n, const char* what) const {
    if (at > size || n > size - at) damaged(std::string(what) + " lies beyond the end of the file");
  }
  uint64_t le(uint64_t at, int bytes) const {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | data[at + uint64_t(i)];
    return v;
  }
  uint32_t u16(uint64_t at) const { return uint32_t(le(at, 2)); }
  uint32_t u32(uint64_t at) const { return uint32_t(le(at, 4)); }
  uint64_t u64(uint64_t at) const { return le(at, 8); }
};

struct Entry {
  std::string name;
  uint32_t flags = 0, method = 0, crc = 0;
  uint64_t compressed = 0, uncompressed = 0, local_offset = 0;
  uint32_t disk = 0, external = 0;
};

uint32_t crc_of_stored(const unsigned char* p, uint64_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (n > 0) {  // crc32 takes a uInt length
    const uInt chunk = uInt(std::min<uint64_t>(n, 1u << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return uint32_t(crc);
}

// Inflates a raw deflate stream in fixed-size pieces (a damaged size field cannot make it
// allocate); false unless it ends exactly after `in_size` bytes with `out_size` bytes out.
bool crc_of_deflated(const unsigned char* in, uint64_t in_size, uint64_t out_size, uint32_t* crc) {
  if (in_size > UINT32_MAX) return false;
  z_stream z{};
  if (inflateInit2(&z, -MAX_WBITS) != Z_OK) return false;
  z.next_in = const_cast<Bytef*>(in);
  z.avail_in = uInt(in_size);
  std::vector<unsigned char> out(1 << 16);
  uLong sum = crc32(0L, Z_NULL, 0);
  uint64_t produced = 0;
  int rc = Z_OK;
  for (;;) {  // ends: Z_STREAM_END, an error, or Z_BUF_ERROR once the input is used up
    z.next_out = out.data();
    z.avail_out = uInt(out.size());
    rc = inflate(&z, Z_NO_FLUSH);
    const uint64_t got = out.size() - z.avail_out;
    produced += got;
    sum = crc32(sum, out.data(), uInt(got));
    if (rc != Z_OK || produced > out_size) break;
  }
  const bool whole = rc == Z_STREAM_END && z.avail_in == 0 && produced == out_size;
  inflateEnd(&z);
  *crc = uint32_t(sum);
  return whole;
}

}  // namespace

void verify_zip_archive(const char* bytes, size_t size, const std::string& name) {
  const Reader r{reinterpret_cast<const unsigned char*>(bytes), size, name};
  if (size < kEndSize) r.damaged("too short for a zip archive: " + std::to_string(size) + " bytes");

  // The end record: the last 22 + comment bytes (the comment must reach the end exactly).
  uint64_t end = UINT64_MAX;
  const uint64_t lowest = size > kEndSize + 65535 ? size - kEndSize - 65535 : 0;
  for (uint64_t at = size - kEndSize + 1; at-- > lowest;)
    if (r.u32(at) == kEndRecord && at + kEndSize + r.u16(at + 20) == size) {
      end = at;
      break;
    }
  if (end == UINT64_MAX) r.damaged("no end-of-central-directory record; truncated?");
  // One disk only (multi-disk fields are refused by LibTorch's reader after our check otherwise).
  if (r.u16(end + 4) != 0 || r.u16(end + 6) != 0 || r.u16(end + 8) != r.u16(end + 10))
    r.damaged("end record names more than one disk");
  uint64_t entries = r.u16(end + 10), cd_size = r.u32(end + 12), cd_offset = r.u32(end + 16);
  uint64_t cd_limit = end;  // the central directory ends before the end record(s)
  if (end >= kLocatorSize && r.u32(end - kLocatorSize) == kZip64Locator) {
    const uint64_t locator = end - kLocatorSize, record = r.u64(locator + 8);
    if (r.u32(locator + 4) != 0 || r.u32(locator + 16) != 1 || record > locator ||
        locator - record < kZip64EndSize || r.u32(record) != kZip64EndRecord)
      r.damaged("bad zip64 end-of-central-directory locator");
    if (r.u32(record + 16) != 0 || r.u32(record + 20) != 0 ||
        r.u64(record + 24) != r.u64(record + 32))
      r.damaged("zip64 end record names more than one disk");
    entries = r.u64(record + 32);
    cd_size = r.u64(record + 40);
    cd_offset = r.u64(record + 48);
    cd_limit = record;
  }
  if (cd_offset > cd_limit || cd_size != cd_limit - cd_offset)
    r.damaged("central directory offset/size do not match the end record");
  if (entries == 0) r.damaged("no entries");

  std::vector<Entry> list;
  uint64_t at = cd_offset;
  for (uint64_t i = 0; i < entries; ++i) {
    r.need(at, kCentralSize, "central directory entry");
    if (at + kCentralSize > cd_limit || r.u32(at) != kCentralHeader)
      r.damaged("central directory entry " + std::to_string(i) + " is malformed");
    Entry e;
    e.flags = r.u16(at + 8);
    e.method = r.u16(at + 10);
    e.crc = r.u32(at + 16);
    e.compressed = r.u32(at + 20);
    e.uncompressed = r.u32(at + 24);
    const uint64_t name_len = r.u16(at + 28), extra_len = r.u16(at + 30),
                   comment_len = r.u16(at + 32);
    e.local_offset = r.u32(at + 42);
    e.disk = r.u16(at + 34);
    e.external = r.u32(at + 38);
    const uint64_t next = at + kCentralSize + name_len + extra_len + comment_len;
    if (next > cd_limit) r.damaged("central directory entry " + std::to_string(i) + " overruns");
    e.name.assign(bytes + at + kCentralSize, name_len);
    // zip64 extended information: the 64-bit values of the fields saturated at 0xFFFFFFFF.
    for (uint64_t x = at + kCentralSize + name_len;
         x + 4 <= at + kCentralSize + name_len + extra_len;) {
      const uint32_t id = r.u16(x), len = r.u16(x + 2);
      if (x + 4 + len > at + kCentralSize + name_len + extra_len)
        r.damaged("entry '" + e.name + "' has a malformed extra field");
      if (id == 0x0001) {
        uint64_t f = x + 4;
        auto take = [&](uint64_t& field) {
          if (field != UINT32_MAX) return;
          if (f + 8 > x + 4 + len) r.damaged("entry '" + e.name + "' has a short zip64 field");
          field = r.u64(f);
          f += 8;
        };
        take(e.uncompressed);
        take(e.compressed);
        take(e.local_offset);
      }
      x += 4 + len;
    }
    list.push_back(std::move(e));
    at = next;
  }
  if (at != cd_limit) r.damaged("central directory size does not match its entries");

  for (const auto& e : list) {
    const std::string entry = "entry '" + e.name + "'";
    // Flags other than deflate options (bits 1-2), data descriptor (3) and UTF-8 names (11):
    // encryption and the like, which LibTorch's reader refuses or misreads.
    if (e.flags & ~0x080eu) r.damaged(entry + " has unsupported flags");
    if (e.disk != 0) r.damaged(entry + " lies on another disk");
    if (e.external & 0x10u) r.damaged(entry + " is marked as a directory");  // read as empty
    if (e.method != 0 && e.method != 8)
      r.damaged(entry + " uses compression method " + std::to_string(e.method));
    if (e.local_offset >= cd_offset) r.damaged(entry + " starts inside the central directory");
    r.need(e.local_offset, kLocalSize, "a local header");
    const uint64_t h = e.local_offset;
    if (r.u32(h) != kLocalHeader) r.damaged(entry + " has no local header at its offset");
    const uint64_t name_len = r.u16(h + 26), extra_len = r.u16(h + 28);
    const uint64_t data_at = h + kLocalSize + name_len + extra_len;
    if (data_at > cd_offset || e.compressed > cd_offset - data_at)
      r.damaged(entry + "'s data overruns the central directory");
    if (name_len != e.name.size() || std::memcmp(bytes + h + kLocalSize, e.name.data(), name_len))
      r.damaged(entry + ": the local header names another entry");
    if (r.u16(h + 8) != e.method) r.damaged(entry + ": local and central methods differ");
    if (!(e.flags & 8u) && r.u32(h + 14) != e.crc)
      r.damaged(entry + ": local and central CRC-32 differ");
    const auto* p = r.data + data_at;
    uint32_t crc = 0;
    if (e.method == 0) {
      if (e.compressed != e.uncompressed) r.damaged(entry + ": stored sizes differ");
      crc = crc_of_stored(p, e.compressed);
    } else if (!crc_of_deflated(p, e.compressed, e.uncompressed, &crc)) {
      r.damaged(entry + " does not inflate to its recorded size");
    }
    if (crc != e.crc) r.damaged(entry + " fails its CRC-32 check");
  }
}

}  // namespace lmt::io
