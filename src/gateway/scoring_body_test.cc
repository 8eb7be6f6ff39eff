#include "gateway/scoring_body.h"

#include <string>

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace abgate::gateway {
namespace {

namespace json = boost::json;
using Error = ScoringBody::Error;

struct Read {
  ScoringBody result;
  std::string body;  // after the read (the unit cut out)
};

Read ReadBody(std::string body, std::string_view field = "user_id") {
  ScoringBody r = ReadScoringBody(body, field);
  return {std::move(r), std::move(body)};
}

TEST(ScoringBodyTest, CutsTheUnitAndForwardsTheRestByteForByte) {
  auto r = ReadBody(R"({"user_id":"u-1","dataframe_split":{"columns":["a"],"data":[[1.50, 2e3]]}})");
  ASSERT_EQ(r.result.error, Error::kNone) << r.result.message;
  EXPECT_TRUE(r.result.has_unit);
  EXPECT_EQ(r.result.unit, "u-1");
  // Numbers stay as sent (1.50, 2e3): nothing is re-serialised.
  EXPECT_EQ(r.body, R"({"dataframe_split":{"columns":["a"],"data":[[1.50, 2e3]]}})");
}

TEST(ScoringBodyTest, CutsTheUnitWhereverItIs) {
  EXPECT_EQ(ReadBody(R"({"inputs":[1],"user_id":"u"})").body, R"({"inputs":[1]})");
  EXPECT_EQ(ReadBody(R"( { "inputs" : [1] , "user_id" : "u" , "x" : {"user_id": 2} } )").body,
            R"( { "inputs" : [1],"x" : {"user_id": 2} } )");
  EXPECT_EQ(ReadBody(R"({"a":"}\"{","user_id":7,"inputs":[[1]]})").body, R"({"a":"}\"{","inputs":[[1]]})");
  // Duplicates: every top-level copy goes; the last one is the unit (as a JSON object keeps it).
  auto r = ReadBody(R"({"user_id":"first","inputs":[1],"user_id":"last"})");
  EXPECT_EQ(r.result.unit, "last");
  EXPECT_EQ(r.body, R"({"inputs":[1]})");
}

TEST(ScoringBodyTest, EveryResultParsesToTheScoringPayload) {
  for (const std::string body : {R"({"user_id":"u","inputs":[1]})", R"({"inputs":[1],"user_id":"u"})",
                                 R"({"user_id":"u","inputs":[1],"user_id":"v","b":null})",
                                 "{\n  \"user_id\": 12,\n  \"inputs\": [1]\n}\n", R"({"us\u0065r_id":"u","inputs":[1]})"}) {
    auto r = ReadBody(body);
    ASSERT_EQ(r.result.error, Error::kNone) << body;
    json::error_code ec;
    const json::value v = json::parse(r.body, ec);
    ASSERT_FALSE(ec) << body << " -> " << r.body;
    EXPECT_FALSE(v.as_object().contains("user_id")) << body << " -> " << r.body;
    EXPECT_TRUE(v.as_object().contains("inputs")) << body << " -> " << r.body;
  }
}

TEST(ScoringBodyTest, UnitTypes) {
  EXPECT_EQ(ReadBody(R"({"user_id":42,"inputs":[1]})").result.unit, "42");
  EXPECT_EQ(ReadBody(R"({"user_id":-7,"inputs":[1]})").result.unit, "-7");
  EXPECT_EQ(ReadBody(R"({"user_id":18446744073709551615,"inputs":[1]})").result.unit, "18446744073709551615");
  EXPECT_EQ(ReadBody(R"({"user_id":"a\"b\u00e9","inputs":[1]})").result.unit, "a\"b\xc3\xa9");
  auto null_unit = ReadBody(R"({"user_id":null,"inputs":[1]})");
  EXPECT_FALSE(null_unit.result.has_unit);
  EXPECT_EQ(null_unit.body, R"({"inputs":[1]})");
  auto none = ReadBody(R"({"inputs":[1]})");
  EXPECT_FALSE(none.result.has_unit);
  EXPECT_EQ(none.body, R"({"inputs":[1]})");
  // No unit field configured: nothing is cut.
  EXPECT_EQ(ReadBody(R"({"user_id":"u","inputs":[1]})", "").body, R"({"user_id":"u","inputs":[1]})");
  // A nested member of that name is not the unit.
  EXPECT_FALSE(ReadBody(R"({"inputs":[{"user_id":"u"}]})").result.has_unit);
  EXPECT_EQ(ReadBody(std::string(R"({"user_id":")") + std::string(512, 'x') + R"(","inputs":[1]})").result.unit.size(),
            512u);
}

TEST(ScoringBodyTest, RefusesWhatTheModelCannotTake) {
  struct Case {
    std::string body;
    Error error;
  };
  const Case cases[] = {
      {"", Error::kMalformedJson},
      {R"({"user_id": "u1", )", Error::kMalformedJson},
      {R"({"inputs":[1]} x)", Error::kMalformedJson},
      {"{\"user_id\":\"\xff\xfe\",\"inputs\":[1]}", Error::kInvalidUtf8},
      {"[1, 2]", Error::kNotObject},
      {"42", Error::kNotObject},
      {R"({"user_id":"u","data":[1]})", Error::kScoringKeys},
      {R"({"inputs":[1],"instances":[1]})", Error::kScoringKeys},
      {R"({"user_id":{"a":1},"inputs":[1]})", Error::kInvalidUnit},
      {R"({"user_id":true,"inputs":[1]})", Error::kInvalidUnit},
      {R"({"user_id":1.5,"inputs":[1]})", Error::kInvalidUnit},
      {R"({"user_id":"","inputs":[1]})", Error::kInvalidUnit},
      {R"({"user_id":["u"],"inputs":[1]})", Error::kInvalidUnit},
      {std::string(R"({"user_id":")") + std::string(513, 'x') + R"(","inputs":[1]})", Error::kInvalidUnit},
      {std::string(300, '[') + std::string(300, ']'), Error::kMalformedJson},  // deeper than 256
  };
  for (const auto& c : cases) {
    auto r = ReadBody(c.body);
    EXPECT_EQ(r.result.error, c.error) << c.body;
    EXPECT_FALSE(r.result.message.empty()) << c.body;
    EXPECT_EQ(r.body, c.body) << "a refused body is left as it was";
  }
  EXPECT_EQ(ReadBody(R"({"inputs":[1],"instances":[1]})").result.message,
            "the input must be a JSON object with exactly one of the fields dataframe_split, dataframe_records, "
            "instances, inputs; received [instances, inputs]");
  EXPECT_EQ(ReadBody("[1]").result.message,
            "the input must be a JSON object with exactly one of the fields dataframe_split, dataframe_records, "
            "instances, inputs; received a list");
}

}  // namespace
}  // namespace abgate::gateway
