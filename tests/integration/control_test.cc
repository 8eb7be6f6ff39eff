// The automation end to end, all real processes on loopback: `abgate registry`, `abgate train`,
// `abgate serve`, `abgate controller`, `abgate simulate`, `abgate promote`, `abgate demo`.
// A better candidate is promoted (registry stages, aliases and tags, gateway weights, audit,
// tracking runs checked); a failing candidate is rolled back by the error-rate guardrail; an
// equal candidate ends inconclusive at the maximum duration; a controller killed mid-experiment
// resumes from its stored state.
#include <signal.h>
#include <sqlite3.h>

#include <chrono>
#include <fstream>
#include <map>
#include <thread>

#include "common/human.h"
#include "registry_fixture.h"
#include "testing/load_balancer.h"
#include "testing/test_paths.h"
#include "testing/test_store.h"

namespace abgate::testing {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string S(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : json::serialize(v); }

uint16_t PortAfter(const std::string& line, const std::string& marker) {
  const size_t at = line.find(marker);
  return at == std::string::npos ? 0 : static_cast<uint16_t>(std::stoi(line.substr(at + marker.size())));
}

// Reads stdout lines until one contains `needle`; returns it (empty on timeout or exit).
std::string WaitForLine(Subprocess& p, const std::string& needle, int timeout_ms, std::string* seen = nullptr) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    std::string line = p.ReadStdoutLine(std::max(1, left));
    if (line.empty()) continue;
    if (seen) *seen += line + "\n";
    if (line.find(needle) != std::string::npos) return line;
  }
  return "";
}

