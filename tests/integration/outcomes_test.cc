// POST /outcomes: durable acknowledgement, per-line validation, idempotency.
#include <chrono>

#include <boost/json.hpp>

#include "gateway_fixture.h"

namespace abgate::testing {
namespace {

namespace json = boost::json;

class OutcomesTest : public GatewayFixture {
 protected:
  void SetUp() override {
    GatewayFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    std::string yaml = ConfigYaml("    metrics:\n      - {name: booked, type: binary, primary: true}\n"
                                  "      - {name: revenue, type: continuous, cuped: {covariate: pre_revenue}}\n");
    yaml.replace(yaml.find("  flush_ms: 5\n"), 13, "  flush_ms: 5\n  max_outcome_batch: 50\n");
    StartGateway(yaml);
  }
  RawResponse Post(std::string_view body, std::string_view content_type = "application/x-ndjson") {
    return RawRequest(gateway_->port(), "POST", "/outcomes", body, content_type);
  }
};

TEST_F(OutcomesTest, OneObjectIsStoredBeforeTheReply) {
  const auto r = Post(R"({"experiment":"hyatt_booking_ab","unit_id":"u1","metric":"booked","value":true})",
                      "application/json");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto v = json::parse(r.body);
  EXPECT_EQ(v.at("accepted"), 1);
  EXPECT_EQ(v.at("stored"), 1);
  EXPECT_TRUE(v.at("rejected").as_array().empty());
  // No flush: the reply came after the commit.
  EXPECT_EQ(QueryIntNoFlush("SELECT count(*) FROM outcomes WHERE unit_id = 'u1' AND metric = 'booked' AND value = 1"), 1);
}

TEST_F(OutcomesTest, JsonLinesKeepValidLinesAndExplainRejectedOnes) {
  const std::string body =
      R"({"experiment":"hyatt_booking_ab","request_id":"r1","metric":"booked","value":1,"ts":1790000000.5})" "\n"
      R"({"experiment":"nope","unit_id":"u2","metric":"booked","value":1})" "\n"
      R"({"experiment":"hyatt_booking_ab","unit_id":"u3","metric":"clicks","value":1})" "\n"
      R"({"experiment":"hyatt_booking_ab","unit_id":"u4","metric":"booked","value":2})" "\n"
      R"({"experiment":"hyatt_booking_ab","metric":"booked","value":1})" "\n"
      R"({"experiment":"hyatt_booking_ab","unit_id":"u6","metric":"booked"})" "\n"
      R"({"experiment":"hyatt_booking_ab","unit_id":"u7","metric":"revenue","value":"12"})" "\n"
      R"({"experiment":"hyatt_booking_ab","unit_id":"u8","metric":"revenue",)" "\n"
      "\n"
      R"({"experiment":"hyatt_booking_ab","unit_id":42,"metric":"revenue","value":180.5})" "\n";
  const auto r = Post(body);
  ASSERT_EQ(r.status, 200) << r.body;
  const auto v = json::parse(r.body);
  EXPECT_EQ(v.at("accepted"), 2);
  EXPECT_EQ(v.at("stored"), 2);
  std::map<int64_t, std::string> codes;
  for (const auto& x : v.at("rejected").as_array()) codes[x.at("line").as_int64()] = std::string(x.at("error_code").as_string());
  const std::map<int64_t, std::string> expected = {{2, "UNKNOWN_EXPERIMENT"}, {3, "UNKNOWN_METRIC"}, {4, "INVALID_VALUE"},
                                                   {5, "MISSING_KEY"},        {6, "MISSING_KEY"},    {7, "INVALID_VALUE"},
                                                   {8, "MALFORMED_JSON"}};
  EXPECT_EQ(codes, expected);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM outcomes"), 2);
  EXPECT_EQ(QueryInt("SELECT ts FROM outcomes WHERE request_id = 'r1'"), 1790000000500000);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM outcomes WHERE unit_id = '42' AND value = 180.5"), 1);
}

// Issue 14: numbers that Boost.JSON reads as NaN (0e400) or infinity (1e400) are refused per
// line like any bad field. outcomes_fuzz found a "ts" of 0e1700100000: NaN passed the range
// check and its conversion to microseconds was undefined (a stored stamp of INT64_MIN).
TEST_F(OutcomesTest, NonFiniteTimestampsAndValuesAreRejected) {
  const std::string head = R"({"experiment":"hyatt_booking_ab","unit_id":"u1","metric":"booked",)";
  const std::string body = head + R"("value":1,"ts":0e400})" "\n" +
                           head + R"("value":1,"ts":0e1700100000})" "\n" +
                           head + R"("value":1,"ts":1e400})" "\n" +
                           head + R"("value":1,"ts":-1e400})" "\n" +
                           head + R"("value":0e400})" "\n" +
                           head + R"("value":1e400})" "\n";
  const auto r = Post(body);
  ASSERT_EQ(r.status, 400) << r.body;
  const auto v = json::parse(r.body);
  EXPECT_EQ(v.at("error_code"), "NO_VALID_OUTCOMES");
  std::map<int64_t, std::string> codes;
  for (const auto& x : v.at("rejected").as_array()) codes[x.at("line").as_int64()] = std::string(x.at("error_code").as_string());
  const std::map<int64_t, std::string> expected = {{1, "INVALID_FIELD"}, {2, "INVALID_FIELD"}, {3, "INVALID_FIELD"},
                                                   {4, "INVALID_FIELD"}, {5, "INVALID_VALUE"}, {6, "INVALID_VALUE"}};
  EXPECT_EQ(codes, expected);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM outcomes"), 0);
}

// Issue 18: a CUPED covariate (a pre-period value such as last year's revenue, stamped before the
// exposure) is accepted like the metrics that name it; other undeclared metrics are not.
TEST_F(OutcomesTest, ACupedCovariateIsAcceptedLikeTheMetricsThatNameIt) {
  const auto r = Post(R"({"experiment":"hyatt_booking_ab","unit_id":"u1","metric":"pre_revenue","value":310.5,"ts":1700000000})"
                      "\n"
                      R"({"experiment":"hyatt_booking_ab","unit_id":"u1","metric":"pre_clicks","value":3})" "\n");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto v = json::parse(r.body);
  EXPECT_EQ(v.at("stored"), 1);
  ASSERT_EQ(v.at("rejected").as_array().size(), 1u);
  EXPECT_EQ(v.at("rejected").at(0).at("error_code"), "UNKNOWN_METRIC");
  EXPECT_EQ(QueryInt("SELECT count(*) FROM outcomes WHERE metric = 'pre_revenue' AND ts = 1700000000000000"), 1);
}

TEST_F(OutcomesTest, ARetriedBatchIsStoredOnce) {
  std::string body;
  for (int i = 0; i < 20; ++i) {
    body += R"({"experiment":"hyatt_booking_ab","unit_id":"u)" + std::to_string(i) +
            R"(","metric":"booked","value":1,"event_id":"evt-)" + std::to_string(i) + "\"}\n";
  }
  auto first = json::parse(Post(body).body);
  EXPECT_EQ(first.at("stored"), 20);
  auto retry = json::parse(Post(body).body);
  EXPECT_EQ(retry.at("accepted"), 20);
  EXPECT_EQ(retry.at("stored"), 0);
  EXPECT_EQ(retry.at("duplicates"), 20);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM outcomes"), 20);
}

TEST_F(OutcomesTest, BadRequestsAreRefusedWithoutStoringAnything) {
  auto r = Post(R"({"experiment":"nope","unit_id":"u","metric":"booked","value":1})", "application/json");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(json::parse(r.body).at("error_code"), "NO_VALID_OUTCOMES");
  EXPECT_EQ(Post("{}", "text/plain").status, 415);
  EXPECT_EQ(Post("").status, 400);
  EXPECT_EQ(Post("[1, 2]", "application/json").status, 400);
  std::string many;
  for (int i = 0; i < 51; ++i) many += R"({"experiment":"hyatt_booking_ab","unit_id":"u","metric":"booked","value":1})" "\n";
  r = Post(many);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json::parse(r.body).at("error_code"), "BATCH_TOO_LARGE");
  EXPECT_EQ(Post("{\"experiment\":\"\xff\"}\nnot json\n").status, 400);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM outcomes"), 0);
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

TEST_F(OutcomesTest, ResultsEndpointAnalysesWhatTheGatewayServedAndCollected) {
  EXPECT_EQ(Admin("GET", "/api/v1/experiments/hyatt_booking_ab/results").status, 404);  // no exposures yet
  std::string outcomes;
  for (int i = 0; i < 200; ++i) {
    const auto r = Predict(R"({"user_id":"r)" + std::to_string(i) + R"(","inputs":[[1]]})");
    ASSERT_EQ(r.status, 200);
    if (i % 3 == 0) {
      outcomes += R"({"experiment":"hyatt_booking_ab","request_id":")" + r.headers.at("x-request-id") +
                  R"(","metric":"booked","value":1})" "\n";
    }
    if (i % 100 == 99) {  // this fixture allows 50 lines per request
      ASSERT_EQ(Post(outcomes).status, 200);
      outcomes.clear();
    }
  }
  const auto r = Admin("GET", "/api/v1/experiments/hyatt_booking_ab/results");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto report = json::parse(r.body);
  const auto& arms = report.at("arms").as_array();
  ASSERT_EQ(arms.size(), 2u);
  EXPECT_EQ(arms[0].at("units").as_int64() + arms[1].at("units").as_int64(), 200);
  double booked = 0;
  for (const auto& a : arms) booked += a.at("metrics").at("booked").at("mean").as_double() * a.at("units").to_number<double>();
  EXPECT_NEAR(booked, 67, 1e-6);  // attributed by request id
  EXPECT_TRUE(report.at("decision").as_object().contains("action"));
  EXPECT_EQ(Admin("GET", "/api/v1/experiments/nope/results").status, 404);
}

