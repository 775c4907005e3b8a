// lmt::options: one option schema. Each option is declared once: its name (the CLI flag without
// "--", the INI key and the config.ini key), type, default, help, valid range, and whether it
// defines the run or only how it is run. Everything else is generated from that declaration:
// the CLI flags and their help (launch/schema_cli.h), the INI keys --config reads, the
// config.ini written into a run, the validation messages naming the option, and the
// resume-compatibility check. No torch, no Boost: the bottom of the house with io/.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lmt::options {

// A bad value; the message names the option ("option '--lr' must be in (0, inf) (got -1)").
class OptionError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// kRun: changes what the run computes, so a resumed run must have the same value.
// kOperational: how the run is carried out (paths, threads, logging, checkpoints).
enum class Role { kRun, kOperational };

constexpr double kInf = std::numeric_limits<double>::infinity();

// The valid values of a number: lo..hi, each end closed or open; `off`, when set, is accepted
// besides the range (-1 for "no limit"). NaN is always refused, infinity unless an end is.
struct Range {
  double lo = -kInf, hi = kInf;
  bool lo_open = false, hi_open = false;
  std::optional<double> off;
  bool contains(double x) const;
  std::string describe() const;  // "[0, 1)", "-1 (off) or >= 1"
};

// Shortest text that reads back to the same double ("0.1", "1e-05", "inf").
std::string format_number(double x);
// A number as the CLI reads it: a decimal ("0.031"), or a fraction of two ("8/255").
// Throws OptionError naming `name` when the text is not a number.
double parse_number(const std::string& name, const std::string& text);

// What one option is, apart from where its value lives. The CLI and the help read this.
struct Spec {
  Spec(std::string name, std::string help) : name(std::move(name)), help(std::move(help)) {}
  Spec& operational() { return role = Role::kOperational, *this; }
  Spec& required() { return is_required = true, *this; }
  // A flag given without a value means true (only for bool options).
  Spec& as_switch() { return is_switch = true, *this; }
  Spec& value(std::string text) { return value_name = std::move(text), *this; }
  Spec& in(double lo, double hi) { return range.lo = lo, range.hi = hi, *this; }
  Spec& at_least(double lo) { return in(lo, kInf); }
  Spec& positive() { return in(0, kInf), range.lo_open = true, *this; }
  Spec& below(double hi) { return range.hi = hi, range.hi_open = true, *this; }
  Spec& above(double lo) { return range.lo = lo, range.lo_open = true, *this; }
  Spec& off_or_at_least(double off, double min) { return range.off = off, at_least(min); }

  std::string name, help;
  Role role = Role::kRun;
  bool is_required = false, is_switch = false;
  std::string value_name;  // "DIR"; the type's word when empty
  Range range;             // numbers, and each item of a number list
  // Filled in from the value's type by Schema::add:
  std::string type;                  // "int", "number", "bool", "text", "choice", "list", "pairs"
  std::vector<std::string> choices;  // an enum's names
  bool repeatable = false;           // one flag / INI line per item (KEY=VALUE pairs)
  std::string default_text;          // the default value, as config.ini writes it
};

// The names of an enum's values: specialise for each enum an option uses, e.g.
//   template <> struct EnumNames<Loss> {
//     static constexpr std::pair<Loss, const char*> table[] = {{Loss::kCe, "ce"}, ...};
//   };
template <class E>
struct EnumNames;

template <class E>
const char* to_string(E value) {
  for (const auto& [v, name] : EnumNames<E>::table)
    if (v == value) return name;
  return "?";
}

// How a value of type V is written as text items and read back (checked against the spec).
// Items: one for scalars and comma lists, one per pair for repeatable KEY=VALUE maps.
template <class V, class = void>
struct Codec;

using Items = std::vector<std::string>;
// "a,b,c": a comma list's text, and how several items of one option print in messages.
std::string join(const Items& items);