class ControlTest : public RegistryFixture {
 protected:
  void Train(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {ABGATE_BINARY, "train", "--rows", "6000", "--registry-uri", uri(),
                                     "--model-name", "hyatt_booking_model"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Subprocess p(argv);
    ASSERT_EQ(p.Wait(60000), 0) << p.stderr_text();
  }

  void StartGateway() {
    const fs::path config = dir_ / "gateway.yaml";
    std::ofstream(config) << "server: {listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, threads: 2}\n"
                          << "registry: {uri: \"" << uri() << "\", cache_dir: \"" << (dir_ / "cache").string() << "\"}\n"
                          << "events: {store: \"sqlite:" << (dir_ / "events.db").string() << "\", flush_ms: 20}\n"
                          << "experiments: []\n";
    gateway_ = std::make_unique<Subprocess>(std::vector<std::string>{ABGATE_BINARY, "serve", "--config", config.string()},
                                            std::vector<std::string>{"ABGATE_ADMIN_TOKEN=t"});
    const std::string line = gateway_->ReadStdoutLine(30000);
    data_port_ = PortAfter(line, "data=127.0.0.1:");
    admin_port_ = PortAfter(line, "admin=127.0.0.1:");
    ASSERT_NE(admin_port_, 0) << line << gateway_->stderr_text();
  }

  // The controller's config: the gateway's admin address is known only once it runs.
  std::string ControllerConfig(const std::string& max_duration, const std::string& upstreams = "") {
    const fs::path config = dir_ / "controller.yaml";
    std::ofstream(config) << "registry: {uri: \"" << uri() << "\"}\n"
                          << "experiments: []\n"
                          << "controller:\n"
                          << "  gateway_admin: http://127.0.0.1:" << admin_port_ << "\n"
                          << "  poll_interval: 500ms\n"
                          << "  state: \"sqlite:" << (dir_ / "controller.db").string() << "\"\n"
                          << "  models:\n"
                          << "    - name: hyatt_booking_model\n"
                          << "      max_duration: " << max_duration << "\n"
                          << upstreams
                          << "      experiment:\n"
                          << "        routing_mode: user_hash\n"
                          << "        metrics: [{name: booked, type: binary, primary: true}]\n"
                          << "        guardrails: {max_error_rate: 0.02, max_p99_latency_ms: 1000}\n"
                          << "      plan:\n"
                          << "        - {name: canary, percent: 10, min_duration: 2s, min_units: 300}\n"
                          << "        - {name: half, percent: 50, min_duration: 3s, min_units: 3000}\n";
    return config.string();
  }

  std::unique_ptr<Subprocess> StartController(const std::string& config) {
    auto p = std::make_unique<Subprocess>(std::vector<std::string>{ABGATE_BINARY, "controller", "--config", config},
                                          std::vector<std::string>{"ABGATE_ADMIN_TOKEN=t"});
    return p;
  }

  std::unique_ptr<Subprocess> StartTraffic(int seconds) {
    return std::make_unique<Subprocess>(std::vector<std::string>{
        ABGATE_BINARY, "simulate", "--gateway", "http://127.0.0.1:" + std::to_string(data_port_), "--users", "200000",
        "--rate", "1000", "--duration", std::to_string(seconds), "--seed", "3"});
  }

  ApiReply Admin(std::string_view method, const std::string& path) {
    RawResponse r = RawRequest(admin_port_, method, path, "", "application/json", "Authorization: Bearer t\r\n");
    ApiReply out;
    out.status = r.status;
    out.body = r.body;
    boost::system::error_code ec;
    out.json = json::parse(r.body, ec);
    return out;
  }

  json::object Version(const std::string& v) {
    return Api("GET", "model-versions/get?name=hyatt_booking_model&version=" + v)["model_version"].as_object();
  }
  std::string Tag(const json::object& mv, const std::string& key) {
    if (!mv.contains("tags")) return "";
    for (const auto& t : mv.at("tags").as_array()) {
      if (t.as_object().at("key") == json::value(key)) return S(t.as_object().at("value"));
    }
    return "";
  }

  void TearDown() override {
    if (gateway_) {
      gateway_->Signal(SIGTERM);
      gateway_->Wait(20000);
    }
    RegistryFixture::TearDown();
  }

  std::unique_ptr<Subprocess> gateway_;
  uint16_t data_port_ = 0;
  uint16_t admin_port_ = 0;
};

TEST_F(ControlTest, BetterCandidateIsPromotedWithEvidenceEverywhere) {
  Train({"--quality", "weak", "--seed", "5", "--alias", "champion", "--stage", "Production"});
  Train({"--quality", "strong", "--seed", "6", "--tag", "ab_test_candidate=true"});
  StartGateway();
  auto controller = StartController(ControllerConfig("90s"));
  std::string log;
  const std::string started = WaitForLine(*controller, "started", 20000, &log);
  ASSERT_FALSE(started.empty()) << log << controller->stderr_text();
  auto traffic = StartTraffic(60);
  const std::string promoted = WaitForLine(*controller, "PROMOTED", 80000, &log);
  ASSERT_FALSE(promoted.empty()) << log << controller->stderr_text();
  EXPECT_NE(log.find("advancing to half (50%)"), std::string::npos) << log;
  const std::string experiment = "hyatt_booking_model-v2-vs-v1";

  // Registry: stage, aliases, evidence tags, candidate tag cleared, loser archived.
  const json::object v2 = Version("2");
  EXPECT_EQ(S(v2.at("current_stage")), "Production");
  EXPECT_EQ(S(Version("1").at("current_stage")), "Archived");
  EXPECT_EQ(Tag(Version("1"), "ab_test.decision"), "lost");
  EXPECT_EQ(S(Api("GET", "registered-models/alias?name=hyatt_booking_model&alias=champion")["model_version"]
                  .as_object()
                  .at("version")),
            "2");
  EXPECT_EQ(Api("GET", "registered-models/alias?name=hyatt_booking_model&alias=challenger").status, 400);
  EXPECT_EQ(Tag(v2, "ab_test.decision"), "promoted");
  EXPECT_EQ(Tag(v2, "ab_test.experiment"), experiment);
  EXPECT_EQ(Tag(v2, "ab_test_candidate"), "");
  for (const char* key : {"ab_test.test", "ab_test.sequential_p_value", "ab_test.lift", "ab_test.lift_ci",
                          "ab_test.units", "ab_test.decided_at"}) {
    EXPECT_FALSE(Tag(v2, key).empty()) << key;
  }
  EXPECT_LT(std::stod(Tag(v2, "ab_test.sequential_p_value")), 0.05);
  EXPECT_EQ(Tag(v2, "ab_test.status"), "promoted");
  // Issue 12: one value — the decision line, the tag and the candidate's MLflow run tell the
  // same sequential p (rounded for people in the line, full precision in the tag and run).
  const double tag_p = std::stod(Tag(v2, "ab_test.sequential_p_value"));
  EXPECT_NE(promoted.find("sequential p = " + HumanP(tag_p)), std::string::npos) << promoted << " vs tag " << tag_p;

  // Gateway: all traffic to the winner, the experiment stopped, the decision audited.
  ApiReply exp = Admin("GET", "/api/v1/experiments/" + experiment);
  ASSERT_EQ(exp.status, 200) << exp.body;
  EXPECT_EQ(S(exp["state"]), "stopped");
  EXPECT_EQ(S(exp["control"]), "B");
  EXPECT_EQ(exp["arms"].as_array()[1].as_object().at("weight").to_number<double>(), 100);
  RawResponse served = RawRequest(data_port_, "POST", "/predict",
                                  R"({"user_id":"after","dataframe_records":[{"lead_time_days":3,"nightly_price":200,)"
                                  R"("length_of_stay":2,"is_weekend":0,"loyalty_tier":1,"prior_bookings":0,"mobile":1,"search_rank":2}]})");
  EXPECT_EQ(json::parse(served.body).at("model_version"), "2");
  ApiReply audit = Admin("GET", "/api/v1/audit?experiment=" + experiment);
  EXPECT_NE(audit.body.find("promote"), std::string::npos);
  EXPECT_NE(audit.body.find("sequential_p_value"), std::string::npos) << audit.body.substr(0, 500);

  // Tracking: one run per arm, found by tags.ab_test, with params and metrics over the looks.
  ApiReply tracking = Api("GET", "experiments/get-by-name?experiment_name=abgate-ab-tests");
  ASSERT_EQ(tracking.status, 200);
  const std::string exp_id = S(tracking["experiment"].as_object().at("experiment_id"));
  ApiReply runs = Api("POST", "runs/search",
                      R"({"experiment_ids":[")" + exp_id + R"("],"filter":"tags.ab_test = ')" + experiment + R"('"})");
  ASSERT_EQ(runs["runs"].as_array().size(), 2u) << runs.body;
  for (const auto& run : runs["runs"].as_array()) {
    const auto& data = run.as_object().at("data").as_object();
    EXPECT_NE(json::serialize(data.at("params")).find("model_version"), std::string::npos);
    EXPECT_NE(json::serialize(data.at("metrics")).find("units"), std::string::npos);
    EXPECT_EQ(S(run.as_object().at("info").as_object().at("status")), "FINISHED");
    const std::string run_id = S(run.as_object().at("info").as_object().at("run_id"));
    ApiReply history = Api("GET", "metrics/get-history?run_id=" + run_id + "&metric_key=units");
    EXPECT_GT(history["metrics"].as_array().size(), 1u);  // one point per look, never one run per request
    if (json::serialize(data.at("params")).find("candidate") != std::string::npos) {
      ApiReply p = Api("GET", "metrics/get-history?run_id=" + run_id + "&metric_key=sequential_p_value");
      ASSERT_FALSE(p["metrics"].as_array().empty()) << p.body;
      const double last = p["metrics"].as_array().back().as_object().at("value").to_number<double>();
      EXPECT_NEAR(last, tag_p, 1e-12 * tag_p);
    }
  }

  // A new test of the champion clears the tags of its earlier one: v3 challenges v2.
  Train({"--quality", "strong", "--seed", "8", "--tag", "ab_test_candidate=true"});
  const std::string next = WaitForLine(*controller, "candidate v3", 30000, &log);
  ASSERT_FALSE(next.empty()) << log << controller->stderr_text();
  const json::object champion = Version("2");
  EXPECT_EQ(Tag(champion, "ab_test.sequential_p_value"), "");  // the v2-vs-v1 numbers are gone
  EXPECT_EQ(Tag(champion, "ab_test.status"), "running");
  EXPECT_EQ(Tag(champion, "ab_test.role"), "champion");
  EXPECT_EQ(Tag(champion, "ab_test.experiment"), "hyatt_booking_model-v3-vs-v2");
  EXPECT_EQ(Tag(Version("3"), "ab_test.status"), "running");
  traffic->Signal(SIGTERM);
  traffic->Wait(10000);
  controller->Signal(SIGTERM);
  EXPECT_EQ(controller->Wait(10000), 0);
}

// Issue 13, a fleet: three `abgate serve` replicas on one PostgreSQL behind a real nginx
// round-robin upstream. The controller (on one replica's admin API) ramps 10% → 50% and promotes
// while the simulated users come through nginx. At the end every replica serves the winner, the
// fleet shows one applied version, the promotion is audited as applied on all three, and the
// analysis counts every replica's exposures. Needs ABGATE_TEST_POSTGRES (scripts/test.sh).
TEST_F(ControlTest, ControllerRolloutAcrossAFleetOfThreeBehindNginx) {
  TestStore store("postgres", dir_.string());
  if (store.unconfigured()) GTEST_SKIP() << store.reason();
  ASSERT_TRUE(store.ok()) << store.reason();
  Train({"--quality", "weak", "--seed", "5", "--alias", "champion", "--stage", "Production"});
  Train({"--quality", "strong", "--seed", "6", "--tag", "ab_test_candidate=true"});
  std::vector<std::unique_ptr<Subprocess>> replicas;
  std::vector<uint16_t> data, admin;
  for (int i = 0; i < 3; ++i) {
    const fs::path config = dir_ / ("gateway-" + std::to_string(i) + ".yaml");
    std::ofstream(config) << "server: {listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, threads: 2}\n"
                          << "registry: {uri: \"" << uri() << "\", cache_dir: \""
                          << (dir_ / ("cache-" + std::to_string(i))).string() << "\"}\n"
                          << "events: {store: \"" << store.uri() << "\", flush_ms: 20}\n"
                          << "experiments: []\n";
    replicas.push_back(std::make_unique<Subprocess>(
        std::vector<std::string>{ABGATE_BINARY, "serve", "--config", config.string()},
        std::vector<std::string>{"ABGATE_ADMIN_TOKEN=t"}));
    const std::string line = replicas.back()->ReadStdoutLine(30000);
    data.push_back(PortAfter(line, "data=127.0.0.1:"));
    admin.push_back(PortAfter(line, "admin=127.0.0.1:"));
    ASSERT_NE(admin.back(), 0) << line;
  }
  LoadBalancer lb(dir_.string(), data);
  ASSERT_TRUE(lb.ok()) << lb.error();
  admin_port_ = admin[0];  // the controller talks to one replica
  data_port_ = lb.port();  // the users come through nginx
  auto controller = StartController(ControllerConfig("90s"));
  std::string log;
  ASSERT_FALSE(WaitForLine(*controller, "started", 20000, &log).empty()) << log << controller->stderr_text();
  auto traffic = StartTraffic(60);
  const std::string promoted = WaitForLine(*controller, "PROMOTED", 80000, &log);
  ASSERT_FALSE(promoted.empty()) << log << controller->stderr_text();
  EXPECT_NE(log.find("advancing to half (50%)"), std::string::npos) << log;
  traffic->Signal(SIGTERM);
  traffic->Wait(10000);
  controller->Signal(SIGTERM);
  EXPECT_EQ(controller->Wait(10000), 0);
  const std::string experiment = "hyatt_booking_model-v2-vs-v1";

  auto admin_get = [&](uint16_t port, const std::string& path) {
    RawResponse r = RawRequest(port, "GET", path, "", "application/json", "Authorization: Bearer t\r\n");
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    return ec ? json::value() : v;
  };
  auto metric = [](uint16_t port, const std::string& name) -> int64_t {
    const std::string body = RawRequest(port, "GET", "/metrics").body;
    const size_t at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
  };
  // Every replica serves the winner, at one config version.
  int64_t version = -1;
  for (size_t i = 0; i < replicas.size(); ++i) {
    const json::value e = admin_get(admin[i], "/api/v1/experiments/" + experiment);
    ASSERT_TRUE(e.is_object()) << "replica " << i;
    EXPECT_EQ(S(e.at("state")), "stopped") << "replica " << i;
    if (version < 0) version = e.at("runtime").at("config_version").as_int64();
    EXPECT_EQ(e.at("runtime").at("config_version").as_int64(), version) << "replica " << i;
    RawResponse served = RawRequest(data[i], "POST", "/predict",
                                    R"({"user_id":"after","dataframe_records":[{"lead_time_days":3,"nightly_price":200,)"
                                    R"("length_of_stay":2,"is_weekend":0,"loyalty_tier":1,"prior_bookings":0,"mobile":1,"search_rank":2}]})");
    ASSERT_EQ(served.status, 200) << served.body;
    EXPECT_EQ(json::parse(served.body).at("model_version"), "2") << "replica " << i;
  }
  const json::value fleet = admin_get(admin[2], "/api/v1/fleet");
  ASSERT_TRUE(fleet.is_object());
  EXPECT_EQ(fleet.at("live_replicas").as_int64(), 3) << fleet;
  EXPECT_EQ(fleet.at("converged"), true) << fleet;
  for (const auto& r : fleet.at("replicas").as_array()) EXPECT_EQ(r.at("applied_config_version").as_int64(), version);
  // The promotion was recorded as in force on all three.
  const json::value audit = admin_get(admin[1], "/api/v1/audit?experiment=" + experiment);
  bool fleet_applied = false;
  for (const auto& row : audit.at("audit").as_array()) {
    if (row.at("action") != json::value("fleet_applied")) continue;
    fleet_applied = true;
    EXPECT_EQ(row.at("after").at("replicas").as_array().size(), 3u) << row;
  }
  EXPECT_TRUE(fleet_applied) << audit;
  // Every replica served a share through nginx, and the analysis (from any replica) counts what
  // all three wrote.
  // (Until the last flushes are committed: the sum of what the replicas say they wrote equals
  // what the store holds.)
  const std::string count_sql = "SELECT count(*) FROM exposures WHERE experiment = '" + experiment + "'";
  std::vector<int64_t> written(replicas.size());
  int64_t total = 0, stored = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    total = 0;
    for (size_t i = 0; i < replicas.size(); ++i) total += written[i] = metric(data[i], "abgate_events_written_total");
    stored = store.QueryInt(count_sql);
  } while (stored != total && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(stored, total);
  for (size_t i = 0; i < replicas.size(); ++i) EXPECT_GT(written[i], 100) << "replica " << i << " got no share";
  // (A request nginx still had in flight when the users stopped may land meanwhile.)
  const int64_t in_experiment_before = store.QueryInt(count_sql + " AND in_experiment = 1");
  const json::value report = admin_get(admin[1], "/api/v1/experiments/" + experiment + "/results");
  const int64_t in_experiment_after = store.QueryInt(count_sql + " AND in_experiment = 1");
  ASSERT_TRUE(report.is_object());
  int64_t analysed = 0;
  for (const auto& a : report.at("arms").as_array()) analysed += a.at("exposures").as_int64();
  EXPECT_GE(analysed, in_experiment_before) << json::serialize(report).substr(0, 600);
  EXPECT_LE(analysed, in_experiment_after);
  EXPECT_GT(analysed, 1000);
  for (auto& r : replicas) {
    r->Signal(SIGTERM);
    EXPECT_EQ(r->Wait(20000), 0) << r->stderr_text();
  }
}

TEST_F(ControlTest, FailingCandidateIsRolledBackByTheErrorRateGuardrail) {
  Train({"--quality", "weak", "--seed", "5", "--alias", "champion", "--stage", "Production"});
  Train({"--quality", "strong", "--seed", "6", "--tag", "ab_test_candidate=true"});
  StartGateway();
  // Version 2 is "deployed" behind an upstream that refuses every connection.
  auto controller = StartController(
      ControllerConfig("90s", "      upstreams: {\"2\": \"http://127.0.0.1:1/invocations\"}\n"));
  std::string log;
  ASSERT_FALSE(WaitForLine(*controller, "started", 20000, &log).empty()) << log << controller->stderr_text();
  auto traffic = StartTraffic(40);
  const std::string rolled = WaitForLine(*controller, "ROLLED BACK", 60000, &log);
  ASSERT_FALSE(rolled.empty()) << log;
  EXPECT_NE(rolled.find("error_rate"), std::string::npos) << rolled;
  const json::object v2 = Version("2");
  EXPECT_EQ(Tag(v2, "ab_test.decision"), "rolled_back");
  EXPECT_NE(Tag(v2, "ab_test.reason").find("error_rate"), std::string::npos);
  EXPECT_EQ(Tag(v2, "ab_test_candidate"), "");
  EXPECT_EQ(S(v2.at("current_stage")), "None");
  EXPECT_EQ(S(Version("1").at("current_stage")), "Production");
  ApiReply exp = Admin("GET", "/api/v1/experiments/hyatt_booking_model-v2-vs-v1");
  EXPECT_EQ(S(exp["state"]), "stopped");
  EXPECT_EQ(S(exp["control"]), "A");
  EXPECT_EQ(exp["arms"].as_array()[0].as_object().at("weight").to_number<double>(), 100);
  traffic->Signal(SIGTERM);
  traffic->Wait(10000);
  controller->Signal(SIGTERM);
  controller->Wait(10000);
}

TEST_F(ControlTest, EqualCandidateEndsInconclusiveAndAutoPromotionRefuses) {
  // The same training twice: identical models, so no difference can be found.
  Train({"--quality", "strong", "--seed", "6", "--alias", "champion", "--stage", "Production"});
  Train({"--quality", "strong", "--seed", "6", "--tag", "ab_test_candidate=true"});
  StartGateway();
  const std::string config = ControllerConfig("12s");
  auto controller = StartController(config);
  std::string log;
  ASSERT_FALSE(WaitForLine(*controller, "started", 20000, &log).empty()) << log << controller->stderr_text();
  auto traffic = StartTraffic(25);
  std::this_thread::sleep_for(std::chrono::seconds(4));
  Subprocess promote({ABGATE_BINARY, "promote", "--experiment", "hyatt_booking_model-v2-vs-v1", "--winner", "auto",
                      "--admin-url", "http://127.0.0.1:" + std::to_string(admin_port_), "--registry-uri", uri()},
                     {"ABGATE_ADMIN_TOKEN=t"});
  EXPECT_EQ(promote.Wait(30000), 1);
  EXPECT_NE(promote.stderr_text().find("not promoting"), std::string::npos) << promote.stderr_text();
  const std::string end = WaitForLine(*controller, "INCONCLUSIVE", 40000, &log);
  ASSERT_FALSE(end.empty()) << log;
  EXPECT_NE(end.find("maximum duration"), std::string::npos);
  EXPECT_EQ(Tag(Version("2"), "ab_test.decision"), "inconclusive");
  EXPECT_EQ(S(Version("1").at("current_stage")), "Production");
  // Tagged again: the same comparison is not re-run; the tag is cleared and a note says why.
  ASSERT_EQ(Api("POST", "model-versions/set-tag",
                R"({"name": "hyatt_booking_model", "version": "2", "key": "ab_test_candidate", "value": "true"})")
                .status,
            200);
  const std::string again = WaitForLine(*controller, "already tested", 20000, &log);
  ASSERT_FALSE(again.empty()) << log;
  EXPECT_EQ(Tag(Version("2"), "ab_test_candidate"), "");
  EXPECT_NE(Tag(Version("2"), "ab_test.note").find("inconclusive"), std::string::npos) << Tag(Version("2"), "ab_test.note");
  traffic->Signal(SIGTERM);
  traffic->Wait(10000);
  controller->Signal(SIGTERM);
  controller->Wait(10000);
}

TEST_F(ControlTest, KilledControllerResumesFromItsState) {
  Train({"--quality", "weak", "--seed", "5", "--alias", "champion", "--stage", "Production"});
  Train({"--quality", "strong", "--seed", "6", "--tag", "ab_test_candidate=true"});
  StartGateway();
  const std::string config = ControllerConfig("90s");
  auto first = StartController(config);
  std::string log;
  ASSERT_FALSE(WaitForLine(*first, "started", 20000, &log).empty()) << log << first->stderr_text();
  auto traffic = StartTraffic(60);
  ASSERT_FALSE(WaitForLine(*first, "advancing to half", 30000, &log).empty()) << log;
  first->Signal(SIGKILL);
  first->Wait(5000);
  auto second = StartController(config);
  const std::string promoted = WaitForLine(*second, "PROMOTED", 80000, &log);
  ASSERT_FALSE(promoted.empty()) << log << second->stderr_text();
  EXPECT_EQ(log.find("started hyatt_booking_model-v2-vs-v1", log.find("advancing")), std::string::npos)
      << "the second controller started the experiment again:\n" << log;
  // One rollout, one experiment: the second controller carried on from the stored step.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "controller.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*), max(status), max(step) FROM rollouts", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 1);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)), "promoted");
  EXPECT_EQ(sqlite3_column_int(st, 2), 1);
  sqlite3_finalize(st);
  sqlite3_close(db);
  ApiReply list = Admin("GET", "/api/v1/experiments");
  int named = 0;
  for (const auto& e : list["experiments"].as_array()) named += e.as_object().at("name") == json::value("hyatt_booking_model-v2-vs-v1");
  EXPECT_EQ(named, 1) << list.body.substr(0, 300);
  traffic->Signal(SIGTERM);
  traffic->Wait(10000);
  second->Signal(SIGTERM);
  second->Wait(10000);
}

// Issue 17, one turn of the feedback loop with real processes: the first test (payloads sampled)
// ends in a promotion; the controller (controller.retrain) exports what the gateway logged,
// trains v3 on it, registers and tags it, and tests it against the new champion; v3 serves in
// the gateway. The export and train commands do the same by hand on the same store.
TEST_F(ControlTest, Issue17RetrainLoopTrainsTheNextVersionOnTheLoggedTrafficAndTestsIt) {
  Train({"--quality", "weak", "--seed", "5", "--alias", "champion", "--stage", "Production"});
  Train({"--quality", "strong", "--seed", "6", "--tag", "ab_test_candidate=true"});
  StartGateway();
  const fs::path config = dir_ / "controller.yaml";
  std::ofstream(config) << "registry: {uri: \"" << uri() << "\"}\n"
                        << "events: {store: \"sqlite:" << (dir_ / "events.db").string() << "\"}\n"
                        << "experiments: []\n"
                        << "controller:\n"
                        << "  gateway_admin: http://127.0.0.1:" << admin_port_ << "\n"
                        << "  poll_interval: 500ms\n"
                        << "  state: \"sqlite:" << (dir_ / "controller.db").string() << "\"\n"
                        << "  models:\n"
                        << "    - name: hyatt_booking_model\n"
                        << "      max_duration: 60s\n"
                        << "      experiment:\n"
                        << "        routing_mode: user_hash\n"
                        << "        payload_sample_rate: 0.5\n"
                        << "        metrics: [{name: booked, type: binary, primary: true}]\n"
                        << "        guardrails: {max_error_rate: 0.02, max_p99_latency_ms: 1000}\n"
                        << "      plan:\n"
                        << "        - {name: canary, percent: 10, min_duration: 2s, min_units: 300}\n"
                        << "        - {name: half, percent: 50, min_duration: 3s, min_units: 3000}\n"
                        << "  retrain:\n"
                        << "    model: hyatt_booking_model\n"
                        << "    every: 1h\n"
                        << "    min_new_labels: 1000\n"
                        << "    top_ranked_only: true\n"
                        << "    data_dir: \"" << (dir_ / "retrain").string() << "\"\n"
                        << "    params: {max_depth: 3, rounds: 30}\n";
  auto controller = StartController(config.string());
  std::string log;
  ASSERT_FALSE(WaitForLine(*controller, "started", 20000, &log).empty()) << log << controller->stderr_text();
  auto traffic = StartTraffic(90);
  ASSERT_FALSE(WaitForLine(*controller, "PROMOTED", 80000, &log).empty()) << log << controller->stderr_text();
  const std::string retrained = WaitForLine(*controller, "retrained on", 30000, &log);
  ASSERT_FALSE(retrained.empty()) << log << controller->stderr_text();
  EXPECT_NE(retrained.find("v3 trained on"), std::string::npos) << retrained;
  const std::string next = WaitForLine(*controller, "candidate v3 vs champion v2", 30000, &log);
  ASSERT_FALSE(next.empty()) << log << controller->stderr_text();

  // The candidate's run says which export it learnt from.
  const std::string first = "hyatt_booking_model-v2-vs-v1";
  const json::object v3 = Version("3");
  EXPECT_NE(Tag(v3, "abgate.trained_on").find(first), std::string::npos);
  ApiReply run = Api("GET", "runs/get?run_id=" + S(v3.at("run_id")));
  ASSERT_EQ(run.status, 200) << run.body;
  std::map<std::string, std::string> tags, params;
  for (const auto& t : run["run"].as_object().at("data").as_object().at("tags").as_array()) {
    tags[S(t.as_object().at("key"))] = S(t.as_object().at("value"));
  }
  for (const auto& t : run["run"].as_object().at("data").as_object().at("params").as_array()) {
    params[S(t.as_object().at("key"))] = S(t.as_object().at("value"));
  }
  EXPECT_EQ(tags["abgate.training_data.experiment"], first);
  EXPECT_GE(std::stoll(tags["abgate.training_data.rows"]), 1000);
  EXPECT_NE(tags["abgate.training_data.range"].find(" to "), std::string::npos);
  EXPECT_TRUE(fs::exists(tags["abgate.training_data.file"])) << tags["abgate.training_data.file"];
  EXPECT_EQ(params["label"], "booked");
  EXPECT_EQ(params["top_ranked_only"], "true");
  EXPECT_EQ(params["max_depth"], "3");
  EXPECT_EQ(params["num_boost_round"], "30");

  // v3 serves in the gateway (in-process): its exposures appear in the store.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "events.db").c_str(), &db), SQLITE_OK);
  int64_t served = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (served == 0 && std::chrono::steady_clock::now() < deadline) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM exposures WHERE model_version = '3' AND status = 200", -1, &st, nullptr);
    if (sqlite3_step(st) == SQLITE_ROW) served = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (served == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  sqlite3_close(db);
  EXPECT_GT(served, 0);
  // Only one retrain per `every`: the second test's end would not start another within the hour.
  traffic->Signal(SIGTERM);
  traffic->Wait(10000);
  controller->Signal(SIGTERM);
  EXPECT_EQ(controller->Wait(10000), 0);

  // By hand: export the first test, train on it, and the folder is an MLflow model.
  Subprocess exported({ABGATE_BINARY, "export", "training-data", "--store", "sqlite:" + (dir_ / "events.db").string(),
                       "--experiment", first, "--output", (dir_ / "first.csv").string(), "--registry-uri", uri()});
  ASSERT_EQ(exported.Wait(60000), 0) << exported.stderr_text();
  EXPECT_NE(exported.stdout_text().find("unsampled"), std::string::npos) << exported.stdout_text();
  Subprocess again({ABGATE_BINARY, "export", "training-data", "--store", "sqlite:" + (dir_ / "events.db").string(),
                    "--experiment", first, "--output", (dir_ / "first.csv").string(), "--registry-uri", uri()});
  EXPECT_EQ(again.Wait(60000), 1);  // never over a file that exists
  EXPECT_NE(again.stderr_text().find("exists"), std::string::npos) << again.stderr_text();
  Subprocess trained({ABGATE_BINARY, "train", "--data", (dir_ / "first.csv").string(), "--label", "booked",
                      "--top-ranked-only", "--output", (dir_ / "by-hand").string()});
  ASSERT_EQ(trained.Wait(60000), 0) << trained.stderr_text();
  EXPECT_NE(trained.stdout_text().find("holdout AUC"), std::string::npos) << trained.stdout_text();
  EXPECT_TRUE(fs::exists(dir_ / "by-hand" / "MLmodel"));
}

TEST_F(ControlTest, DemoPromotesAndRollsBack) {
  Subprocess good({ABGATE_BINARY, "demo", "--workdir", (dir_ / "demo-good").string(), "--seed", "7"});
  ASSERT_EQ(good.Wait(120000), 0) << good.stdout_text() << good.stderr_text();
  EXPECT_NE(good.stdout_text().find(": promoted"), std::string::npos) << good.stdout_text();
  // The shadow step compared the candidate with the champion on the same requests (issue 18).
  EXPECT_NE(good.stdout_text().find("shadow evaluation: B (shadow) vs A (served)"), std::string::npos) << good.stdout_text();
  EXPECT_TRUE(fs::exists(dir_ / "demo-good" / "report.html"));
  // Again in the folder the first run made: its marker lets the demo empty it.
  Subprocess bad({ABGATE_BINARY, "demo", "--workdir", (dir_ / "demo-good").string(), "--seed", "7", "--candidate-worse"});
  ASSERT_EQ(bad.Wait(120000), 0) << bad.stdout_text() << bad.stderr_text();
  EXPECT_NE(bad.stdout_text().find(": rolled_back"), std::string::npos) << bad.stdout_text();
  // The weak candidate never reaches users: the shadow gate refuses it offline.
  EXPECT_NE(bad.stdout_text().find("shadow gate: "), std::string::npos) << bad.stdout_text();
  EXPECT_NE(bad.stdout_text().find("B is significantly worse offline"), std::string::npos) << bad.stdout_text();
}

// Issue 14: `--workdir .` wiped the current folder. A folder the demo did not make is refused
// with one line, and nothing in it is touched.
TEST_F(ControlTest, Issue14DemoRefusesAFolderItDidNotMake) {
  const fs::path mine = dir_ / "mine";
  fs::create_directories(mine / "sub");
  std::ofstream(mine / "notes.txt") << "keep me";
  std::ofstream(mine / "sub" / "data.csv") << "1,2";
  Subprocess p({ABGATE_BINARY, "demo", "--workdir", mine.string()});
  EXPECT_EQ(p.Wait(20000), 1);
  EXPECT_EQ(p.stderr_text(), "abgate demo: --workdir " + mine.string() +
                                 " is not empty and was not made by abgate demo (no .abgate-demo file in it); choose a "
                                 "new or empty folder\n");
  std::ifstream notes(mine / "notes.txt");
  std::string kept;
  std::getline(notes, kept);
  EXPECT_EQ(kept, "keep me");
  EXPECT_TRUE(fs::exists(mine / "sub" / "data.csv"));
  EXPECT_FALSE(fs::exists(mine / ".abgate-demo"));
  Subprocess file({ABGATE_BINARY, "demo", "--workdir", (mine / "notes.txt").string()});
  EXPECT_EQ(file.Wait(20000), 1);
  EXPECT_NE(file.stderr_text().find("exists and is not a folder"), std::string::npos) << file.stderr_text();
  EXPECT_TRUE(fs::exists(mine / "notes.txt"));
}

}  // namespace
}  // namespace abgate::testing
