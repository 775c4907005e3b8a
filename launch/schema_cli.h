// The CLI face of an option schema (lmt/options/schema.h): one flag per option, with help made
// from its spec, and the parsed flags and INI keys applied to the options struct through the
// schema, so that the flag, the INI key and the check cannot disagree.
#pragma once

#include <lmt/options/schema.h>

#include "cli.h"

namespace lmt::launch {

// Adds one --NAME flag per spec to cli.options (all read as text; the schema parses them).
void add_spec_flags(CommandLine& cli, const std::vector<const options::Spec*>& specs);

template <class T>
void add_schema_flags(CommandLine& cli, const options::Schema<T>& schema) {
  std::vector<const options::Spec*> specs;
  for (const auto& entry : schema.entries()) specs.push_back(&entry.spec);
  add_spec_flags(cli, specs);
}

// The text items vm holds for an option (none when it was not given).
options::Items given_items(const po::variables_map& vm, const std::string& name);

// Sets every option given on the command line or in --config into `target`; a bad value throws
// UsageError naming the flag (and the --config file when the value came from it). Options not
// given keep target's values (the defaults).
template <class T>
void apply_schema_flags(const CommandLine& cli, const po::variables_map& vm,
                        const options::Schema<T>& schema, T& target) {
  for (const auto& entry : schema.entries()) {
    if (!vm.count(entry.spec.name)) continue;
    try {
      entry.set(target, given_items(vm, entry.spec.name));
    } catch (const options::OptionError& e) {
      if (cli.from_config.count(entry.spec.name))
        throw UsageError("--config " + cli.config_file + ": " + e.what());
      throw UsageError(e.what());
    }
  }
}

// A command's front: flags made from `schema`, argv (and --config) parsed, the values applied to
// `target` (which holds the defaults). False when --help was printed. `positional`: the option a
// bare first word sets (convert's dataset).
template <class T>
bool parse_options(const std::string& command, const std::string& usage,
                   const options::Schema<T>& schema, int argc, char** argv, T& target,
                   const char* positional = nullptr) {
  CommandLine cli;
  cli.command = command;
  cli.usage = usage;
  add_schema_flags(cli, schema);
  if (positional) cli.positional.add(positional, 1);
  po::variables_map vm;
  if (!parse(cli, argc, argv, vm)) return false;
  apply_schema_flags(cli, vm, schema, target);
  return true;
}

}  // namespace lmt::launch
