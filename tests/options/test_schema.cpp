// The option schema: every text form reads back to the same value, bad values are refused with
// the option's name, and the generated pieces (config text, the compatibility check) follow the
// declarations without any other edit.
#include <gtest/gtest.h>

#include <lmt/options/schema.h>

namespace {

using lmt::options::Items;
using lmt::options::OptionError;
using lmt::options::Schema;
using lmt::options::Spec;

enum class Color { kRed, kGreen };

struct Demo {
  double rate = 1e-3;
  int64_t steps = 10;
  uint64_t seed = 0;
  int64_t limit = -1;
  bool flag = false;
  Color color = Color::kRed;
  std::string path = "out";
  std::vector<int64_t> epochs;
  std::map<std::string, std::string> pairs;
};

}  // namespace

namespace lmt::options {
template <>
struct EnumNames<Color> {
  static constexpr std::pair<Color, const char*> table[] = {{Color::kRed, "red"},
                                                            {Color::kGreen, "green"}};
};
}  // namespace lmt::options

namespace {

Schema<Demo> demo_schema() {
  Schema<Demo> s;
  s.add<double>(
      Spec("rate", "a rate").positive().below(lmt::options::kInf),
      [](auto& o) -> auto& { return o.rate; });
  s.add<int64_t>(
      Spec("steps", "steps").in(1, 100), [](auto& o) -> auto& { return o.steps; });
  s.add<uint64_t>(
      Spec("seed", "seed").in(0, 9.2e18), [](auto& o) -> auto& { return o.seed; });
  s.add<int64_t>(
      Spec("limit", "limit").off_or_at_least(-1, 1), [](auto& o) -> auto& { return o.limit; });
  s.add<bool>(
      Spec("flag", "flag"), [](auto& o) -> auto& { return o.flag; });
  s.add<Color>(
      Spec("color", "color"), [](auto& o) -> auto& { return o.color; });
  s.add<std::string>(
      Spec("path", "path").operational(), [](auto& o) -> auto& { return o.path; });
  s.add<std::vector<int64_t>>(
      Spec("epochs", "epochs").at_least(0), [](auto& o) -> auto& { return o.epochs; });
  s.add<std::map<std::string, std::string>>(
      Spec("pair", "pairs"), [](auto& o) -> auto& { return o.pairs; });
  return s;
}

// The message of the OptionError that setting `name` to `text` throws ("" if none is thrown).
std::string refusal(const std::string& name, const Items& items) {
  Demo d;
  try {
    demo_schema().set(d, name, items);
  } catch (const OptionError& e) {
    return e.what();
  }
  return "";
}

TEST(Schema, ValuesReadBackFromTheirText) {
  Demo d;
  const auto s = demo_schema();
  s.set(d, "rate", {"8/255"});
  EXPECT_EQ(d.rate, 8.0 / 255.0);  // the same division: bit-identical
  s.set(d, "epochs", {"30,60"});
  EXPECT_EQ(d.epochs, (std::vector<int64_t>{30, 60}));
  s.set(d, "pair", {"a=1", "b=x=y", "a=2"});
  EXPECT_EQ(d.pairs, (std::map<std::string, std::string>{{"a", "2"}, {"b", "x=y"}}));
  s.set(d, "color", {"green"});
  s.set(d, "flag", {"true"});
  s.set(d, "seed", {"9000000000000000000"});
  EXPECT_EQ(d.seed, 9000000000000000000ull);
  // config text -> a fresh struct -> the same config text, for every option.
  const std::string config = s.to_config(d, "demo");
  Demo e;
  for (const auto& [key, items] : lmt::options::parse_config_lines(config)) s.set(e, key, items);
  EXPECT_EQ(s.to_config(e, "demo"), config);
  EXPECT_NE(config.find("rate = 0.03137254901960784\n"), std::string::npos);
  EXPECT_NE(config.find("pair = a=2\npair = b=x=y\n"), std::string::npos);
}

TEST(Schema, BadValuesAreRefusedNamingTheOption) {
  EXPECT_EQ(refusal("rate", {"-1"}), "option '--rate' must be in (0, inf) (got -1)");
  EXPECT_EQ(refusal("rate", {"inf"}), "option '--rate' must be in (0, inf) (got inf)");
  EXPECT_EQ(refusal("rate", {"nan"}), "option '--rate' must be in (0, inf) (got nan)");
  EXPECT_NE(refusal("rate", {"1/0"}).find("'--rate' is invalid"), std::string::npos);
  EXPECT_NE(refusal("rate", {"0.1x"}).find("'--rate' is invalid"), std::string::npos);
  EXPECT_EQ(refusal("steps", {"1.5"}),
            "the argument ('1.5') for option '--steps' is invalid (expected an integer)");
  EXPECT_NE(refusal("steps", {"99999999999999999999"}).find("a smaller integer"),
            std::string::npos);
  EXPECT_EQ(refusal("steps", {"0"}), "option '--steps' must be in [1, 100] (got 0)");
  EXPECT_EQ(refusal("seed", {"-1"}), "option '--seed' must be in [0, 9.2e+18] (got -1)");
  EXPECT_EQ(refusal("limit", {"0"}), "option '--limit' must be -1 (off) or >= 1 (got 0)");
  EXPECT_EQ(refusal("limit", {"-1"}), "");
  EXPECT_EQ(refusal("color", {"blue"}),
            "the argument ('blue') for option '--color' is invalid (expected one of: red, green)");
  EXPECT_NE(refusal("flag", {"maybe"}).find("true or false"), std::string::npos);
  EXPECT_NE(refusal("epochs", {"30,,60"}).find("'--epochs' is invalid"), std::string::npos);
  EXPECT_EQ(refusal("epochs", {"-3"}), "option '--epochs' must be in [0, inf] (got -3)");
  EXPECT_NE(refusal("pair", {"novalue"}).find("KEY=VALUE"), std::string::npos);
  EXPECT_NE(refusal("rate", {"1", "2"}).find("more than once"), std::string::npos);
  EXPECT_EQ(refusal("nothing", {"1"}), "unknown option '--nothing'");
}

TEST(Schema, ValidateChecksValuesSetInCode) {
  Demo d;
  EXPECT_NO_THROW(demo_schema().validate(d));
  d.steps = 1000;
  EXPECT_THROW(demo_schema().validate(d), OptionError);
}

TEST(Schema, TheCompatibilityCheckNamesTheFirstRunDefiningDifference) {
  const auto s = demo_schema();
  Demo d;
  const std::string saved = s.to_config(d, "saved");
  EXPECT_EQ(s.first_difference(saved, d), "");
  Demo e = d;
  e.path = "elsewhere";  // operational
  EXPECT_EQ(s.first_difference(saved, e), "");
  e.rate = 0.01;
  EXPECT_EQ(s.first_difference(saved, e), "--rate: checkpoint has 0.001, this run has 0.01");
  // Compared as values, not as text; an option the saved text lacks is its default.
  EXPECT_EQ(s.first_difference("rate = 1e-3\nunknown-old-key = 4\n", d), "");
  Demo f;
  f.pairs["a"] = "1";
  EXPECT_EQ(s.first_difference("rate = 0.001\n", f),
            "--pair: checkpoint has (none), this run has a=1");
  EXPECT_EQ(s.first_difference("steps = zero\n", d),
            "--steps: checkpoint has zero, which this version cannot read");
}

// The one edit that adds an option: a declaration. Its config line and its compatibility check
// follow without anything else (the CLI flag and INI key: test_schema_cli.cpp).
struct Extended : Demo {
  double extra = 0.5;
};

TEST(Schema, AnAddedOptionAppearsInTheConfigAndTheCheck) {
  Schema<Extended> s;
  s.add<double>(
      Spec("rate", "a rate").positive(), [](auto& o) -> auto& { return o.rate; });
  const std::string before = s.to_config(Extended{}, "x");
  s.add<double>(
      Spec("extra", "the new option").at_least(0), [](auto& o) -> auto& { return o.extra; });
  Extended changed;
  changed.extra = 2;
  EXPECT_EQ(before.find("extra"), std::string::npos);
  EXPECT_NE(s.to_config(changed, "x").find("\nextra = 2\n"), std::string::npos);
  // A checkpoint from before the option existed ran with its default.
  EXPECT_EQ(s.first_difference(before, Extended{}), "");
  EXPECT_EQ(s.first_difference(before, changed), "--extra: checkpoint has 0.5, this run has 2");
  EXPECT_EQ(s.find("extra")->spec.default_text, "0.5");
}

}  // namespace
