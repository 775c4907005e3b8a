// Option parsing with Boost.Program_options: flags, INI config files, usage errors.
#include "cli.h"

#include <boost/any.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <lmt/io/atomic_file.h>

namespace lmt::launch {

bool parse(CommandLine& cli, int argc, char** argv, po::variables_map& vm) {
  cli.options.add_options()("help,h", "show this help and exit")(
      "config", po::value<std::string>()->value_name("FILE"),
      "INI file with options (key = value, keys are the long flag names); flags override it");
  try {
    auto parsed =
        po::command_line_parser(argc, argv)
            .options(cli.options)
            .positional(cli.positional)
            // exact names only: no guessed prefixes (--batch for --batch-size)
            .style(po::command_line_style::unix_style ^ po::command_line_style::allow_guessing)
            .run();
    po::store(parsed, vm);
    if (vm.count("help")) {
      std::cout << "usage: " << cli.usage << "\n\n" << cli.options << "\n";
      return false;
    }
    if (vm.count("config")) {
      const std::string file = vm["config"].as<std::string>();
      std::ifstream raw(file, std::ios::binary);
      if (!raw) throw UsageError("--config: cannot open '" + file + "'");
      std::string text((std::istreambuf_iterator<char>(raw)), std::istreambuf_iterator<char>());
      if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);  // a UTF-8 byte-order mark
      std::istringstream in(text);
      try {
        po::store(po::parse_config_file(in, cli.options, /*allow_unregistered=*/false), vm);
      } catch (const po::error& e) {
        throw UsageError("--config " + file + ": " + e.what());
      }
    }
    po::notify(vm);
  } catch (const po::error& e) {
    throw UsageError(e.what());
  }
  return true;
}

static std::string any_to_string(const boost::any& value) {
  std::ostringstream out;
  out.precision(10);
  if (auto v = boost::any_cast<std::string>(&value)) return *v;
  if (auto v = boost::any_cast<int>(&value))
    out << *v;
  else if (auto v = boost::any_cast<int64_t>(&value))
    out << *v;
  else if (auto v = boost::any_cast<uint64_t>(&value))
    out << *v;
  else if (auto v = boost::any_cast<double>(&value))
    out << *v;
  else if (auto v = boost::any_cast<bool>(&value))
    out << (*v ? "true" : "false");
  else if (auto v = boost::any_cast<std::vector<std::string>>(&value)) {
    for (size_t i = 0; i < v->size(); ++i) out << (i ? "\n" : "") << (*v)[i];
  } else
    return "";
  return out.str();
}

std::string resolved_config(const CommandLine& cli, const po::variables_map& vm) {
  std::ostringstream out;
  out << "# lmt " << cli.command << ": the resolved configuration of this run\n";
  for (const auto& option : cli.options.options()) {
    const std::string& name = option->long_name();
    if (name == "help" || name == "config" || !vm.count(name)) continue;
    const std::string text = any_to_string(vm[name].value());
    if (auto list = boost::any_cast<std::vector<std::string>>(&vm[name].value())) {
      for (const auto& item : *list) out << name << " = " << item << "\n";
    } else {
      out << name << " = " << text << "\n";
    }
  }
  return out.str();
}

void require_choice(const po::variables_map& vm, const std::string& name,
                    std::initializer_list<const char*> choices) {
  if (!vm.count(name)) return;
  const std::string value = vm[name].as<std::string>();
  std::string expected;
  for (const char* choice : choices) {
    if (value == choice) return;
    expected += (expected.empty() ? "" : ", ") + std::string(choice);
  }
  throw UsageError("the argument ('" + value + "') for option '--" + name +
                   "' is invalid (expected one of: " + expected + ")");
}

static bool numeric_value(const boost::any& value, double& out) {
  if (auto v = boost::any_cast<int>(&value))
    out = double(*v);
  else if (auto v = boost::any_cast<int64_t>(&value))
    out = double(*v);
  else if (auto v = boost::any_cast<uint64_t>(&value))
    out = double(*v);
  else if (auto v = boost::any_cast<double>(&value))
    out = *v;
  else
    return false;
  return true;
}

static std::string format_number(double x) {
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  std::ostringstream out;
  out << x;
  return out.str();
}

void require_range(const po::variables_map& vm, const std::string& name, double lo, double hi,
                   bool lo_open, bool hi_open) {
  if (!vm.count(name)) return;
  double x = 0;
  if (!numeric_value(vm[name].value(), x))
    throw std::logic_error("require_range: option '--" + name + "' is not numeric");
  check_range(name, x, lo, hi, lo_open, hi_open);
}

void check_range(const std::string& name, double x, double lo, double hi, bool lo_open,
                 bool hi_open) {
  // NaN fails every comparison, so it is refused too; infinity is refused unless hi is.
  const bool above = lo_open ? x > lo : x >= lo;
  const bool below = hi_open ? x < hi : x <= hi;
  if (above && below && !std::isnan(x)) return;
  throw UsageError("option '--" + name + "' must be in " + (lo_open ? "(" : "[") +
                   format_number(lo) + ", " + format_number(hi) + (hi_open ? ")" : "]") + " (got " +
                   format_number(x) + ")");
}

void require_off_or_at_least(const po::variables_map& vm, const std::string& name, double off,
                             double min) {
  if (!vm.count(name)) return;
  double x = 0;
  if (!numeric_value(vm[name].value(), x))
    throw std::logic_error("require_off_or_at_least: option '--" + name + "' is not numeric");
  if (x == off || x >= min) return;
  throw UsageError("option '--" + name + "' must be " + format_number(off) +
                   " (off) or >= " + format_number(min) + " (got " + format_number(x) + ")");
}

std::vector<double> parse_number_list(const std::string& flag, const std::string& text) {
  std::vector<double> values;
  std::istringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      values.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw UsageError("the argument ('" + text + "') for option '--" + flag +
                       "' is invalid (expected comma-separated numbers)");
    }
  }
  if (values.empty()) throw UsageError("option '--" + flag + "' needs at least one number");
  return values;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  io::write_file_atomic(path, text);  // throws io::IoError "PATH: cannot write: REASON"
}

}  // namespace lmt::launch
