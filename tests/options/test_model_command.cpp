// The options eval and certify share (launch/model_command.h): declared once, they reach every
// options struct derived from ModelCommandOptions as flags with their defaults and ranges, beside
// the struct's own options.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "model_command.h"
#include "schema_cli.h"

namespace {

using lmt::launch::ModelCommandOptions;
using lmt::options::Schema;
using lmt::options::Spec;

struct Derived : ModelCommandOptions {
  double own = 1;
};

Schema<Derived> schema() {
  Schema<Derived> s;
  lmt::launch::add_model_command_options(s);
  s.add<double>(
      Spec("own", "the command's own option"), [](auto& o) -> auto& { return o.own; });
  return s;
}

Derived parse(std::vector<std::string> args) {
  lmt::launch::CommandLine cli;
  cli.command = "demo";
  lmt::launch::add_schema_flags(cli, schema());
  args.insert(args.begin(), "demo");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  lmt::launch::po::variables_map vm;
  lmt::launch::parse(cli, int(argv.size()), argv.data(), vm);
  Derived o;
  lmt::launch::apply_schema_flags(cli, vm, schema(), o);
  return o;
}

std::string message(std::vector<std::string> args) {
  try {
    parse(std::move(args));
  } catch (const lmt::launch::UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(ModelCommand, SharedOptionsReachTheDerivedStruct) {
  Derived o = parse({"--model-file", "m.pt", "--data", "t.h5", "--own", "2"});
  EXPECT_EQ(o.model_file, "m.pt");
  EXPECT_EQ(o.data, "t.h5");
  EXPECT_EQ(o.batch_size, 500);  // not given: the declared default
  EXPECT_EQ(o.threads, 0);       // 0: the cores / the ranks on this node
  EXPECT_EQ(o.metrics_out, "");
  EXPECT_EQ(o.own, 2.0);
  o = parse({"--model-file", "m", "--data", "d", "--threads", "3", "--metrics-out", "r.jsonl"});
  EXPECT_EQ(o.threads, 3);
  EXPECT_EQ(o.metrics_out, "r.jsonl");
}

TEST(ModelCommand, SharedChecksNameTheFlag) {
  EXPECT_NE(message({"--data", "d"}).find("'--model-file' is required"), std::string::npos);
  EXPECT_EQ(message({"--model-file", "m", "--data", "d", "--batch-size", "0"}),
            "option '--batch-size' must be in [1, 1e+09] (got 0)");
  EXPECT_EQ(message({"--model-file", "m", "--data", "d", "--threads", "2000"}),
            "option '--threads' must be in [0, 1024] (got 2000)");
}

}  // namespace