// Shared by the codecs (schema.cpp).
[[noreturn]] void invalid(const Spec& spec, const std::string& text, const std::string& expected);
const std::string& single(const Spec& spec, const Items& items);
int64_t parse_integer(const Spec& spec, const std::string& text);
// Throws unless spec.range contains x; `shown` is x as the message writes it (integers exactly).
void check_range(const Spec& spec, double x, const std::string& shown = "");
std::vector<std::string> split_list(const Spec& spec, const std::string& text);

template <>
struct Codec<std::string> {
  static void describe(Spec& s) { s.type = "text"; }
  static Items format(const std::string& v) { return {v}; }
  static std::string parse(const Spec& s, const Items& items) { return single(s, items); }
};

template <>
struct Codec<bool> {
  static void describe(Spec& s) { s.type = "bool"; }
  static Items format(bool v) { return {v ? "true" : "false"}; }
  static bool parse(const Spec& s, const Items& items);
};

template <>
struct Codec<double> {
  static void describe(Spec& s) { s.type = "number"; }
  static Items format(double v) { return {format_number(v)}; }
  static double parse(const Spec& s, const Items& items) {
    const double x = parse_number(s.name, single(s, items));
    check_range(s, x);
    return x;
  }
};

template <class I>
struct Codec<I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>> {
  static void describe(Spec& s) { s.type = "int"; }
  static Items format(I v) { return {std::to_string(v)}; }
  static I parse(const Spec& s, const Items& items) {
    const std::string& text = single(s, items);
    const int64_t x = parse_integer(s, text);
    check_range(s, double(x), std::to_string(x));
    if (std::is_unsigned_v<I> && x < 0) invalid(s, text, "a non-negative integer");
    if (int64_t(I(x)) != x) invalid(s, text, "a smaller integer");
    return I(x);
  }
};

template <class E>
struct Codec<E, std::enable_if_t<std::is_enum_v<E>>> {
  static void describe(Spec& s) {
    s.type = "choice";
    for (const auto& entry : EnumNames<E>::table) s.choices.push_back(entry.second);
  }
  static Items format(E v) { return {to_string(v)}; }
  static E parse(const Spec& s, const Items& items) {
    const std::string& text = single(s, items);
    for (const auto& [v, name] : EnumNames<E>::table)
      if (text == name) return v;
    std::string expected = "one of:";
    for (const auto& entry : EnumNames<E>::table)
      expected += std::string(&entry == EnumNames<E>::table ? " " : ", ") + entry.second;
    invalid(s, text, expected);
  }
};

// A comma-separated list of numbers ("30,60"); the range applies to each item. Empty: none.
template <class N>
struct Codec<std::vector<N>, std::enable_if_t<std::is_arithmetic_v<N>>> {
  static void describe(Spec& s) { s.type = "list"; }
  static Items format(const std::vector<N>& v) {
    Items items;
    for (const N& x : v) items.push_back(Codec<N>::format(x).front());
    return {join(items)};
  }
  static std::vector<N> parse(const Spec& s, const Items& items) {
    std::vector<N> out;
    for (const auto& item : split_list(s, single(s, items)))
      out.push_back(Codec<N>::parse(s, {item}));
    return out;
  }
};

// A comma-separated list of words ("apgd-ce,square").
template <>
struct Codec<std::vector<std::string>> {
  static void describe(Spec& s) { s.type = "list"; }
  static Items format(const std::vector<std::string>& v);
  static std::vector<std::string> parse(const Spec& s, const Items& items) {
    return split_list(s, single(s, items));
  }
};

// KEY=VALUE pairs, one flag or INI line each (--model-option stem=cifar); a later key wins.
template <>
struct Codec<std::map<std::string, std::string>> {
  static void describe(Spec& s) { s.type = "pairs", s.repeatable = true; }
  static Items format(const std::map<std::string, std::string>& v);
  static std::map<std::string, std::string> parse(const Spec& s, const Items& items);
};

