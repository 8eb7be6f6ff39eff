// Data-plane integration tests: a real gateway (port 0) in front of real HTTP upstreams.
#include <chrono>
#include <thread>

#include <boost/json.hpp>

#include "analysis/holdout.h"
#include "assign/allocation.h"
#include "assign/eligibility.h"
#include "assign/hash.h"
#include "analysis/analysis.h"
#include "gateway_fixture.h"
#include "testing/tls_proxy.h"

namespace abgate::testing {
namespace {

namespace json = boost::json;

std::string Body(std::string_view user) {
  return "{\"user_id\":\"" + std::string(user) + "\",\"dataframe_split\":{\"columns\":[\"x\"],\"data\":[[1]]}}";
}

class GatewayTest : public GatewayFixture {};

TEST_F(GatewayTest, SplitsTenThousandUnitsWithinToleranceLikeTheAssignFunction) {
  StartGateway(ConfigYaml());
  const auto allocation = *assign::Allocation::Create({80, 20}, 1.0);
  const assign::SeededHasher hasher("hyatt_booking_ab");
  RawConnection c(gateway_->port());
  int b = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::string user = "user-" + std::to_string(i);
    const std::string body = Body(user);
    ASSERT_TRUE(c.Send("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
    const auto r = c.Read();
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string arm = r.headers.at("x-abgate-arm");
    const int expected = allocation.ArmForBucket(hasher.Bucket(user), 0);
    ASSERT_EQ(arm, expected == 0 ? "A" : "B") << user;
    b += arm == "B";
  }
  // Binomial(10000, 0.2): sd 40; allow 4 sd.
  EXPECT_NEAR(b, 2000, 160);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE arm = 'B'"), b);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures"), 10000);
}

TEST_F(GatewayTest, SameUnitGetsTheSameArmFromBodyOrHeader) {
  StartGateway(ConfigYaml("", "50, 50"));
  for (int u = 0; u < 50; ++u) {
    const std::string user = "sticky-" + std::to_string(u);
    const std::string first = Predict(Body(user)).headers["x-abgate-arm"];
    for (int k = 0; k < 3; ++k) EXPECT_EQ(Predict(Body(user)).headers["x-abgate-arm"], first);
    auto via_header = Predict(R"({"instances":[[1]]})", "/predict", "X-User-Id: " + user + "\r\n");
    EXPECT_EQ(via_header.headers["x-abgate-arm"], first);
  }
}

TEST_F(GatewayTest, RepliesWithArmVersionRequestIdAndPredictions) {
  StartGateway(ConfigYaml("", "0, 100"));
  auto r = Predict(Body("u1"), "/predict", "X-Request-Id: client-req-1\r\n");
  ASSERT_EQ(r.status, 200);
  const auto v = json::parse(r.body).as_object();
  EXPECT_EQ(v.at("model_group"), "B");
  EXPECT_EQ(v.at("model_version"), "8");
  EXPECT_EQ(v.at("request_id"), "client-req-1");
  EXPECT_EQ(r.headers.at("x-request-id"), "client-req-1");
  EXPECT_EQ(r.headers.at("x-abgate-model-version"), "8");
  EXPECT_DOUBLE_EQ(v.at("predictions").as_array()[0].as_double(), 0.75);
  // The model receives the scoring payload without the unit field.
  EXPECT_EQ(json::parse(model_b_->last_body()), json::parse(R"({"dataframe_split":{"columns":["x"],"data":[[1]]}})"));
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE request_id = 'client-req-1' AND unit_id = 'u1' "
                     "AND arm = 'B' AND model_version = '8' AND status = 200 AND score = 0.75 AND "
                     "model_name = 'hyatt_booking_model' AND routing_mode = 'user_hash' AND unit_random = 0"),
            1);
}

TEST_F(GatewayTest, InvocationsIsAnMlflowDropIn) {
  StartGateway(ConfigYaml("", "100, 0"));
  const auto r = Predict(R"({"inputs": [[1, 2]]})", "/invocations");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"predictions\": [0.250000]}");  // upstream bytes unchanged
  EXPECT_EQ(r.headers.at("x-abgate-arm"), "A");
  // text/csv goes through to the model as-is; the unit comes from the header.
  const auto csv = RawRequest(gateway_->port(), "POST", "/invocations", "x\n1\n", "text/csv", "X-User-Id: u9\r\n");
  EXPECT_EQ(csv.status, 200);
  EXPECT_EQ(model_a_->last_body(), "x\n1\n");
  EXPECT_EQ(model_a_->last_content_type(), "text/csv");
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE unit_id = 'u9'"), 1);
}

