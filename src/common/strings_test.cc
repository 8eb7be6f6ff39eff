#include "common/strings.h"

#include "common/csv.h"

#include "gtest/gtest.h"

namespace abgate {
namespace {

TEST(StringsTest, OneLineJoinsLinesAndDropsTrailingWhitespace) {
  // libpq's connection error: the hint comes on a second, indented line.
  EXPECT_EQ(OneLine("connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n"
                    "\tIs the server running on that host and accepting TCP/IP connections?\n"),
            "connection to server at \"127.0.0.1\", port 1 failed: Connection refused; Is the server running on "
            "that host and accepting TCP/IP connections?");
  EXPECT_EQ(OneLine("plain"), "plain");
  EXPECT_EQ(OneLine("two\nlines \n\n"), "two; lines");
  EXPECT_EQ(OneLine("\n"), "");
  EXPECT_EQ(StrCat("n=", 3, " ", OneLine("a\n  b")), "n=3 a; b");
}

TEST(CsvTest, FieldsAreTrimmedAndQuoted) {
  EXPECT_EQ(common::SplitCsvRecord(R"(  a , "b,""c""" ,,   )"), (std::vector<std::string>{"a", "b,\"c\"", "", ""}));
  EXPECT_EQ(common::SplitCsvRecord("x\r"), std::vector<std::string>{"x"});
}

// Issue 14: trimming erased one leading space at a time, quadratic in the spaces (seconds for
// 1 MB). The whole-process test (serving_integration_test) holds the deadline; this one the result.
TEST(CsvTest, Issue14MegabyteOfLeadingSpaces) {
  const std::string line = std::string(1 << 20, ' ') + "1," + std::string(1 << 20, ' ');
  EXPECT_EQ(common::SplitCsvRecord(line), (std::vector<std::string>{"1", ""}));
}

}  // namespace
}  // namespace abgate
