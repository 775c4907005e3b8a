// The lmt CLI's shared machinery: option parsing (flags plus an INI file given with --config,
// flags winning), usage errors (exit code 2), the resolved configuration written beside a run.
#pragma once

#include <boost/program_options.hpp>
#include <functional>
#include <initializer_list>
#include <limits>
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
};

// Parses argv (argv[0] is the subcommand) into vm: flags first, then the INI file named by
// --config for whatever the flags did not set, then notify() (required options, defaults).
// Returns false after printing help when --help was given.
bool parse(CommandLine& cli, int argc, char** argv, po::variables_map& vm);

// The resolved configuration as INI text (every option with a value, defaults included), which
// `--config` reads back.
std::string resolved_config(const CommandLine& cli, const po::variables_map& vm);

// Throws UsageError unless vm[name] is one of `choices`.
void require_choice(const po::variables_map& vm, const std::string& name,
                    std::initializer_list<const char*> choices);

// Throws UsageError naming --name unless lo <= vm[name] <= hi (strict where *_open); NaN is always
// refused, infinity unless the range allows it. For int, int64_t, uint64_t and double options;
// an absent option passes.
constexpr double kInf = std::numeric_limits<double>::infinity();
void require_range(const po::variables_map& vm, const std::string& name, double lo, double hi,
                   bool lo_open = false, bool hi_open = false);
// The same for a value that did not come straight from vm (an item of a list).
void check_range(const std::string& name, double x, double lo, double hi, bool lo_open = false,
                 bool hi_open = false);
// Throws UsageError unless vm[name] is `off` or >= min (e.g. --max-steps -1 or >= 1).
void require_off_or_at_least(const po::variables_map& vm, const std::string& name, double off,
                             double min);

// Splits "0.1,0.3,1" into numbers; throws UsageError naming the flag on a malformed item.
std::vector<double> parse_number_list(const std::string& flag, const std::string& text);

// Writes text to path atomically with io::write_file_atomic (temporary name, write, fsync, rename,
// fsync of the directory, all checked; on failure the old file stays and io::IoError names path).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace lmt::launch
