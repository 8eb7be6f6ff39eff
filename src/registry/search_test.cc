#include "registry/search.h"

#include <gtest/gtest.h>

namespace abgate::registry {
namespace {

const FilterRules kRunRules{{"run_id", "run_name", "status"}, {"start_time"}, {"run_id"}, true,
                            {KeyType::kMetric, KeyType::kParam, KeyType::kTag}, "['run_id', 'run_name', 'status', 'start_time']"};

TEST(ParseFilter, ConjunctionOfClauses) {
  auto clauses = ParseFilter("metrics.auc >= 0.7 and params.arm = 'B' AND tags.`my key` LIKE '%x_' "
                             "AND attributes.run_id IN ('a', \"b\") AND start_time < 5",
                             kRunRules);
  ASSERT_TRUE(clauses.ok()) << clauses.status();
  ASSERT_EQ(clauses->size(), 5u);
  EXPECT_EQ((*clauses)[0].type, KeyType::kMetric);
  EXPECT_EQ((*clauses)[0].op, Comparator::kGe);
  EXPECT_DOUBLE_EQ((*clauses)[0].number, 0.7);
  EXPECT_EQ((*clauses)[1].text, "B");
  EXPECT_EQ((*clauses)[2].key, "my key");
  EXPECT_EQ((*clauses)[3].values, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(MatchNumber((*clauses)[4], 4));
  EXPECT_FALSE(MatchNumber((*clauses)[4], 5));
}

TEST(ParseFilter, EmptyIsNoClauses) {
  EXPECT_TRUE(ParseFilter("", kRunRules)->empty());
  EXPECT_TRUE(ParseFilter("   ", kRunRules)->empty());
}

TEST(ParseFilter, RefusesWhatMlflowRefuses) {
  for (const char* bad : {"name = 'x' OR 1=1", "params.a = 'x' OR params.b = 'y'", "(params.a = 'x')",
                          "NOT params.a = 'x'", "params.a == 'x'", "metrics.auc LIKE 'a'", "params.a > 'x'",
                          "params.a = 5", "metrics.auc = 'x'", "current_stage = 'Production'",
                          "foo.bar = 'x'", "params.a = 'unterminated", "params.a = 'x' AND", "params.a = 'x'; DROP TABLE runs",
                          "start_time = 'x'", "status IN ('a')", "run_id IN 'a'"}) {
    auto r = ParseFilter(bad, kRunRules);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) { EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad; }
  }
  EXPECT_EQ(ParseFilter("params.a = 'x' OR params.b = 'y'", kRunRules).status().message(),
            "Invalid clause(s) in filter string: 'OR'");
}

TEST(ParseFilter, QuotesAndUnicodeAreData) {
  auto c = ParseFilter("params.a = 'it''s \xC3\xA9t\xC3\xA9 '' OR 1=1 --'", kRunRules);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)[0].text, "it's \xC3\xA9t\xC3\xA9 ' OR 1=1 --");
}

TEST(LikeMatch, SqlWildcards) {
  EXPECT_TRUE(LikeMatch("hyatt_booking_model", "hyatt%", false));
  EXPECT_TRUE(LikeMatch("abc", "a_c", false));
  EXPECT_FALSE(LikeMatch("abc", "A%", false));
  EXPECT_TRUE(LikeMatch("abc", "A%", true));
  EXPECT_TRUE(LikeMatch("", "%", false));
  EXPECT_FALSE(LikeMatch("ab", "a", false));
  EXPECT_TRUE(LikeMatch("aXbXc", "%b%c", false));
  // A pattern with more literal characters than the text is refused before any backtracking.
  EXPECT_FALSE(LikeMatch("ab", "%a%b%c", false));
  EXPECT_FALSE(LikeMatch(std::string(1000, 'a'), "%" + std::string(1001, 'a'), false));
}

// Issue 14: runs of '%' are collapsed when the filter is parsed (they match what one '%' does),
// so a pattern's length is bounded by its literal characters.
TEST(ParseFilter, Issue14RunsOfPercentAreOne) {
  auto c = ParseFilter("run_name LIKE '" + std::string(100000, '%') + "a%%b'", kRunRules);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)[0].text, "%a%b");
  EXPECT_TRUE(LikeMatch("xaxb", (*c)[0].text, false));
  auto eq = ParseFilter("run_name = '%%'", kRunRules);
  ASSERT_TRUE(eq.ok());
  EXPECT_EQ((*eq)[0].text, "%%");  // only LIKE patterns
}

TEST(ParseOrderBy, DirectionsAndDuplicates) {
  auto o = ParseOrderBy({"metrics.auc DESC", "start_time", "params.`arm` ASC"}, {"start_time"},
                        {KeyType::kMetric, KeyType::kParam});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_FALSE((*o)[0].ascending);
  EXPECT_TRUE((*o)[1].ascending);
  EXPECT_EQ((*o)[2].key, "arm");
  EXPECT_FALSE(ParseOrderBy({"start_time", "start_time DESC"}, {"start_time"}, {}).ok());
  EXPECT_FALSE(ParseOrderBy({"start_time sideways"}, {"start_time"}, {}).ok());
  EXPECT_FALSE(ParseOrderBy({"nope"}, {"start_time"}, {}).ok());
  // Many distinct keys: duplicates are found with a set (the scan was quadratic).
  std::vector<std::string> many;
  for (int i = 0; i < 50000; ++i) many.push_back("metrics.m" + std::to_string(i));
  EXPECT_TRUE(ParseOrderBy(many, {}, {KeyType::kMetric}).ok());
  many.push_back("metrics.m17 DESC");
  EXPECT_FALSE(ParseOrderBy(many, {}, {KeyType::kMetric}).ok());
}

TEST(PageToken, MatchesMlflowEncoding) {
  EXPECT_EQ(EncodePageToken(1), "eyJvZmZzZXQiOiAxfQ==");  // observed from MLflow 2.17.2
  EXPECT_EQ(*DecodePageToken("eyJvZmZzZXQiOiAxfQ=="), 1);
  EXPECT_EQ(*DecodePageToken(""), 0);
  EXPECT_EQ(*DecodePageToken(EncodePageToken(123456)), 123456);
  EXPECT_FALSE(DecodePageToken("!!!").ok());
  EXPECT_FALSE(DecodePageToken("e30=").ok());  // {}
}

}  // namespace
}  // namespace abgate::registry