// The options of one options struct T (a default-constructed T holds the defaults).
template <class T>
class Schema {
 public:
  struct Entry {
    Spec spec;
    std::function<Items(const T&)> get;
    std::function<void(T&, const Items&)> set;  // parses and checks; throws OptionError
  };

  // Declares an option whose value is the V that `field(target)` refers to; `field` is a generic
  // lambda ([](auto& o) -> auto& { return o.lr(); }) so that it reads const targets too.
  template <class V, class Field>
  Schema& add(Spec spec, Field field) {
    Codec<V>::describe(spec);
    spec.default_text = join(Codec<V>::format(field(defaults_)));
    Entry entry{
        spec, [field](const T& t) { return Codec<V>::format(field(t)); },
        [field, spec](T& t, const Items& items) { field(t) = Codec<V>::parse(spec, items); }};
    entries_.push_back(std::move(entry));
    return *this;
  }

  const std::vector<Entry>& entries() const { return entries_; }
  const Entry* find(const std::string& name) const {
    for (const auto& e : entries_)
      if (e.spec.name == name) return &e;
    return nullptr;
  }

  // Sets option `name` from text items (a flag's values, INI lines). Throws OptionError.
  void set(T& target, const std::string& name, const Items& items) const {
    const Entry* e = find(name);
    if (!e) throw OptionError("unknown option '--" + name + "'");
    e->set(target, items);
  }

  // Checks every value of `target` as if it had been read from text: its range, its choices,
  // required options present. For library users who filled T in code; throws OptionError.
  void validate(const T& target) const {
    T copy = target;
    for (const auto& e : entries_) {
      const Items items = e.get(target);
      if (e.spec.is_required && (items.empty() || items.front().empty()))
        throw OptionError("option '--" + e.spec.name + "' is required");
      e.set(copy, items);
    }
  }

  // Every option as "key = value" lines (defaults included), under a "# header" comment: the
  // config.ini of a run, which --config reads back.
  std::string to_config(const T& target, const std::string& header) const {
    std::string out = "# " + header + "\n";
    for (const auto& e : entries_)
      for (const auto& item : e.get(target)) out += e.spec.name + " = " + item + "\n";
    return out;
  }

  // The first run-defining option whose value in `saved` (config text a run wrote) differs from
  // `current`'s, as "--lr: checkpoint has 0.001, this run has 0.01"; empty when none does.
  // Values are compared as read back (1e-3 equals 0.001); an option missing from `saved` (written
  // before it existed) compares as its default; keys the schema no longer has are ignored.
  std::string first_difference(const std::string& saved, const T& current) const {
    const auto lines = config_items(saved);
    for (const auto& e : entries_) {
      if (e.spec.role != Role::kRun) continue;
      T then = defaults_;
      auto it = lines.find(e.spec.name);
      std::string was = e.spec.default_text;
      if (it != lines.end()) {
        was = join(it->second);
        try {
          e.set(then, it->second);
        } catch (const OptionError&) {
          return "--" + e.spec.name + ": checkpoint has " + was +
                 ", which this version cannot read";
        }
      }
      const std::string a = join(e.get(then)), b = join(e.get(current));
      if (a != b)
        return "--" + e.spec.name + ": checkpoint has " + shown(was) + ", this run has " + shown(b);
    }
    return "";
  }

 private:
  static std::map<std::string, Items> config_items(const std::string& text);
  static std::string shown(const std::string& text) { return text.empty() ? "(none)" : text; }

  T defaults_{};
  std::vector<Entry> entries_;
};

// "key = value" lines of config text into items per key (comments and blank lines skipped).
std::map<std::string, Items> parse_config_lines(const std::string& text);

template <class T>
std::map<std::string, Items> Schema<T>::config_items(const std::string& text) {
  return parse_config_lines(text);
}

}  // namespace lmt::options
