#include "common/strings.h"

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

}  // namespace
}  // namespace abgate
