// A recursive-descent JSON reader (lmt/io/json.h).
#include <lmt/io/atomic_file.h>
#include <lmt/io/json.h>

#include <cstring>

namespace lmt::io {

const Json* Json::find(const std::string& key) const {
  for (const auto& [k, v] : object)
    if (k == key) return &v;
  return nullptr;
}

const double* Json::number_at(const std::string& key) const {
  const Json* v = find(key);
  return v && v->kind == kNumber ? &v->number : nullptr;
}

namespace {

class Parser {
 public:
  explicit Parser(const std::string& text) : text_(text) {}
  Json parse() {
    Json value = parse_value(0);
    skip_space();
    if (at_ != text_.size()) fail("trailing characters");
    return value;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw IoError("malformed JSON (" + what + " at byte " + std::to_string(at_) + ")");
  }
  void skip_space() {
    while (at_ < text_.size() && std::strchr(" \t\r\n", text_[at_]) && text_[at_]) ++at_;
  }
  bool eat(char c) {
    skip_space();
    if (at_ < text_.size() && text_[at_] == c) return ++at_, true;
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  void append_utf8(std::string& out, unsigned code) {
    if (code < 0x80) {
      out += char(code);
    } else if (code < 0x800) {
      out += char(0xc0 | (code >> 6));
      out += char(0x80 | (code & 0x3f));
    } else {
      out += char(0xe0 | (code >> 12));
      out += char(0x80 | ((code >> 6) & 0x3f));
      out += char(0x80 | (code & 0x3f));
    }
  }
  std::string parse_string() {
    expect('"');
    std::string out;
    while (at_ < text_.size() && text_[at_] != '"') {
      char c = text_[at_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) fail("unterminated escape");
      c = text_[at_++];
      const char* from = "ntrbf";
      const char* to = "\n\t\r\b\f";
      if (const char* p = std::strchr(from, c); p && c) {
        out += to[p - from];
      } else if (c == 'u') {
        if (at_ + 4 > text_.size()) fail("short \\u escape");
        unsigned code = 0;
        for (int i = 0; i < 4; ++i) {
          const char h = text_[at_++];
          const int digit = h >= '0' && h <= '9'   ? h - '0'
                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                   : -1;
          if (digit < 0) fail("bad \\u escape");
          code = code * 16 + unsigned(digit);
        }
        append_utf8(out, code);
      } else {
        out += c;  // \" \\ \/
      }
    }
    if (at_ >= text_.size()) fail("unterminated string");
    ++at_;
    return out;
  }
  Json parse_value(int depth) {
    if (depth > 256) fail("nesting deeper than 256");
    skip_space();
    if (at_ >= text_.size()) fail("unexpected end");
    Json v;
    const char c = text_[at_];
    if (c == '{') {
      v.kind = Json::kObject;
      ++at_;
      if (eat('}')) return v;
      do {
        skip_space();
        std::string key = parse_string();
        expect(':');
        v.object.emplace_back(std::move(key), parse_value(depth + 1));
      } while (eat(','));
      expect('}');
    } else if (c == '[') {
      v.kind = Json::kArray;
      ++at_;
      if (eat(']')) return v;
      do v.array.push_back(parse_value(depth + 1));
      while (eat(','));
      expect(']');
    } else if (c == '"') {
      v.kind = Json::kString;
      v.string = parse_string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = Json::kNumber;
      size_t used = 0;
      try {
        v.number = std::stod(text_.substr(at_, 40), &used);
      } catch (const std::exception&) {
        fail("bad number");
      }
      at_ += used;
    } else {
      static const std::pair<const char*, Json::Kind> words[] = {
          {"true", Json::kBool}, {"false", Json::kBool}, {"null", Json::kNull}};
      for (const auto& [word, kind] : words)
        if (text_.compare(at_, std::strlen(word), word) == 0) {
          at_ += std::strlen(word);
          v.kind = kind;
          v.boolean = word[0] == 't';
          return v;
        }
      fail(std::string("unexpected '") + c + "'");
    }
    return v;
  }

  const std::string& text_;
  size_t at_ = 0;
};

}  // namespace

Json parse_json(const std::string& text) { return Parser(text).parse(); }

}  // namespace lmt::io
