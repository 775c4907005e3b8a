// The schema's text forms: numbers, ranges, lists, pairs, config lines, and the error messages
// that name the option.
#include <lmt/options/schema.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace lmt::options {

std::string format_number(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  char text[64];
  const auto result = std::to_chars(text, text + sizeof text, x);  // shortest round trip
  return std::string(text, result.ptr);
}

double parse_number(const std::string& name, const std::string& text) {
  auto one = [&](const std::string& part, double& out) {
    if (part.empty() || std::isspace(static_cast<unsigned char>(part.front()))) return false;
    char* end = nullptr;
    out = std::strtod(part.c_str(), &end);
    return end == part.c_str() + part.size();
  };
  double x = 0, denominator = 1;
  const auto slash = text.find('/');
  const bool ok = slash == std::string::npos
                      ? one(text, x)
                      : one(text.substr(0, slash), x) && one(text.substr(slash + 1), denominator) &&
                            denominator != 0;
  if (!ok)
    throw OptionError("the argument ('" + text + "') for option '--" + name +
                      "' is invalid (expected a number, e.g. 0.03 or 8/255)");
  return x / denominator;
}

bool Range::contains(double x) const {
  if (off && x == *off) return true;
  const bool above = lo_open ? x > lo : x >= lo;
  const bool below = hi_open ? x < hi : x <= hi;
  return above && below && !std::isnan(x);  // NaN fails every comparison anyway
}

std::string Range::describe() const {
  if (off && hi == kInf && !lo_open)
    return format_number(*off) + " (off) or >= " + format_number(lo);
  return std::string(lo_open ? "(" : "[") + format_number(lo) + ", " + format_number(hi) +
         (hi_open ? ")" : "]");
}

void invalid(const Spec& spec, const std::string& text, const std::string& expected) {
  throw OptionError("the argument ('" + text + "') for option '--" + spec.name +
                    "' is invalid (expected " + expected + ")");
}

const std::string& single(const Spec& spec, const Items& items) {
  static const std::string empty;
  if (items.empty()) return empty;
  if (items.size() > 1)
    throw OptionError("option '--" + spec.name + "' cannot be specified more than once");
  return items.front();
}

int64_t parse_integer(const Spec& spec, const std::string& text) {
  int64_t x = 0;
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data() + (text.rfind('+', 0) == 0), end, x);
  if (text.empty() || result.ec != std::errc() || result.ptr != end)
    invalid(spec, text,
            result.ec == std::errc::result_out_of_range ? "a smaller integer" : "an integer");
  return x;
}

void check_range(const Spec& spec, double x, const std::string& shown) {
  if (spec.range.contains(x)) return;
  const std::string got = " (got " + (shown.empty() ? format_number(x) : shown) + ")";
  if (spec.range.off && spec.range.hi == kInf && !spec.range.lo_open)
    throw OptionError("option '--" + spec.name + "' must be " + spec.range.describe() + got);
  throw OptionError("option '--" + spec.name + "' must be in " + spec.range.describe() + got);
}

std::vector<std::string> split_list(const Spec& spec, const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  std::istringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (item.empty()) invalid(spec, text, "a comma-separated list without empty items");
    out.push_back(item);
  }
  if (text.back() == ',') invalid(spec, text, "a comma-separated list without empty items");
  return out;
}

bool Codec<bool>::parse(const Spec& s, const Items& items) {
  const std::string& text = single(s, items);
  if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
  if (text == "false" || text == "0" || text == "no" || text == "off") return false;
  invalid(s, text, "true or false");
}

std::string join(const Items& items) {
  std::string text;
  for (size_t i = 0; i < items.size(); ++i) text += (i ? "," : "") + items[i];
  return text;
}

Items Codec<std::vector<std::string>>::format(const std::vector<std::string>& v) {
  return {join(v)};
}

Items Codec<std::map<std::string, std::string>>::format(
    const std::map<std::string, std::string>& v) {
  Items items;
  for (const auto& [key, value] : v) items.push_back(key + "=" + value);
  return items;
}

std::map<std::string, std::string> Codec<std::map<std::string, std::string>>::parse(
    const Spec& s, const Items& items) {
  std::map<std::string, std::string> out;
  for (const auto& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0) invalid(s, item, "KEY=VALUE");
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

std::map<std::string, Items> parse_config_lines(const std::string& text) {
  std::map<std::string, Items> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const auto eq = line.find(" = ");
    if (eq == std::string::npos) continue;
    lines[line.substr(0, eq)].push_back(line.substr(eq + 3));
  }
  return lines;
}

}  // namespace lmt::options