// Issue 14 item 7: with `outcomes.token_env`, POST /outcomes needs the bearer token; outcomes
// stamped beyond `outcomes.max_future` are refused line by line, the rest stored.
class OutcomesTokenTest : public GatewayFixture {
 protected:
  void SetUp() override {
    GatewayFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ::setenv("ABGATE_TEST_OUTCOMES_TOKEN", "outcome-secret", 1);
    std::string yaml = ConfigYaml("    metrics:\n      - {name: booked, type: binary, primary: true}\n");
    yaml.insert(yaml.find("experiments:"), "outcomes: {token_env: ABGATE_TEST_OUTCOMES_TOKEN, max_future: 2m}\n");
    StartGateway(yaml);
  }
  RawResponse Post(std::string_view body, std::string_view auth) {
    return RawRequest(gateway_->port(), "POST", "/outcomes", body, "application/x-ndjson",
                      auth.empty() ? std::string() : "Authorization: " + std::string(auth) + "\r\n");
  }
};

TEST_F(OutcomesTokenTest, OutcomesNeedTheTokenAndFutureStampsAreRefused) {
  const std::string one = R"({"experiment":"hyatt_booking_ab","unit_id":"u1","metric":"booked","value":1})";
  for (std::string_view auth : {"", "Bearer wrong", "Bearer outcome-secre", "Bearer outcome-secret2", "Basic b3V0Y29tZQ=="}) {
    const auto r = Post(one, auth);
    EXPECT_EQ(r.status, 401) << auth;
    EXPECT_NE(r.body.find("UNAUTHENTICATED"), std::string::npos);
  }
  EXPECT_EQ(QueryInt("SELECT count(*) FROM outcomes"), 0);

  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string body =
      one + "\n" +
      R"({"experiment":"hyatt_booking_ab","unit_id":"u2","metric":"booked","value":1,"ts":)" + std::to_string(now_s + 60) + "}\n" +
      R"({"experiment":"hyatt_booking_ab","unit_id":"u3","metric":"booked","value":1,"ts":)" + std::to_string(now_s + 86400) + "}\n";
  const auto r = Post(body, "Bearer outcome-secret");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto v = json::parse(r.body);
  EXPECT_EQ(v.at("accepted"), 2);
  ASSERT_EQ(v.at("rejected").as_array().size(), 1u) << r.body;
  EXPECT_EQ(v.at("rejected").at(0).at("line"), 3);
  EXPECT_EQ(v.at("rejected").at(0).at("error_code"), "TS_IN_FUTURE");
  EXPECT_EQ(QueryInt("SELECT count(*) FROM outcomes"), 2);
}

TEST_F(OutcomesTokenTest, AMissingTokenVariableStopsTheGatewayFromStarting) {
  ::unsetenv("ABGATE_TEST_OUTCOMES_TOKEN");
  std::string yaml = ConfigYaml();
  yaml.insert(yaml.find("experiments:"), "outcomes: {token_env: ABGATE_TEST_OUTCOMES_TOKEN}\n");
  auto config = config::ParseGatewayConfig(yaml);
  ASSERT_TRUE(config.ok()) << config.status();
  auto gw = gateway::Gateway::Create(*std::move(config), common::SystemClock::Get());
  ASSERT_FALSE(gw.ok());
  EXPECT_NE(gw.status().message().find("ABGATE_TEST_OUTCOMES_TOKEN is not set"), std::string::npos) << gw.status();
}

}  // namespace
}  // namespace abgate::testing
