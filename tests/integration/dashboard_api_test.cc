// The admin API's reads as the dashboard uses them: the token on reads (issue 14 item 7), the
// embedded page (issue 15), and results computed off the admin thread, shared and cached.
#include <sqlite3.h>

#include <chrono>
#include <regex>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "gateway_fixture.h"
#include "testing/subprocess.h"
#include "testing/test_paths.h"

namespace abgate::testing {
namespace {

namespace json = boost::json;

class DashboardApiTest : public GatewayFixture {
 protected:
  // A counter or gauge from the data plane's /metrics (-1 when absent).
  double Metric(const std::string& name) {
    const auto m = RawRequest(gateway_->port(), "GET", "/metrics", "", "");
    const std::regex re("\n" + name + " ([0-9.e+-]+)\n");
    std::smatch match;
    if (!std::regex_search(m.body, match, re)) return -1;
    return std::stod(match[1]);
  }
  void Serve(int n, const std::string& prefix) {
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(Predict(R"({"user_id":")" + prefix + std::to_string(i) + R"(","inputs":[[1]]})").status, 200);
    }
  }
  static int64_t Units(const RawResponse& r) {
    boost::system::error_code ec;
    const json::value v = json::parse(r.body, ec);
    const json::value* arms = !ec && v.is_object() ? v.as_object().if_contains("arms") : nullptr;
    if (r.status != 200 || !arms || !arms->is_array()) {
      ADD_FAILURE() << "HTTP " << r.status << ": " << r.body;
      return -1;
    }
    int64_t n = 0;
    for (const auto& a : arms->as_array()) n += a.at("units").as_int64();
    return n;
  }
};

constexpr char kResults[] = "/api/v1/experiments/hyatt_booking_ab/results";

TEST_F(DashboardApiTest, ReadsNeedTheTokenUnlessTheConfigOpensThem) {
  StartGateway(ConfigYaml());
  Serve(5, "u");
  for (const char* path : {"/api/v1/experiments", "/api/v1/experiments/hyatt_booking_ab", kResults,
                           "/api/v1/experiments/hyatt_booking_ab/health", "/api/v1/audit",
                           "/api/v1/experiments/hyatt_booking_ab/assignments/u1"}) {
    const auto r = Admin("GET", path, "", /*with_token=*/false);
    EXPECT_EQ(r.status, 401) << path;
    EXPECT_EQ(json::parse(r.body).at("error_code"), "UNAUTHENTICATED");
  }
  EXPECT_EQ(Admin("GET", kResults).status, 200);
  // The page itself holds no data and needs no token.
  const auto page = Admin("GET", "/dashboard", "", false);
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(page.headers.at("content-security-policy").find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(Admin("GET", "/dashboard/app.js", "", false).status, 200);
  EXPECT_EQ(Admin("GET", "/dashboard/nope.js", "", false).status, 404);
}

TEST_F(DashboardApiTest, DashboardPublicReadsOpenTheDashboardsReadsOnly) {
  std::string yaml = ConfigYaml();
  yaml.replace(yaml.find("  threads: 2\n"), 0, "  dashboard_public_reads: true\n");
  StartGateway(yaml);
  Serve(5, "u");
  for (const char* path : {"/api/v1/experiments", "/api/v1/experiments/hyatt_booking_ab", kResults,
                           "/api/v1/experiments/hyatt_booking_ab/traffic", "/api/v1/experiments/hyatt_booking_ab/health",
                           "/api/v1/audit"}) {
    EXPECT_EQ(Admin("GET", path, "", false).status, 200) << path;
  }
  // Per-unit lookups and every change still need the token.
  EXPECT_EQ(Admin("GET", "/api/v1/experiments/hyatt_booking_ab/assignments/u1", "", false).status, 401);
  EXPECT_EQ(Admin("POST", "/api/v1/experiments/hyatt_booking_ab/pause", "", false).status, 401);
}

TEST_F(DashboardApiTest, PublicReadsOpenEveryRead) {
  std::string yaml = ConfigYaml();
  yaml.replace(yaml.find("  threads: 2\n"), 0, "  public_reads: true\n");
  StartGateway(yaml);
  Serve(5, "u");
  EXPECT_EQ(Admin("GET", "/api/v1/experiments", "", false).status, 200);
  EXPECT_EQ(Admin("GET", kResults, "", false).status, 200);
  EXPECT_EQ(Admin("POST", "/api/v1/experiments/hyatt_booking_ab/pause", "", false).status, 401);  // changes never
}

TEST_F(DashboardApiTest, ConcurrentReadersShareAnAnalysisAndSeeTheirOwnTraffic) {
  StartGateway(ConfigYaml());
  Serve(100, "a");
  std::vector<std::thread> readers;
  std::vector<RawResponse> replies(8);
  for (size_t i = 0; i < replies.size(); ++i) {
    readers.emplace_back([&, i] { replies[i] = Admin("GET", kResults); });
  }
  for (auto& t : readers) t.join();
  for (const auto& r : replies) {
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Units(r), 100);
  }
  // Eight readers at once: one analysis, or two when some came while the first ran.
  const double computations = Metric("abgate_results_computations_total");
  EXPECT_GE(computations, 1);
  EXPECT_LE(computations, 2);
  // Nothing new: the previous result, no analysis. (On PostgreSQL other gateways may write
  // the same store, so this gateway's commits do not prove a result current: it recomputes.)
  const double reuse = store_->is_postgres() ? 1 : 0;
  EXPECT_EQ(Units(Admin("GET", kResults)), 100);
  EXPECT_EQ(Metric("abgate_results_computations_total"), computations + reuse);
  // New traffic: a plain read includes it; a dashboard's read with max_age_ms may not.
  Serve(20, "b");
  const auto stale = Admin("GET", std::string(kResults) + "?max_age_ms=600000");
  EXPECT_EQ(Units(stale), 100);
  EXPECT_EQ(Metric("abgate_results_computations_total"), computations + reuse);
  EXPECT_EQ(Units(Admin("GET", kResults)), 120);
  EXPECT_EQ(Metric("abgate_results_computations_total"), computations + reuse + 1);
  // The traffic split comes from the same analysis.
  const auto traffic = Admin("GET", "/api/v1/experiments/hyatt_booking_ab/traffic?max_age_ms=600000");
  ASSERT_EQ(traffic.status, 200);
  const auto split = json::parse(traffic.body);
  int64_t units = 0;
  for (const auto& bin : split.at("bins").as_array()) {
    for (const auto& n : bin.at("units").as_array()) units += n.as_int64();
  }
  EXPECT_EQ(units, 120);
  EXPECT_EQ(Metric("abgate_results_computations_total"), computations + reuse + 1);
  EXPECT_EQ(Admin("GET", std::string(kResults) + "?max_age_ms=-1").status, 400);
  EXPECT_EQ(Admin("GET", "/api/v1/experiments/nope/traffic").status, 404);
}

// Issue 14 item 7: reads of results ran a whole analysis each on the admin thread, so a pause
// waited behind them (9 ms → 5 s). Now the pause is answered while the analyses run.
TEST_F(DashboardApiTest, AnalysesDoNotDelayAdminChanges) {
  if (store_->is_postgres()) GTEST_SKIP() << "fills the store through SQLite";
  StartGateway(ConfigYaml());
  Serve(2, "seed");
  gateway_->FlushEventsForTest();
  {
    // 300k exposures written behind the gateway's back (read as rows: a slow analysis).
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(store_->uri().substr(7).c_str(), &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    const char* sql =
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 299999) "
        "INSERT INTO exposures (request_id, ts, experiment, unit_id, unit_random, arm, assigned_arm, model_name, "
        "model_version, routing_mode, status, latency_us, score, fallback, in_experiment) "
        "SELECT 'bulk' || i, 1700000000000000 + i, 'hyatt_booking_ab', 'bulk' || i, 0, "
        "CASE WHEN i % 5 = 0 THEN 'B' ELSE 'A' END, CASE WHEN i % 5 = 0 THEN 'B' ELSE 'A' END, "
        "'hyatt_booking_model', CASE WHEN i % 5 = 0 THEN '8' ELSE '7' END, 'user_hash', 200, 1000, 0.5, 0, 1 FROM n";
    char* error = nullptr;
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK) << (error ? error : "");
    sqlite3_close(db);
  }
  std::vector<std::thread> readers;
  std::vector<RawResponse> replies(10);
  for (size_t i = 0; i < replies.size(); ++i) {
    // Distinct keys, so nothing is shared: ten analyses asked for at once.
    // A minute to answer: ten analyses in a row on a loaded machine outlast the default 5 s.
    readers.emplace_back([&, i] {
      RawConnection c(gateway_->admin_port(), 60'000);
      c.Send(std::string("GET ") + kResults + "?since_us=" + std::to_string(i) +
             " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + kToken + "\r\n\r\n");
      replies[i] = c.Read();
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (Metric("abgate_results_requests_total") < 10 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(Metric("abgate_results_requests_total"), 10);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(Admin("POST", "/api/v1/experiments/hyatt_booking_ab/pause").status, 200);
  const double pause_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (auto& t : readers) t.join();
  for (const auto& r : replies) EXPECT_EQ(r.status, 200) << r.body;
  const double analyses = Metric("abgate_results_computations_total");
  const double mean_analysis_s = Metric("abgate_results_compute_seconds_total") / analyses;
  EXPECT_GE(analyses, 10);
  // Before: the pause waited for at least one whole analysis (in practice all ten).
  EXPECT_LT(pause_s, mean_analysis_s) << "pause " << pause_s << " s, one analysis " << mean_analysis_s << " s";
}

namespace conclusion {

// The admin experiment view (config) of hyatt_booking_ab.
json::object Experiment(const RawResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "HTTP " << r.status << ": " << r.body;
    return {};
  }
  return v.as_object();
}

}  // namespace conclusion

// One truth after the end: a promotion makes the winner the control (it serves everyone), but
// the analysis afterwards — results endpoint, dashboard, `abgate analyze` — still compares the
// arms as they were tested and says how the experiment ended. Before, the demo's experiment
// read "control: B ... decision: rollback A (B stays)" in `analyze` once v2 was promoted.
TEST_F(DashboardApiTest, AConcludedExperimentIsAnalysedAsItRanAndSaysHowItEnded) {
  StartGateway(ConfigYaml("", "50, 50"));
  Serve(60, "u");
  const auto before = conclusion::Experiment(Admin("GET", kResults));
  EXPECT_EQ(before.at("control"), "A");
  EXPECT_FALSE(before.contains("conclusion"));

  const auto promoted = Admin("POST", "/api/v1/experiments/hyatt_booking_ab/promote",
                              R"({"winner":"B","evidence":{"reason":"B beats A on booked"}})");
  ASSERT_EQ(promoted.status, 200) << promoted.body;
  const auto config = conclusion::Experiment(Admin("GET", "/api/v1/experiments/hyatt_booking_ab"));
  EXPECT_EQ(config.at("control"), "B");  // the winner serves everyone
  EXPECT_EQ(config.at("state"), "stopped");
  EXPECT_EQ(config.at("conclusion").at("tested_control"), "A");

  const auto after = conclusion::Experiment(Admin("GET", kResults));
  EXPECT_EQ(after.at("control"), "A");
  ASSERT_TRUE(after.contains("conclusion")) << json::serialize(after);
  const auto& c = after.at("conclusion").as_object();
  EXPECT_EQ(c.at("action"), "promote");
  EXPECT_EQ(c.at("winner"), "B");
  EXPECT_EQ(c.at("winner_version"), "8");
  EXPECT_EQ(c.at("tested_control"), "A");
  EXPECT_EQ(c.at("reason"), "B beats A on booked");
  // The same arms and counts as before the promotion: the comparison is B vs A.
  EXPECT_EQ(json::serialize(after.at("arms")), json::serialize(before.at("arms")));
  for (const auto& cmp : after.at("comparisons").as_array()) EXPECT_EQ(cmp.at("control"), "A");
  // SRM against the weights the units were assigned with (50/50), not the winner's 0/100.
  EXPECT_EQ(json::serialize(after.at("srm").at("expected_share")), "[5E-1,5E-1]") << json::serialize(after.at("srm"));
  EXPECT_FALSE(after.at("srm").at("mismatch").as_bool()) << json::serialize(after.at("srm"));

  // A repeated promotion (a controller retrying) keeps the first conclusion.
  ASSERT_EQ(Admin("POST", "/api/v1/experiments/hyatt_booking_ab/promote", R"({"winner":"B"})").status, 200);
  EXPECT_EQ(conclusion::Experiment(Admin("GET", kResults)).at("conclusion").at("reason"), "B beats A on booked");

  // `abgate analyze` on the store tells the same (text).
  Subprocess analyze({ABGATE_BINARY, "analyze", "--store", store_->uri(), "--experiment", "hyatt_booking_ab"});
  ASSERT_EQ(analyze.Wait(30000), 0) << analyze.stderr_text();
  const std::string text = analyze.stdout_text();
  EXPECT_NE(text.find("control: A"), std::string::npos) << text;
  EXPECT_NE(text.find("concluded: promoted B (v8) at "), std::string::npos) << text;
  EXPECT_NE(text.find("-- B beats A on booked; the analysis compares the arms as tested (control A)"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace abgate::testing