TEST_F(GatewayTest, MissingUnitIsRandomAndFlagged) {
  StartGateway(ConfigYaml("", "50, 50"));
  int b = 0;
  for (int i = 0; i < 400; ++i) b += Predict(R"({"instances":[[1]]})").headers["x-abgate-arm"] == "B";
  EXPECT_GT(b, 140);  // Binomial(400, 0.5): sd 10
  EXPECT_LT(b, 260);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE unit_random = 1 AND unit_id IS NULL"), 400);
}

TEST_F(GatewayTest, RequestRandomModeIgnoresTheUnitForAssignment) {
  StartGateway(ConfigYaml("    routing_mode: request_random\n", "50, 50"));
  std::set<std::string> arms;
  for (int i = 0; i < 60; ++i) arms.insert(Predict(Body("same-user")).headers["x-abgate-arm"]);
  EXPECT_EQ(arms.size(), 2u);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE unit_random = 0 AND unit_id = 'same-user'"), 60);
}

TEST_F(GatewayTest, CoverageSendsOthersToControlOutsideTheExperiment) {
  StartGateway(ConfigYaml("    coverage: 0.5\n", "50, 50"));
  for (int i = 0; i < 300; ++i) ASSERT_EQ(Predict(Body("cov-" + std::to_string(i))).status, 200);
  const int64_t outside = QueryInt("SELECT count(*) FROM exposures WHERE in_experiment = 0");
  EXPECT_GT(outside, 100);
  EXPECT_LT(outside, 200);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE in_experiment = 0 AND arm <> 'A'"), 0);
}

// A second experiment after the fixture's, on the same two upstreams.
std::string SecondExperiment(const std::string& name, const std::string& extra, int port_a, int port_b) {
  return "  - name: " + name + "\n    unit: {field: user_id}\n    control: A\n" + extra +
         "    arms:\n      - {name: A, version: '7', weight: 50, upstream: 'http://127.0.0.1:" + std::to_string(port_a) +
         "/invocations'}\n      - {name: B, version: '8', weight: 50, upstream: 'http://127.0.0.1:" +
         std::to_string(port_b) + "/invocations'}\n";
}

TEST_F(GatewayTest, NamespaceRangesKeepExperimentsApartAsGrowthBookDoes) {
  const std::string yaml =
      ConfigYaml("    namespace: {name: ranking, range: [0, 0.5]}\n", "50, 50") +
      SecondExperiment("ranking_v2", "    namespace: {name: ranking, range: [0.5, 1]}\n", model_a_->port(),
                       model_b_->port());
  StartGateway(yaml);
  const assign::NamespaceRange first{"ranking", 0, 0.5};
  for (int i = 0; i < 200; ++i) {
    const std::string user = "ns-" + std::to_string(i);
    ASSERT_EQ(Predict(Body(user)).status, 200);
    ASSERT_EQ(Predict(Body(user), "/predict/ranking_v2").status, 200);
  }
  // Each unit is in exactly one of the two experiments, the one GrowthBook's inNamespace says.
  int in_first = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string user = "ns-" + std::to_string(i);
    const bool expected = assign::InNamespace(first, user);
    in_first += expected;
    EXPECT_EQ(QueryInt("SELECT in_experiment FROM exposures WHERE experiment = 'hyatt_booking_ab' AND unit_id = '" + user + "'"),
              expected ? 1 : 0) << user;
    EXPECT_EQ(QueryInt("SELECT in_experiment FROM exposures WHERE experiment = 'ranking_v2' AND unit_id = '" + user + "'"),
              expected ? 0 : 1) << user;
  }
  EXPECT_GT(in_first, 60);
  EXPECT_LT(in_first, 140);
  // Outside the range: control, not analysed.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE in_experiment = 0 AND arm <> 'A'"), 0);
  // An overlapping running experiment is refused, by create and by patch, with the reason.
  auto r = Admin("POST", "/api/v1/experiments",
                 R"({"name": "ranking_v3", "namespace": {"name": "ranking", "range": [0.4, 0.6]}, "control": "A",
                     "arms": [{"name": "A", "weight": 1, "upstream": "http://127.0.0.1:)" + std::to_string(model_a_->port()) +
                     R"(/invocations"}]})");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("overlaps experiment"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("FAILED_PRECONDITION"), std::string::npos) << r.body;
  r = Admin("PATCH", "/api/v1/experiments/ranking_v2", R"({"namespace": {"range": [0.3, 1]}})");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_NE(r.body.find("ranking_v2's range [0.3, 1) overlaps experiment hyatt_booking_ab's [0, 0.5)"), std::string::npos)
      << r.body;
  // Stopping one frees its range.
  ASSERT_EQ(Admin("POST", "/api/v1/experiments/ranking_v2/stop").status, 200);
  r = Admin("PATCH", "/api/v1/experiments/ranking_v2", R"({"namespace": {"range": [0.3, 1]}})");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Admin("POST", "/api/v1/experiments/ranking_v2/resume").status, 409);  // would overlap again
}

