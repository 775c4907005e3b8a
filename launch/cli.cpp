// Option parsing with Boost.Program_options: flags, INI config files, usage errors.
#include "cli.h"

#include <boost/any.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <lmt/io/atomic_file.h>

namespace lmt::launch {

bool parse(CommandLine& cli, int argc, char** argv, po::variables_map& vm) {
  cli.options.add_options()("help,h", "show this help and exit")(
      "config", po::value<std::string>()->value_name("FILE"),
      "INI file with options (key = value, keys are the long flag names); flags override it");
  try {
    auto parsed = po::command_line_parser(argc, argv)
                      .options(cli.options)
                      .positional(cli.positional)
                      .style(po::command_line_style::unix_style)
                      .run();
    po::store(parsed, vm);
    if (vm.count("help")) {
      std::cout << "usage: " << cli.usage << "\n\n" << cli.options << "\n";
      return false;
    }
    if (vm.count("config")) {
      const std::string file = vm["config"].as<std::string>();
      std::ifstream in(file);
      if (!in) throw UsageError("--config: cannot open '" + file + "'");
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
  if (auto v = boost::any_cast<int>(&value)) out << *v;
  else if (auto v = boost::any_cast<int64_t>(&value)) out << *v;
  else if (auto v = boost::any_cast<uint64_t>(&value)) out << *v;
  else if (auto v = boost::any_cast<double>(&value)) out << *v;
  else if (auto v = boost::any_cast<bool>(&value)) out << (*v ? "true" : "false");
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
