// The CLI made from a schema (launch/schema_cli.h): each declared option is a flag with its help
// and an INI key, flags win over the INI file, and bad values are usage errors naming the flag.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include <lmt/options/schema.h>

#include "schema_cli.h"

namespace {

using lmt::launch::CommandLine;
using lmt::launch::UsageError;
using lmt::options::Schema;
using lmt::options::Spec;

struct Opts {
  double rate = 0.1;
  int64_t steps = 3;
  bool go = false;
  std::map<std::string, std::string> pairs;
  double added = 1.0;  // declared only in the schema below: the option "added by one line"
};

Schema<Opts> schema() {
  Schema<Opts> s;
  s.add<double>(
      Spec("rate", "a rate").positive(), [](auto& o) -> auto& { return o.rate; });
  s.add<int64_t>(
      Spec("steps", "steps").in(1, 9), [](auto& o) -> auto& { return o.steps; });
  s.add<bool>(
      Spec("go", "a switch").as_switch(), [](auto& o) -> auto& { return o.go; });
  s.add<std::map<std::string, std::string>>(
      Spec("pair", "pairs"), [](auto& o) -> auto& { return o.pairs; });
  s.add<double>(
      Spec("added", "the added option").at_least(0), [](auto& o) -> auto& { return o.added; });
  return s;
}

// Parses args (after the subcommand) through a CommandLine made from schema(); `help` gets the
// --help text when asked for.
Opts parse(std::vector<std::string> args, std::string* help = nullptr) {
  CommandLine cli;
  cli.command = "demo";
  cli.usage = "demo [options]";
  lmt::launch::add_schema_flags(cli, schema());
  args.insert(args.begin(), "demo");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  lmt::launch::po::variables_map vm;
  std::stringstream out;
  auto* old = std::cout.rdbuf(out.rdbuf());
  bool ran = false;
  try {
    ran = lmt::launch::parse(cli, int(argv.size()), argv.data(), vm);
  } catch (...) {
    std::cout.rdbuf(old);
    throw;
  }
  std::cout.rdbuf(old);
  if (help) *help = out.str();
  Opts o;
  if (ran) lmt::launch::apply_schema_flags(cli, vm, schema(), o);
  return o;
}

std::string ini(const std::string& text) {
  const std::string path = testing::TempDir() + "lmt-schema-" + std::to_string(::getpid()) + ".ini";
  std::ofstream(path) << text;
  return path;
}

TEST(SchemaCli, EveryOptionIsAFlagWithItsHelpAndDefault) {
  std::string help;
  parse({"--help"}, &help);
  for (const char* text : {"--rate X", "a rate (default: 0.1)", "--steps N", "--go",
                           "--pair KEY=VALUE", "--added X", "the added option (default: 1)"})
    EXPECT_NE(help.find(text), std::string::npos) << text << " missing from:\n" << help;
}

TEST(SchemaCli, FlagsAndIniKeysSetTheOptionsFlagsWinning) {
  Opts o = parse({"--rate", "8/255", "--go", "--pair", "a=1", "--pair", "b=2", "--added", "4"});
  EXPECT_EQ(o.rate, 8.0 / 255.0);
  EXPECT_TRUE(o.go);
  EXPECT_EQ(o.pairs.size(), 2u);
  EXPECT_EQ(o.added, 4.0);
  EXPECT_EQ(o.steps, 3);  // not given: the struct's default
  const std::string file = ini("added = 7\nsteps = 5\n");
  o = parse({"--config", file, "--steps", "6"});
  EXPECT_EQ(o.added, 7.0);  // the added option is an INI key too
  EXPECT_EQ(o.steps, 6);    // the flag wins over the file
  std::remove(file.c_str());
}

TEST(SchemaCli, BadValuesAreUsageErrorsNamingTheFlag) {
  auto message = [](std::vector<std::string> args) {
    try {
      parse(std::move(args));
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(message({"--added", "-1"}), "option '--added' must be in [0, inf] (got -1)");
  EXPECT_EQ(message({"--steps", "10"}), "option '--steps' must be in [1, 9] (got 10)");
  EXPECT_NE(message({"--stepz", "1"}).find("unrecognised option '--stepz'"), std::string::npos);
  const std::string file = ini("added = x\n");
  const std::string from_file = message({"--config", file});
  EXPECT_EQ(from_file.rfind("--config " + file + ": ", 0), 0u) << from_file;  // names the file
  EXPECT_NE(from_file.find("'--added' is invalid"), std::string::npos) << from_file;
  EXPECT_EQ(message({"--config", file, "--added", "2"}), "");  // the flag wins: the file's unread
  std::remove(file.c_str());
}

}  // namespace