TEST_F(GatewayTest, HoldoutKeepsTheSameUnitsOutOfEveryExperimentAcrossRestarts) {
  const std::string yaml = "holdout: {percent: 20}\n" + ConfigYaml("", "50, 50") +
                           SecondExperiment("second", "", model_a_->port(), model_b_->port());
  const assign::Holdout holdout("abgate-holdout", 20);
  int held = 0;
  for (int round = 0; round < 2; ++round) {  // the second round runs on a restarted gateway
    StartGateway(yaml);
    for (int i = 0; i < 150; ++i) {
      const std::string user = "h-" + std::to_string(i);
      for (const char* target : {"/predict", "/predict/second"}) {
        const auto r = Predict(Body(user), target);
        ASSERT_EQ(r.status, 200);
        if (holdout.Contains(user)) {
          EXPECT_EQ(r.headers.at("x-abgate-arm"), "A") << user;
        }
      }
      held += round == 0 && holdout.Contains(user);
    }
    gateway_->Shutdown();
    gateway_.reset();
  }
  gateway_.reset();
  StartGateway(yaml);
  EXPECT_GT(held, 15);
  EXPECT_LT(held, 50);
  // Every held-out unit's exposures, in both experiments and both runs, are flagged and out of
  // the analysis; nobody else's are.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE routing_mode = 'holdout'"), held * 4);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE routing_mode = 'holdout' AND (in_experiment = 1 OR arm <> 'A')"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE in_experiment = 0"), held * 4);
}

