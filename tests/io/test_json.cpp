// parse_json, the tree's one JSON reader, against what JsonLine writes (the round trip lmt plot
// relies on) and against malformed text (one IoError naming the byte).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include <lmt/io/atomic_file.h>
#include <lmt/io/json.h>
#include <lmt/io/json_lines.h>

namespace {

using lmt::io::Json;
using lmt::io::parse_json;

TEST(ParseJson, ReadsBackEveryKindJsonLineWrites) {
  lmt::io::JsonLine line;
  // JsonLine writes numbers with %.10g: 0.1 reads back as the same double (its shortest form has
  // one digit), 1/3 to within half a unit in the 10th digit (relative 5e-10).
  line.add("s", "a\"b\\c\n\xc3\xa9")
      .add("i", int64_t(-9000000000))
      .add("b", false)
      .add("d", 1.0 / 3)
      .add("tenth", 0.1)
      .add("nan", std::numeric_limits<double>::quiet_NaN())
      .add("v", std::vector<double>{0.5, 2});
  const Json j = parse_json(line.str());
  ASSERT_EQ(j.kind, Json::kObject);
  ASSERT_EQ(j.object.size(), 7u);
  EXPECT_EQ(j.object[0].first, "s");  // file order kept
  EXPECT_EQ(j.find("s")->string, "a\"b\\c\n\xc3\xa9");
  EXPECT_EQ(*j.number_at("i"), -9000000000.0);
  EXPECT_EQ(j.find("b")->kind, Json::kBool);
  EXPECT_FALSE(j.find("b")->boolean);
  EXPECT_NEAR(*j.number_at("d"), 1.0 / 3, 5e-10 / 3);
  EXPECT_EQ(*j.number_at("tenth"), 0.1);
  EXPECT_EQ(j.find("nan")->kind, Json::kNull);  // non-finite numbers are written as null
  EXPECT_EQ(j.number_at("nan"), nullptr);
  ASSERT_EQ(j.find("v")->array.size(), 2u);
  EXPECT_EQ(j.find("v")->array[1].number, 2.0);
  EXPECT_EQ(j.find("missing"), nullptr);
}

TEST(ParseJson, UnicodeEscapesBecomeUtf8) {
  EXPECT_EQ(parse_json(R"("\u0041\u00e9\u03b5")").string, "A\xc3\xa9\xce\xb5");
  EXPECT_EQ(parse_json(" [ true , null ] ").array[0].boolean, true);
}

TEST(ParseJson, MalformedTextNamesTheByte) {
  for (const char* bad : {"{\"a\":1", "{\"a\" 1}", "[1,]", "\"open", "{\"a\":1} x", "-", "\"\\u12\"",
                          "tru", "{1:2}", ""}) {
    try {
      parse_json(bad);
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const lmt::io::IoError& e) {
      EXPECT_NE(std::string(e.what()).find("malformed JSON ("), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(" at byte "), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_json(std::string(300, '[')), lmt::io::IoError);  // depth limit, no overflow
}

}  // namespace
