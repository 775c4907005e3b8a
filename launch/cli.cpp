// Option parsing with Boost.Program_options: flags, INI config files, usage errors.
#include "cli.h"
#include "schema_cli.h"

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
      cli.config_file = file;
      std::set<std::string> given;
      for (const auto& [name, value] : vm) given.insert(name);
      try {
        po::store(po::parse_config_file(in, cli.options, /*allow_unregistered=*/false), vm);
        for (const auto& [name, value] : vm)
          if (!given.count(name)) cli.from_config.insert(name);
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

void write_file_atomic(const std::string& path, const std::string& text) {
  io::write_file_atomic(path, text);  // throws io::IoError "PATH: cannot write: REASON"
}

static std::string value_word(const options::Spec& spec) {
  if (!spec.value_name.empty()) return spec.value_name;
  if (spec.type == "choice") {
    std::string words;
    for (const auto& c : spec.choices) words += (words.empty() ? "" : "|") + c;
    return words;
  }
  if (spec.type == "int") return "N";
  if (spec.type == "number") return "X";
  if (spec.type == "bool") return "true|false";
  if (spec.type == "list") return "A,B,...";
  if (spec.type == "pairs") return "KEY=VALUE";
  return "TEXT";
}

void add_spec_flags(CommandLine& cli, const std::vector<const options::Spec*>& specs) {
  for (const options::Spec* spec : specs) {
    std::string help = spec->help;
    if (spec->is_required)
      help += " (required)";
    else if (!spec->default_text.empty() && !spec->is_switch)
      help += " (default: " + spec->default_text + ")";
    po::value_semantic* value = nullptr;
    if (spec->repeatable) {
      value = po::value<std::vector<std::string>>()->value_name(value_word(*spec));
    } else {
      auto* text = po::value<std::string>()->value_name(value_word(*spec));
      if (spec->is_switch) text->zero_tokens()->implicit_value("true");
      if (spec->is_required) text->required();
      value = text;
    }
    cli.options.add_options()(spec->name.c_str(), value, help.c_str());
  }
}

options::Items given_items(const po::variables_map& vm, const std::string& name) {
  if (!vm.count(name)) return {};
  if (auto list = boost::any_cast<std::vector<std::string>>(&vm[name].value())) return *list;
  return {vm[name].as<std::string>()};
}

}  // namespace lmt::launch