// Issue 18 item 4: `analyze --holdout` on a store the gateway wrote. Held-out users book at 15%,
// everyone else at 40% (the launched models' cumulative effect, by construction); both groups
// are read across the two experiments, outcomes arrive through POST /outcomes.
TEST_F(GatewayTest, HoldoutAnalysisComparesTheHoldoutWithEveryoneElse) {
  StartGateway("holdout: {percent: 20}\n" + ConfigYaml("", "50, 50") +
               SecondExperiment("second", "", model_a_->port(), model_b_->port()));
  const assign::Holdout holdout("abgate-holdout", 20);
  int held = 0, held_booked = 0, rest_booked = 0;
  std::string outcomes;
  const int users = 600;
  // A booking's revenue is reported to every experiment the user is in (the rest: both; the
  // holdout: its own), by event_id or by the same client timestamp: counted once per user.
  const std::string later = std::to_string(
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() + 1.5);
  for (int i = 0; i < users; ++i) {
    const std::string user = "ho-" + std::to_string(i);
    for (const char* target : {"/predict", "/predict/second"}) ASSERT_EQ(Predict(Body(user), target).status, 200);
    const bool out = holdout.Contains(user);
    const bool booked = out ? i % 20 < 3 : i % 20 < 8;
    held += out;
    (out ? held_booked : rest_booked) += booked;
    outcomes += R"({"experiment": "hyatt_booking_ab", "metric": "booked", "unit_id": ")" + user + R"(", "value": )" +
                (booked ? "1" : "0") + "}\n";
    if (!booked) continue;
    const std::string same = i % 2 ? R"(, "event_id": "rev-)" + user + "\"" : R"(, "ts": )" + later;
    for (const char* e : {"hyatt_booking_ab", "second"}) {
      if (out && std::string_view(e) == "second") continue;
      outcomes += std::string(R"({"experiment": ")") + e + R"(", "metric": "revenue", "unit_id": ")" + user +
                  R"(", "value": 100)" + same + "}\n";
    }
  }
  // In batches under the fixture's 64 KB body limit, cut at line ends.
  for (size_t from = 0; from < outcomes.size();) {
    const size_t cut = outcomes.size() - from <= 60000 ? outcomes.size() : outcomes.rfind('\n', from + 60000) + 1;
    const auto posted =
        RawRequest(gateway_->port(), "POST", "/outcomes", outcomes.substr(from, cut - from), "application/x-ndjson");
    ASSERT_EQ(posted.status, 200) << posted.body;
    from = cut;
  }
  gateway_->FlushEventsForTest();
  ASSERT_GT(held, 60);

  auto input = analysis::ReadHoldout(store_->uri(), {.percent = 20});
  ASSERT_TRUE(input.ok()) << input.status();
  auto report = analysis::Analyze(*input);
  ASSERT_TRUE(report.ok()) << report.status();
  const auto* h = report->Arm(analysis::kHoldoutArm);
  const auto* rest = report->Arm(analysis::kEveryoneElseArm);
  ASSERT_TRUE(h && rest);
  EXPECT_EQ(h->units, held);
  EXPECT_EQ(rest->units, users - held);
  EXPECT_EQ(h->exposures, 2 * held);  // both experiments
  EXPECT_DOUBLE_EQ(*h->Metric("booked")->mean, static_cast<double>(held_booked) / held);
  EXPECT_DOUBLE_EQ(*rest->Metric("booked")->mean, static_cast<double>(rest_booked) / (users - held));
  // Before: the rest's revenue counted twice (it was reported to both experiments).
  EXPECT_DOUBLE_EQ(*h->Metric("revenue")->mean, 100.0 * held_booked / held);
  EXPECT_DOUBLE_EQ(*rest->Metric("revenue")->mean, 100.0 * rest_booked / (users - held));
  EXPECT_EQ(input->outcomes->duplicates, rest_booked);
  const auto* c = report->Comparison("booked", analysis::kEveryoneElseArm);
  ASSERT_TRUE(c && c->lift && c->lift_ci);
  EXPECT_GT(c->lift_ci->low, 0);
  EXPECT_LT(c->p_value, 0.01);
  EXPECT_TRUE(report->srm.checked);
  EXPECT_FALSE(report->srm.mismatch);
  const auto j = analysis::HoldoutToJson(*report, "all experiments", 20);
  EXPECT_EQ(j.at("metrics").at(0).at("metric"), "booked");
  EXPECT_EQ(j.at("metrics").at(0).at("holdout").at("n").as_int64(), held);
  EXPECT_EQ(j.at("metrics").at(0).at("lift").as_double(), *c->lift);
  EXPECT_TRUE(j.at("metrics").at(0).at("significant").as_bool());
  EXPECT_NE(analysis::RenderHoldoutText(*report, "all experiments", 20).find("everyone else vs the holdout"),
            std::string::npos);
  // One experiment's scope: the same units (every user was in both), its outcomes only.
  auto second = analysis::ReadHoldout(store_->uri(), {.experiment = "second", .metrics = {{"booked"}}});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->units.size(), static_cast<size_t>(users));
  EXPECT_EQ(second->outcomes->attributed, 0);
  // No held-out exposure in scope: a clear NotFound.
  EXPECT_EQ(analysis::ReadHoldout(store_->uri(), {.experiment = "nope"}).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(GatewayTest, FailingCandidateFallsBackToControlAndIsFlagged) {
  upstream_timeout_ = "300ms";  // B hangs below
  StartGateway(ConfigYaml("", "0, 100"));
  model_b_->set_mode(UpstreamMode::kServerError);
  auto r = Predict(Body("u1"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["x-abgate-arm"], "A");
  EXPECT_EQ(r.headers["x-abgate-fallback"], "true");
  EXPECT_EQ(json::parse(r.body).at("model_group"), "A");
  model_b_->set_mode(UpstreamMode::kHang);  // timeout → fallback too
  r = Predict(Body("u2"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["x-abgate-fallback"], "true");
  model_b_->set_mode(UpstreamMode::kNotJson);
  EXPECT_EQ(Predict(Body("u3")).headers["x-abgate-fallback"], "true");
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE fallback = 1 AND assigned_arm = 'B' AND arm = 'A'"), 3);
  const auto metrics = RawRequest(gateway_->port(), "GET", "/metrics", "", "");
  EXPECT_NE(metrics.body.find("abgate_fallbacks_total{experiment=\"hyatt_booking_ab\",arm=\"B\"} 3"),
            std::string::npos);
  // Issue 15: control's fallback work is counted apart from its own requests, and the
  // end-to-end latency is the assigned arm's (B), not control's.
  EXPECT_NE(metrics.body.find("abgate_requests_total{experiment=\"hyatt_booking_ab\",arm=\"A\",status=\"200\",fallback=\"true\"} 3"),
            std::string::npos) << metrics.body;
  EXPECT_EQ(metrics.body.find("abgate_requests_total{experiment=\"hyatt_booking_ab\",arm=\"A\",status=\"200\",fallback=\"false\"}"),
            std::string::npos);
  EXPECT_NE(metrics.body.find("abgate_request_duration_seconds_count{experiment=\"hyatt_booking_ab\",arm=\"B\",backend=\"upstream\"} 3"),
            std::string::npos);
  const auto health = json::parse(Admin("GET", "/api/v1/experiments/hyatt_booking_ab/health").body);
  EXPECT_EQ(health.at("arms").at(0).at("fallback_served"), 3);
}

TEST_F(GatewayTest, WithoutFallbackUpstreamFailuresAre502And504) {
  upstream_timeout_ = "300ms";  // B hangs below
  StartGateway(ConfigYaml("    fallback_to_control: false\n", "0, 100"));
  model_b_->set_mode(UpstreamMode::kServerError);
  auto r = Predict(Body("u1"));
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(json::parse(r.body).at("error_code"), "UPSTREAM_ERROR");
  model_b_->set_mode(UpstreamMode::kHang);
  r = Predict(Body("u1"));
  EXPECT_EQ(r.status, 504);
  EXPECT_EQ(json::parse(r.body).at("error_code"), "UPSTREAM_TIMEOUT");
  model_b_->Shutdown();  // connection refused
  r = Predict(Body("u1"));
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE status IN (502, 504)"), 3);
}

TEST_F(GatewayTest, UpstreamClientErrorsPassThrough) {
  StartGateway(ConfigYaml("", "0, 100"));
  model_b_->set_mode(UpstreamMode::kBadRequest);
  auto r = Predict(Body("u1"));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, R"({"error_code":"BAD_REQUEST","message":"schema"})");
  EXPECT_EQ(r.headers["x-abgate-arm"], "B");
  EXPECT_EQ(r.headers.count("x-abgate-fallback"), 0u);
}

struct BadInput {
  std::string name;
  std::string target;
  std::string content_type;
  std::string body;
  std::string extra_headers;
  int status;
  std::string error_code;
};

TEST_F(GatewayTest, EveryBadInputGetsA4xxJsonErrorAndTheConnectionSurvives) {
  StartGateway(ConfigYaml());
  const std::vector<BadInput> cases = {
      {"malformed JSON", "/predict", "application/json", "{\"user_id\": \"u1\", ", "", 400, "MALFORMED_JSON"},
      {"truncated JSON", "/predict", "application/json", "{\"instances\": [[1, 2", "", 400, "MALFORMED_JSON"},
      {"empty body", "/predict", "application/json", "", "", 400, "MALFORMED_JSON"},
      {"JSON array", "/predict", "application/json", "[1, 2, 3]", "", 400, "BAD_REQUEST"},
      {"JSON scalar", "/predict", "application/json", "42", "", 400, "BAD_REQUEST"},
      {"no scoring key", "/predict", "application/json", "{\"user_id\":\"u\",\"data\":[1]}", "", 400, "BAD_REQUEST"},
      {"two scoring keys", "/predict", "application/json", "{\"inputs\":[1],\"instances\":[1]}", "", 400, "BAD_REQUEST"},
      {"unit is an object", "/predict", "application/json", "{\"user_id\":{\"a\":1},\"inputs\":[1]}", "", 400, "INVALID_UNIT"},
      {"unit is a bool", "/predict", "application/json", "{\"user_id\":true,\"inputs\":[1]}", "", 400, "INVALID_UNIT"},
      {"unit is a float", "/predict", "application/json", "{\"user_id\":1.5,\"inputs\":[1]}", "", 400, "INVALID_UNIT"},
      {"unit is empty", "/predict", "application/json", "{\"user_id\":\"\",\"inputs\":[1]}", "", 400, "INVALID_UNIT"},
      {"unit is an array", "/predict", "application/json", "{\"user_id\":[\"u\"],\"inputs\":[1]}", "", 400, "INVALID_UNIT"},
      {"bad UTF-8 in body", "/predict", "application/json", "{\"user_id\":\"\xff\xfe\",\"inputs\":[1]}", "", 400, "INVALID_UTF8"},
      {"bad UTF-8 in unit header", "/predict", "application/json", "{\"inputs\":[1]}", "X-User-Id: \xc3\x28\r\n", 400, "INVALID_UNIT"},
      {"unknown experiment", "/predict/nope", "application/json", "{\"inputs\":[1]}", "", 404, "EXPERIMENT_NOT_FOUND"},
      {"text/plain", "/predict", "text/plain", "{\"inputs\":[1]}", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
      {"no content type", "/predict", "", "{\"inputs\":[1]}", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
      {"csv on /predict", "/predict", "text/csv", "x\n1\n", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
      {"latin-1 charset", "/invocations", "application/json; charset=latin-1", "{\"inputs\":[1]}", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
      {"MLflow 1.x format param", "/invocations", "application/json; format=pandas-split", "{\"inputs\":[1]}", "", 415, "UNSUPPORTED_MEDIA_TYPE"},
      {"unknown path", "/predictions", "application/json", "{}", "", 404, "ENDPOINT_NOT_FOUND"},
  };
  RawConnection c(gateway_->port());
  for (const auto& tc : cases) {
    std::string req = "POST " + tc.target + " HTTP/1.1\r\nHost: x\r\n";
    if (!tc.content_type.empty()) req += "Content-Type: " + tc.content_type + "\r\n";
    req += tc.extra_headers + "Content-Length: " + std::to_string(tc.body.size()) + "\r\n\r\n" + tc.body;
    ASSERT_TRUE(c.Send(req)) << tc.name;
    const auto r = c.Read();
    EXPECT_EQ(r.status, tc.status) << tc.name << ": " << r.body;
    boost::system::error_code ec;
    const auto v = json::parse(r.body, ec);
    ASSERT_FALSE(ec) << tc.name << ": reply is not JSON: " << r.body;
    EXPECT_EQ(v.at("error_code"), tc.error_code.c_str()) << tc.name;
    EXPECT_FALSE(v.at("message").as_string().empty()) << tc.name;
    EXPECT_FALSE(r.closed) << tc.name << ": connection was closed";
  }
  // The same keep-alive connection still serves a good request.
  const std::string ok = Body("after-bad-input");
  ASSERT_TRUE(c.Send("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                     std::to_string(ok.size()) + "\r\n\r\n" + ok));
  EXPECT_EQ(c.Read().status, 200);
  // Nothing that was refused reached the models or the exposure log.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures"), 1);
}

TEST_F(GatewayTest, OversizedBodiesAndHeadersGet413And431WithJson) {
  StartGateway(ConfigYaml());
  const std::string big = "{\"inputs\":[\"" + std::string(70000, 'x') + "\"]}";
  auto r = Predict(big);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(json::parse(r.body).at("error_code"), "PAYLOAD_TOO_LARGE");
  EXPECT_EQ(json::parse(r.body).at("message"), "request body exceeds 65536 bytes");  // it said 0
  const auto outcomes = RawRequest(gateway_->port(), "POST", "/outcomes", std::string(70000, '\n'), "application/x-ndjson");
  EXPECT_EQ(outcomes.status, 413);
  EXPECT_EQ(json::parse(outcomes.body).at("message"), "request body exceeds 65536 bytes") << outcomes.body;
  r = Predict(Body("u"), "/predict", "X-Junk: " + std::string(9000, 'j') + "\r\n");
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(json::parse(r.body).at("error_code"), "REQUEST_HEADER_FIELDS_TOO_LARGE");
  EXPECT_EQ(Predict(Body("u")).status, 200);  // the gateway is fine afterwards
}

TEST_F(GatewayTest, HealthReadyAndMetricsEndpoints) {
  StartGateway(ConfigYaml());
  EXPECT_EQ(RawRequest(gateway_->port(), "GET", "/healthz", "", "").status, 200);
  EXPECT_EQ(RawRequest(gateway_->port(), "GET", "/ping", "", "").status, 200);
  const auto ready = RawRequest(gateway_->port(), "GET", "/readyz", "", "");
  EXPECT_EQ(ready.status, 200);
  EXPECT_EQ(json::parse(ready.body).at("experiments"), 1);
  for (int i = 0; i < 20; ++i) Predict(Body("m" + std::to_string(i)));
  Predict("[]");
  auto m = RawRequest(gateway_->port(), "GET", "/metrics", "", "");
  EXPECT_EQ(m.status, 200);
  EXPECT_NE(m.headers["content-type"].find("text/plain"), std::string::npos);
  for (const char* needle :
       {"abgate_requests_total{experiment=\"hyatt_booking_ab\",arm=\"A\",status=\"200\",fallback=\"false\"}",
        "abgate_upstream_latency_seconds_bucket{experiment=\"hyatt_booking_ab\",arm=\"A\",le=\"+Inf\"}",
        "abgate_request_duration_seconds_bucket{experiment=\"hyatt_booking_ab\",arm=\"A\",backend=\"upstream\",le=\"+Inf\"}",
        "abgate_arm_info{experiment=\"hyatt_booking_ab\",arm=\"B\",backend=\"upstream\"} 1",
        "abgate_event_queue_depth ", "abgate_events_dropped_total 0", "abgate_fallbacks_total",
        "abgate_rejected_requests_total{route=\"/predict\",status=\"400\"} 1"}) {
    EXPECT_NE(m.body.find(needle), std::string::npos) << needle;
  }
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

TEST_F(GatewayTest, PayloadsAreStoredForAHashKeyedSampleOfUnits) {
  StartGateway(ConfigYaml("    payload_sample_rate: 0.25\n    payload_max_bytes: 40\n"));
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 400; ++i) {
      ASSERT_EQ(Predict(R"({"user_id":"pu)" + std::to_string(i) + R"(","inputs":[[1, 2, 3]]})").status, 200);
    }
  }
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures"), 800);  // counters stay exact
  const int64_t sampled_units = QueryInt("SELECT count(DISTINCT unit_id) FROM payloads");
  EXPECT_GT(sampled_units, 60);   // 25% of 400 = 100; sd ~8.7
  EXPECT_LT(sampled_units, 140);
  // A unit is sampled on every request or on none.
  EXPECT_EQ(QueryInt("SELECT count(*) FROM payloads"), 2 * sampled_units);
  // The request stored is the bytes the model received: the body without the unit member,
  // otherwise as sent (not re-serialised).
  EXPECT_EQ(QueryInt("SELECT count(*) FROM payloads WHERE truncated = 0 AND request = '{\"inputs\":[[1, 2, 3]]}' AND response LIKE '{\"predictions\": [%'"),
            2 * sampled_units);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM payloads p JOIN exposures e ON e.request_id = p.request_id"), 2 * sampled_units);
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

TEST_F(GatewayTest, ShadowTrafficScoresTheCandidateAndDiscardsItsReply) {
  // All traffic to A; every request also mirrored to B.
  StartGateway(ConfigYaml("    shadow: {arm: B, percent: 100}\n", "100, 0"));
  for (int i = 0; i < 50; ++i) {
    auto r = Predict(Body("shadow-" + std::to_string(i)));
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(json::parse(r.body).at("model_group"), "A");  // the shadow's reply never reaches the client
  }
  for (int i = 0; i < 100 && model_b_->hits() < 50; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(model_b_->hits(), 50);
  EXPECT_EQ(model_b_->last_content_type(), "application/json");
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE arm = 'A'"), 50);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM shadows WHERE arm = 'A' AND shadow_arm = 'B' AND score = 0.25 AND "
                     "shadow_score = 0.75 AND shadow_status = 200"),
            50);
  // The results carry the comparison: both scores on different sides of 0.5 for every request.
  auto results = Admin("GET", "/api/v1/experiments/hyatt_booking_ab/results");
  ASSERT_EQ(results.status, 200) << results.body;
  const auto shadow = json::parse(results.body).at("shadow").as_object();
  EXPECT_EQ(shadow.at("requests").to_number<int64_t>(), 50);
  EXPECT_EQ(shadow.at("disagreement").to_number<double>(), 1.0);
  EXPECT_EQ(shadow.at("shadow_failures").to_number<int64_t>(), 0);
  // With outcomes, the results pair the shadow with the served model on the same requests
  // (issue 18): the stand-ins' constant scores cannot be ranked, which the report says.
  std::string outcomes;
  for (int i = 0; i < 50; ++i) {
    outcomes += R"({"experiment": "hyatt_booking_ab", "metric": "booked", "unit_id": "shadow-)" + std::to_string(i) +
                R"(", "value": )" + (i % 5 == 0 ? "1" : "0") + "}\n";
  }
  ASSERT_EQ(RawRequest(gateway_->port(), "POST", "/outcomes", outcomes, "application/x-ndjson").status, 200);
  gateway_->FlushEventsForTest();
  results = Admin("GET", "/api/v1/experiments/hyatt_booking_ab/results");
  ASSERT_EQ(results.status, 200) << results.body;
  const auto evaluation = json::parse(results.body).at("shadow_evaluation").at(0).as_object();
  EXPECT_EQ(evaluation.at("arm"), "A");
  EXPECT_EQ(evaluation.at("shadow_arm"), "B");
  EXPECT_EQ(evaluation.at("requests").to_number<int64_t>(), 50);
  EXPECT_EQ(evaluation.at("positives").to_number<int64_t>(), 10);
  EXPECT_NE(evaluation.at("insufficient_data").as_string().find("rank alike"), std::string::npos) << results.body;
  // A failing shadow never fails the request; it is counted in the candidate's health.
  model_b_->set_mode(UpstreamMode::kServerError);
  EXPECT_EQ(Predict(Body("shadow-x")).status, 200);
  for (int i = 0; i < 100; ++i) {
    auto health = json::parse(Admin("GET", "/api/v1/experiments/hyatt_booking_ab/health").body);
    if (health.at("arms").as_array()[1].as_object().at("failures").to_number<int64_t>() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto health = json::parse(Admin("GET", "/api/v1/experiments/hyatt_booking_ab/health").body);
  EXPECT_EQ(health.at("arms").as_array()[1].as_object().at("attempts").to_number<int64_t>(), 51);
  EXPECT_EQ(health.at("arms").as_array()[1].as_object().at("failures").to_number<int64_t>(), 1);
}

// A model reply is network data: Boost.JSON reads 1e400 as inf and 0e400 as NaN. Such a score
// is not stored (a stored inf made a full read of the experiment, `abgate analyze`, refuse it:
// "a prediction's score is not finite"); the request is served and the results still analyse.
TEST_F(GatewayTest, NonFiniteModelScoresAreNotStoredAndResultsStillAnalyse) {
  StartGateway(ConfigYaml("", "50, 50"));
  model_b_->set_mode(UpstreamMode::kNonFiniteScores);
  std::string outcomes;
  for (int i = 0; i < 40; ++i) {
    const auto r = Predict(Body("nonfinite-" + std::to_string(i)));
    ASSERT_EQ(r.status, 200) << r.body;
    outcomes += R"({"experiment": "hyatt_booking_ab", "metric": "booked", "unit_id": "nonfinite-)" + std::to_string(i) +
                R"(", "value": )" + (i % 3 == 0 ? "1" : "0") + "}\n";
  }
  ASSERT_EQ(RawRequest(gateway_->port(), "POST", "/outcomes", outcomes, "application/x-ndjson").status, 200);
  EXPECT_GT(QueryInt("SELECT count(*) FROM exposures WHERE arm = 'B'"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE arm = 'B' AND score IS NOT NULL"), 0);
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE arm = 'A' AND score IS NOT NULL"),
            QueryInt("SELECT count(*) FROM exposures WHERE arm = 'A'"));
  const auto results = Admin("GET", "/api/v1/experiments/hyatt_booking_ab/results");
  ASSERT_EQ(results.status, 200) << results.body;
  const auto arms = json::parse(results.body).at("arms").as_array();
  ASSERT_EQ(arms.size(), 2u);
  EXPECT_EQ(arms[0].at("units").to_number<int64_t>() + arms[1].at("units").to_number<int64_t>(), 40);
  // And a full read (`abgate analyze --store`) analyses it too.
  const config::ExperimentConfig cfg = gateway_->snapshot()->Find("hyatt_booking_ab")->config;
  auto full = analysis::ReadConfiguredExperiment(store_->uri(), cfg, "user", analysis::MetricsOf(cfg));
  ASSERT_TRUE(full.ok()) << full.status();
  auto report = analysis::Analyze(*full);
  EXPECT_TRUE(report.ok()) << report.status();
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

// An arm whose model server sits behind a TLS ingress (https://, as KServe and Seldon expose
// them): the gateway checks the certificate against upstream.tls_ca_file and keeps the TLS
// connections alive; an upstream it cannot trust fails the request as any upstream failure does.
TEST_F(GatewayTest, HttpsUpstreamsWithAPrivateCa) {
  TlsProxy proxy(dir_.string(), model_b_->port());
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  std::string yaml = ConfigYaml("", "0, 100");
  const std::string plain_b = "http://127.0.0.1:" + std::to_string(model_b_->port()) + "/invocations";
  yaml.replace(yaml.find(plain_b), plain_b.size(), "https://127.0.0.1:" + std::to_string(proxy.port()) + "/invocations");
  std::string trusted = yaml;
  trusted.insert(trusted.find("events:"), "  tls_ca_file: '" + proxy.ca_file() + "'\n");
  StartGateway(trusted);
  for (int i = 0; i < 5; ++i) {
    const auto r = Predict(R"({"user_id":"u1","inputs":[[1]]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers.at("x-abgate-arm"), "B");
    EXPECT_NE(r.body.find("0.75"), std::string::npos) << r.body;  // model B's score, through TLS
  }
  gateway_->Shutdown();
  gateway_.reset();

  // Without the CA the certificate is not trusted: B fails and control answers (fallback).
  StartGateway(yaml + "    fallback_to_control: true\n");
  const auto r = Predict(R"({"user_id":"u1","inputs":[[1]]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers.at("x-abgate-arm"), "A");
  EXPECT_EQ(QueryInt("SELECT count(*) FROM exposures WHERE fallback = 1 AND assigned_arm = 'B'"), 1);
}

}  // namespace
}  // namespace abgate::testing
