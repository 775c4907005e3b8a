// JsonLine and MetricsWriter: every string escaped as JSON requires, non-finite numbers as null,
// values in insertion order, and MetricsWriter appending whole lines (truncating only when asked).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include <lmt/io/atomic_file.h>
#include <lmt/io/json_lines.h>

namespace {

using lmt::io::JsonLine;
using lmt::io::MetricsWriter;

TEST(JsonEscape, QuotesAndEscapesControlCharacters) {
  EXPECT_EQ(lmt::io::json_escape("plain"), "\"plain\"");
  EXPECT_EQ(lmt::io::json_escape("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(lmt::io::json_escape("\n\t\r"), "\"\\n\\t\\r\"");
  EXPECT_EQ(lmt::io::json_escape(std::string("\x01\x1f", 2)), "\"\\u0001\\u001f\"");
  EXPECT_EQ(lmt::io::json_escape("caf\xc3\xa9"), "\"caf\xc3\xa9\"");  // UTF-8 passes through
}

TEST(JsonLine, EveryValueKindInInsertionOrder) {
  JsonLine line;
  line.add("s", "x").add("i", 3).add("l", int64_t(-9000000000)).add("b", true).add("d", 0.25);
  line.add("v", std::vector<double>{1.5, -2}).add("e", std::vector<double>{});
  line.add_raw("o", "{\"k\":1}");
  EXPECT_EQ(line.str(),
            "{\"s\":\"x\",\"i\":3,\"l\":-9000000000,\"b\":true,\"d\":0.25,\"v\":[1.5,-2],"
            "\"e\":[],\"o\":{\"k\":1}}");
  EXPECT_EQ(JsonLine().str(), "{}");
}

TEST(JsonLine, NonFiniteNumbersAreNull) {
  JsonLine line;
  line.add("nan", std::nan("")).add("inf", std::numeric_limits<double>::infinity());
  line.add("v", std::vector<double>{-std::numeric_limits<double>::infinity()});
  EXPECT_EQ(line.str(), "{\"nan\":null,\"inf\":null,\"v\":[null]}");
}

TEST(JsonLine, NumbersKeepTenSignificantDigits) {
  EXPECT_EQ(JsonLine().add("x", 0.1234567891).str(), "{\"x\":0.1234567891}");
  EXPECT_EQ(JsonLine().add("x", 1e-12).str(), "{\"x\":1e-12}");
}

TEST(MetricsWriter, AppendsWholeLinesAndTruncatesOnlyWhenAsked) {
  const std::string path = ::testing::TempDir() + "lmt_io_metrics_" + std::to_string(::getpid());
  std::remove(path.c_str());
  MetricsWriter first(path, /*truncate=*/true);
  EXPECT_TRUE(first.is_open());
  EXPECT_FALSE(MetricsWriter().is_open());
  first.write(JsonLine().add("step", 1));
  MetricsWriter(path).write(JsonLine().add("step", 2));  // a resumed run continues the file
  EXPECT_EQ(lmt::io::read_file(path), "{\"step\":1}\n{\"step\":2}\n");
  MetricsWriter(path, /*truncate=*/true).write(JsonLine().add("step", 3));
  EXPECT_EQ(lmt::io::read_file(path), "{\"step\":3}\n");
  std::remove(path.c_str());
}

}  // namespace
