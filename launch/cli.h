// The lmt CLI's shared machinery: option parsing (flags plus an INI file given with --config,
// flags winning), usage errors (exit code 2), and the checks of hand-declared options.
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <initializer_list>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace lmt::launch {

namespace po = boost::program_options;

// A bad command line: unknown/missing/malformed option. main() prints it on one line, exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CommandLine {
  std::string command;  // "train"
  std::string usage;    // "lmt train --data DIR --out RUN_DIR [options]"
  po::options_description options{"Options", 100};
  po::positional_options_description positional;
  // Filled by parse(): the --config file and the options whose value came from it (errors in
  // those name the file).
  std::string config_file;
  std::set<std::string> from_config;
};

// Parses argv (argv[0] is the subcommand) into vm: flags first, then the INI file named by
// --config for whatever the flags did not set, then notify() (required options, defaults).
// Returns false after printing help when --help was given.
bool parse(CommandLine& cli, int argc, char** argv, po::variables_map& vm);

// Writes text to path atomically with io::write_file_atomic (temporary name, write, fsync, rename,
// fsync of the directory, all checked; on failure the old file stays and io::IoError names path).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace lmt::launch
