#include "assign/bucketer.h"

#include <fstream>
#include <sstream>

#include <boost/json.hpp>

#include "assign/golden_test_util.h"
#include "gtest/gtest.h"
#include "testing/test_paths.h"

namespace abgate::assign {
namespace {

namespace json = boost::json;

using testing::ToRanges;

json::value LoadCases() { return json::parse(testing::ReadFile(std::string(ABGATE_TEST_DATA_DIR) + "/assign/growthbook_cases.json")); }

TEST(BucketerTest, GetBucketRangesMatchesGrowthBookCases) {
  const auto cases = LoadCases();
  for (const auto& row : cases.at("getBucketRange").as_array()) {
    const auto& r = row.as_array();
    const auto& args = r[1].as_array();
    std::vector<double> weights;
    if (!args[2].is_null()) {
      for (const auto& w : args[2].as_array()) weights.push_back(w.to_number<double>());
    }
    const auto got = GetBucketRanges(static_cast<int>(args[0].as_int64()),
                                     args[1].to_number<double>(), weights);
    const auto want = ToRanges(r[2]);
    ASSERT_EQ(got.size(), want.size()) << r[0].as_string();
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_NEAR(got[i].start, want[i].start, 1e-9) << r[0].as_string();
      EXPECT_NEAR(got[i].end, want[i].end, 1e-9) << r[0].as_string();
    }
  }
}

TEST(BucketerTest, ChooseVariationMatchesGrowthBookCases) {
  const auto cases = LoadCases();
  int n = 0;
  for (const auto& row : cases.at("chooseVariation").as_array()) {
    const auto& r = row.as_array();
    EXPECT_EQ(ChooseVariation(r[1].to_number<double>(), ToRanges(r[2])), r[3].as_int64())
        << r[0].as_string();
    ++n;
  }
  EXPECT_EQ(n, 13);
}

}  // namespace
}  // namespace abgate::assign
