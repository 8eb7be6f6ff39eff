// Whole-binary tests: `abgate serve` as a process (SIGTERM drain and flush), CLI errors,
// and `abgate assign`.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include <fstream>
#include <iostream>
#include <iterator>

#include "assign/allocation.h"
#include "assign/eligibility.h"
#include "assign/hash.h"
#include "gateway_fixture.h"
#include "testing/subprocess.h"
#include "testing/test_paths.h"

namespace abgate::testing {
namespace {

class ProcessTest : public GatewayFixture {
 protected:
  std::string WriteConfig(const std::string& yaml) {
    const auto path = dir_ / "config.yaml";
    std::ofstream(path) << yaml;
    return path.string();
  }
  static uint16_t PortFrom(const std::string& line, const std::string& key) {
    const size_t at = line.find(key + "=127.0.0.1:");
    if (at == std::string::npos) return 0;
    return static_cast<uint16_t>(std::stoi(line.substr(at + key.size() + 11)));
  }
};

TEST_F(ProcessTest, SigtermDrainsAndFlushesEveryQueuedExposure) {
  // A long flush interval keeps exposures queued in memory until shutdown.
  std::string yaml = ConfigYaml();
  yaml.replace(yaml.find("flush_ms: 5"), 11, "flush_ms: 60000");
  Subprocess gw({ABGATE_BINARY, "serve", "--config", WriteConfig(yaml)}, {"ABGATE_TEST_ADMIN_TOKEN=x"});
  const std::string line = gw.ReadStdoutLine(10000);
  const uint16_t port = PortFrom(line, "data");
  ASSERT_NE(port, 0) << "no readiness line: " << line;
  RawConnection c(port);
  for (int i = 0; i < 500; ++i) {
    const std::string body = R"({"user_id":"p)" + std::to_string(i) + R"(","inputs":[[1]]})";
    ASSERT_TRUE(c.Send("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body));
    ASSERT_EQ(c.Read().status, 200);
  }
  gw.Signal(SIGTERM);
  EXPECT_EQ(gw.Wait(20000), 0) << gw.stderr_text();
  EXPECT_TRUE(c.PeerClosed(1000));  // the idle keep-alive connection was closed by the drain
  EXPECT_NE(gw.stderr_text().find("500 exposures written, 0 dropped"), std::string::npos) << gw.stderr_text();
  EXPECT_EQ(QueryIntNoFlush("SELECT count(DISTINCT unit_id) FROM exposures"), 500);
}

// SIGHUP (issue 13) re-reads the YAML and applies it; a file that does not validate is logged
// in one line and the running config stays. The process never dies of it, and every exposure
// it acknowledged is in the store after the SIGTERM (before: SIGHUP killed it, exit 129, and the
// last flush window was lost).
TEST_F(ProcessTest, SighupReloadsTheYamlKeepsRunningAndLosesNothing) {
  auto with_weights = [&](std::string_view weights) {
    std::string yaml = ConfigYaml("", weights);
    yaml.replace(yaml.find("flush_ms: 5"), 11, "flush_ms: 60000");  // exposures stay queued until the end
    return yaml;
  };
  const std::string path = WriteConfig(with_weights("100,0"));
  Subprocess gw({ABGATE_BINARY, "serve", "--config", path}, {"ABGATE_TEST_ADMIN_TOKEN=x"});
  const uint16_t port = PortFrom(gw.ReadStdoutLine(10000), "data");
  ASSERT_NE(port, 0);
  std::atomic<int64_t> answered{0};
  auto arm_of = [&](const std::string& user) {
    const auto r = RawRequest(port, "POST", "/predict", R"({"user_id":")" + user + R"(","inputs":[[1]]})");
    if (r.status == 200) ++answered;
    const auto it = r.headers.find("x-abgate-arm");
    return it == r.headers.end() ? "status " + std::to_string(r.status) : it->second;
  };
  auto metric = [&](const std::string& name) -> int64_t {
    const std::string body = RawRequest(port, "GET", "/metrics").body;
    const size_t at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
  };
  ASSERT_EQ(arm_of("probe"), "A");
  // Traffic throughout, on one kept-alive connection (bounded in count).
  std::atomic<bool> stop{false};
  std::thread client([&] {
    RawConnection c(port);
    for (int i = 0; i < 100000 && !stop; ++i) {
      const std::string body = R"({"user_id":"t)" + std::to_string(i) + R"(","inputs":[[1]]})";
      if (!c.Send("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body) ||
          c.Read().status != 200) {
        return;
      }
      ++answered;
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join{stop, client};

  // The traffic has started (so the reloads happen under it).
  const auto started = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (answered.load() < 20 && std::chrono::steady_clock::now() < started) {
  }
  // A valid change: applied, without a restart.
  std::ofstream(path) << with_weights("0,100");
  gw.Signal(SIGHUP);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (metric("abgate_config_reloads_total{result=\"ok\"}") < 1 && std::chrono::steady_clock::now() < deadline) {
  }
  EXPECT_EQ(metric("abgate_config_reloads_total{result=\"ok\"}"), 1);
  EXPECT_EQ(arm_of("probe"), "B");

  // An invalid file: refused, the running config stays.
  std::ofstream(path) << "server: [this is not\n";
  gw.Signal(SIGHUP);
  while (metric("abgate_config_reloads_total{result=\"failed\"}") < 1 && std::chrono::steady_clock::now() < deadline) {
  }
  EXPECT_EQ(metric("abgate_config_reloads_total{result=\"failed\"}"), 1);
  EXPECT_EQ(arm_of("probe"), "B");

  stop = true;
  client.join();
  EXPECT_GE(answered.load(), 20);
  gw.Signal(SIGTERM);
  ASSERT_EQ(gw.Wait(20000), 0) << gw.stderr_text();
  const std::string& log = gw.stderr_text();
  size_t refused = 0;
  for (size_t at = 0; (at = log.find("SIGHUP: keeping the running config", at)) != std::string::npos; ++at) ++refused;
  EXPECT_EQ(refused, 1u) << log;
  EXPECT_NE(log.find("SIGHUP: reloaded 1 experiment(s)"), std::string::npos) << log;
  EXPECT_NE(log.find(std::to_string(answered.load()) + " exposures written, 0 dropped"), std::string::npos) << log;
  EXPECT_EQ(QueryIntNoFlush("SELECT count(*) FROM exposures"), answered.load());
}

TEST_F(ProcessTest, BadConfigExitsNonZeroWithOneLine) {
  std::string yaml = ConfigYaml();
  yaml.replace(yaml.find("threads: 2"), 10, "threds: 2");
  Subprocess gw({ABGATE_BINARY, "serve", "--config", WriteConfig(yaml)});
  EXPECT_EQ(gw.Wait(10000), 1);
  EXPECT_NE(gw.stderr_text().find("server.threds: unknown key"), std::string::npos) << gw.stderr_text();
  EXPECT_EQ(std::count(gw.stderr_text().begin(), gw.stderr_text().end(), '\n'), 1);

  Subprocess missing({ABGATE_BINARY, "serve", "--config", (dir_ / "nope.yaml").string()});
  EXPECT_EQ(missing.Wait(10000), 1);
  EXPECT_NE(missing.stderr_text().find("cannot open"), std::string::npos);

  Subprocess no_args({ABGATE_BINARY, "serve"});
  EXPECT_EQ(no_args.Wait(10000), 2);
  EXPECT_NE(no_args.stderr_text().find("--config is required"), std::string::npos) << no_args.stderr_text();

  Subprocess unknown({ABGATE_BINARY, "frobnicate"});
  EXPECT_NE(unknown.Wait(10000), 0);
}

TEST_F(ProcessTest, AssignPrintsTheGatewaysArms) {
  const std::string config = WriteConfig(ConfigYaml("    coverage: 0.5\n"));
  std::vector<std::string> argv = {ABGATE_BINARY, "assign", "--config", config, "--experiment", "hyatt_booking_ab"};
  for (int i = 0; i < 40; ++i) argv.push_back("unit-" + std::to_string(i));
  Subprocess p(argv);
  ASSERT_EQ(p.Wait(10000), 0) << p.stderr_text();
  const auto alloc = *assign::Allocation::Create({80, 20}, 0.5);
  const assign::SeededHasher hasher("hyatt_booking_ab");
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    const std::string unit = "unit-" + std::to_string(i);
    const int arm = alloc.ArmForBucket(hasher.Bucket(unit), 0);
    expected += unit + "\t" + (arm < 0 ? "-" : arm == 0 ? "A" : "B") + "\n";
  }
  EXPECT_EQ(p.stdout_text(), expected);

  Subprocess bad({ABGATE_BINARY, "assign", "--config", config, "--experiment", "nope", "u1"});
  EXPECT_EQ(bad.Wait(10000), 1);
  EXPECT_NE(bad.stderr_text().find("no experiment named 'nope'"), std::string::npos);
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

TEST_F(ProcessTest, AssignPrintsADashOutsideTheNamespaceAndInTheHoldout) {
  const std::string config =
      WriteConfig("holdout: {percent: 10}\n" + ConfigYaml("    namespace: {name: ranking, range: [0.2, 0.7]}\n"));
  std::vector<std::string> argv = {ABGATE_BINARY, "assign", "--config", config, "--experiment", "hyatt_booking_ab"};
  for (int i = 0; i < 60; ++i) argv.push_back("unit-" + std::to_string(i));
  Subprocess p(argv);
  ASSERT_EQ(p.Wait(10000), 0) << p.stderr_text();
  const auto alloc = *assign::Allocation::Create({80, 20}, 1.0);
  const assign::SeededHasher hasher("hyatt_booking_ab");
  const assign::Holdout holdout("abgate-holdout", 10);
  std::string expected;
  int dashes = 0;
  for (int i = 0; i < 60; ++i) {
    const std::string unit = "unit-" + std::to_string(i);
    const bool out = holdout.Contains(unit) || !assign::InNamespace({"ranking", 0.2, 0.7}, unit);
    dashes += out;
    const int arm = alloc.ArmForBucket(hasher.Bucket(unit), 0);
    expected += unit + "\t" + (out ? "-" : arm == 0 ? "A" : "B") + "\n";
  }
  EXPECT_EQ(p.stdout_text(), expected);
  EXPECT_GT(dashes, 20);
  EXPECT_LT(dashes, 50);
}

TEST_F(ProcessTest, PlanPrintsTheSampleSizeAndRefusesBadInputOnOneLine) {
  // Issue 18's example: 10% → 11%, alpha 0.05, power 0.8 ≈ 14,750 per arm (statsmodels 14,748).
  Subprocess json_run({ABGATE_BINARY, "plan", "--baseline", "0.10", "--mde", "0.01", "--daily-units", "2000",
                       "--format", "json"});
  ASSERT_EQ(json_run.Wait(10000), 0) << json_run.stderr_text();
  const auto plan = boost::json::parse(json_run.stdout_text());
  EXPECT_EQ(plan.at("units_per_arm"), boost::json::parse("[14749, 14749]"));
  EXPECT_EQ(plan.at("total_units"), 29498);
  EXPECT_EQ(plan.at("days"), 15);
  EXPECT_GT(plan.at("sequential").at("total_units").as_int64(), 29498);
  Subprocess text_run({ABGATE_BINARY, "plan", "--baseline", "0.10", "--mde-relative", "0.1"});
  ASSERT_EQ(text_run.Wait(10000), 0);
  EXPECT_NE(text_run.stdout_text().find("14,749 + 14,749"), std::string::npos) << text_run.stdout_text();
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{ABGATE_BINARY, "plan", "--baseline", "0.1"},
        {ABGATE_BINARY, "plan", "--baseline", "1.5", "--mde", "0.01"},
        {ABGATE_BINARY, "plan", "--baseline", "0.1", "--mde", "abc"},
        {ABGATE_BINARY, "plan", "--baseline", "0.1", "--mde", "0.01", "--weights", "1,-1"}}) {
    Subprocess p(bad);
    EXPECT_EQ(p.Wait(10000), 1) << bad.back();
    EXPECT_EQ(std::count(p.stderr_text().begin(), p.stderr_text().end(), '\n'), 1) << p.stderr_text();
    EXPECT_NE(p.stderr_text().find("abgate plan: "), std::string::npos);
  }
}

TEST_F(ProcessTest, AnalyzeCsvInEveryFormatAndBadInput) {
  const auto csv = (dir_ / "ab_results.csv").string();
  {
    std::ofstream out(csv);
    out << "user_id,model_version,y_true,y_pred\n";
    for (int i = 0; i < 3000; ++i) {
      const bool b = i % 5 == 0;
      const bool booked = b ? (i % 3 == 0) : (i % 10 == 1);
      out << "user" << i << "," << (b ? 8 : 7) << "," << booked << "," << (booked ? 0.6 : 0.3) + (i % 7) * 0.01 << "\n";
    }
  }
  Subprocess json_run({ABGATE_BINARY, "analyze", "--csv", csv, "--format", "json", "--weights", "80,20"});
  ASSERT_EQ(json_run.Wait(20000), 0) << json_run.stderr_text();
  boost::system::error_code ec;
  const auto report = boost::json::parse(json_run.stdout_text(), ec);
  ASSERT_FALSE(ec) << json_run.stdout_text();
  for (const char* key : {"experiment", "unit", "control", "alpha", "arms", "comparisons", "srm",
                          "multiple_exposure_units", "decision"}) {
    EXPECT_TRUE(report.as_object().contains(key)) << key;
  }
  EXPECT_EQ(report.at("decision").at("action"), "promote");

  Subprocess text_run({ABGATE_BINARY, "analyze", "--csv", csv});
  ASSERT_EQ(text_run.Wait(20000), 0);
  EXPECT_NE(text_run.stdout_text().find("v8 vs v7"), std::string::npos) << text_run.stdout_text();

  const auto html = (dir_ / "report.html").string();
  Subprocess html_run({ABGATE_BINARY, "analyze", "--csv", csv, "--format", "html", "--output", html});
  ASSERT_EQ(html_run.Wait(20000), 0);
  std::ifstream in(html);
  const std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(page.find("<svg"), std::string::npos);
  EXPECT_EQ(page.find("http"), std::string::npos);

  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{ABGATE_BINARY, "analyze"},
        {ABGATE_BINARY, "analyze", "--csv", (dir_ / "missing.csv").string()},
        {ABGATE_BINARY, "analyze", "--csv", csv, "--format", "pdf"},
        {ABGATE_BINARY, "analyze", "--csv", csv, "--alpha", "2"},
        {ABGATE_BINARY, "analyze", "--csv", csv, "--weights", "80"},
        {ABGATE_BINARY, "analyze", "--csv", csv, "--control", "99"}}) {
    Subprocess p(bad);
    EXPECT_EQ(p.Wait(20000), 1) << bad.back();
    EXPECT_EQ(std::count(p.stderr_text().begin(), p.stderr_text().end(), '\n'), 1) << p.stderr_text();
    EXPECT_NE(p.stderr_text().find("abgate analyze: "), std::string::npos);
  }
}

TEST_F(ProcessTest, AnalyzeTheGatewaysOwnStoreWithItsConfig) {
  std::string yaml = ConfigYaml("    metrics:\n      - {name: booked, type: binary, primary: true}\n");
  const std::string config = WriteConfig(yaml);
  StartGateway(yaml);
  std::string outcomes;
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(Predict("{\"user_id\":\"s" + std::to_string(i) + "\",\"inputs\":[[1]]}").status, 200);
    if (i % 4 == 0) {
      outcomes += "{\"experiment\":\"hyatt_booking_ab\",\"unit_id\":\"s" + std::to_string(i) +
                  "\",\"metric\":\"booked\",\"value\":1}\n";
    }
  }
  ASSERT_EQ(RawRequest(gateway_->port(), "POST", "/outcomes", outcomes, "application/x-ndjson").status, 200);
  gateway_->Shutdown();  // flushes the exposure log
  Subprocess p({ABGATE_BINARY, "analyze", "--config", config, "--experiment", "hyatt_booking_ab", "--format", "json"});
  ASSERT_EQ(p.Wait(20000), 0) << p.stderr_text();
  const auto report = boost::json::parse(p.stdout_text());
  const auto& arms = report.at("arms").as_array();
  ASSERT_EQ(arms.size(), 2u);
  EXPECT_EQ(arms[0].at("units").as_int64() + arms[1].at("units").as_int64(), 300);
  EXPECT_TRUE(report.at("srm").at("checked").as_bool());  // weights from the config
  EXPECT_EQ(report.at("control"), "A");
  const double booked_a = arms[0].at("metrics").at("booked").at("mean").as_double();
  const double booked_b = arms[1].at("metrics").at("booked").at("mean").as_double();
  const double units_a = arms[0].at("units").to_number<double>(), units_b = arms[1].at("units").to_number<double>();
  EXPECT_NEAR(booked_a * units_a + booked_b * units_b, 75, 1e-6);  // every fourth user booked
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

// Equal JSON, except that numbers need only agree to `rel` (sums over predictions are taken in
// whatever order the reader produced them). Reports the first difference's path.
::testing::AssertionResult JsonNear(const boost::json::value& a, const boost::json::value& b, double rel = 1e-12,
                                    const std::string& path = "") {
  if (a.is_number() && b.is_number()) {
    const double x = a.to_number<double>(), y = b.to_number<double>();
    if (std::abs(x - y) <= rel * std::max(std::abs(x), std::abs(y))) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << path << ": " << x << " vs " << y;
  }
  if (a.kind() != b.kind()) return ::testing::AssertionFailure() << path << ": " << a << " vs " << b;
  if (a.is_array()) {
    const auto &x = a.as_array(), &y = b.as_array();
    if (x.size() != y.size()) return ::testing::AssertionFailure() << path << ": sizes " << x.size() << " vs " << y.size();
    for (size_t i = 0; i < x.size(); ++i) {
      if (auto r = JsonNear(x[i], y[i], rel, path + "/" + std::to_string(i)); !r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  if (a.is_object()) {
    const auto &x = a.as_object(), &y = b.as_object();
    if (x.size() != y.size()) return ::testing::AssertionFailure() << path << ": " << a << " vs " << b;
    for (const auto& [key, value] : x) {
      const auto* other = y.if_contains(key);
      if (!other) return ::testing::AssertionFailure() << path << "/" << key << " missing";
      if (auto r = JsonNear(value, *other, rel, path + "/" + std::string(key)); !r) return r;
    }
    return ::testing::AssertionSuccess();
  }
  if (a == b) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << path << ": " << a << " vs " << b;
}

TEST_F(ProcessTest, ImportedResultsAnalyseLikeTheCsv) {
  const auto csv = (dir_ / "ab_results.csv").string();
  {
    std::ofstream out(csv);
    out << "user_id,model_version,y_true,y_pred\n";
    for (int i = 0; i < 2000; ++i) out << "u" << i << "," << (i % 4 ? 7 : 8) << "," << (i % 9 == 0) << ",0." << (i % 10) << "\n";
  }
  const std::string store = "sqlite:" + (dir_ / "imported.db").string();
  Subprocess imp({ABGATE_BINARY, "import", "results", csv, "--store", store, "--experiment", "seed"});
  ASSERT_EQ(imp.Wait(20000), 0) << imp.stderr_text();
  Subprocess again({ABGATE_BINARY, "import", "results", csv, "--store", store, "--experiment", "seed"});
  EXPECT_EQ(again.Wait(20000), 1);  // refuses to double the exposures
  EXPECT_NE(again.stderr_text().find("already has 2000 exposures"), std::string::npos) << again.stderr_text();

  Subprocess from_store({ABGATE_BINARY, "analyze", "--store", store, "--experiment", "seed", "--control", "v7", "--format", "json"});
  Subprocess from_csv({ABGATE_BINARY, "analyze", "--csv", csv, "--format", "json"});
  ASSERT_EQ(from_store.Wait(20000), 0) << from_store.stderr_text();
  ASSERT_EQ(from_csv.Wait(20000), 0);
  const auto a = boost::json::parse(from_store.stdout_text());
  const auto b = boost::json::parse(from_csv.stdout_text());
  EXPECT_TRUE(JsonNear(a.at("arms"), b.at("arms")));
  EXPECT_TRUE(JsonNear(a.at("comparisons"), b.at("comparisons")));
}

TEST_F(ProcessTest, ImportOutcomesFromJsonLinesAndCsvIsIdempotent) {
  const std::string store = "sqlite:" + (dir_ / "events.db").string();
  const auto jsonl = (dir_ / "outcomes.jsonl").string();
  std::ofstream(jsonl) << R"({"experiment":"e","unit_id":"u1","metric":"booked","value":true,"event_id":"a"})" "\n"
                       << R"({"experiment":"e","request_id":"r2","metric":"revenue","value":12.5,"ts":1790000000})" "\n";
  const auto csv = (dir_ / "outcomes.csv").string();
  std::ofstream(csv) << "experiment,unit_id,metric,value,event_id\ne,u3,booked,1,b\ne,u4,booked,0,c\n";
  for (int round = 0; round < 2; ++round) {
    Subprocess j({ABGATE_BINARY, "import", "outcomes", jsonl, "--store", store});
    ASSERT_EQ(j.Wait(20000), 0) << j.stderr_text();
    Subprocess c({ABGATE_BINARY, "import", "outcomes", csv, "--store", store});
    ASSERT_EQ(c.Wait(20000), 0) << c.stderr_text();
    if (round == 1) { EXPECT_NE(c.stdout_text().find("2 outcomes (0 stored, 2 duplicates)"), std::string::npos) << c.stdout_text(); }
  }
  sqlite3* db = nullptr;
  sqlite3_open((dir_ / "events.db").string().c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(*) FROM outcomes", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 5);  // the event-id-less JSON line was imported twice
  sqlite3_finalize(st);
  sqlite3_close(db);
  const auto bad = (dir_ / "bad.jsonl").string();
  std::ofstream(bad) << R"({"experiment":"e","metric":"booked","value":1})" "\n";
  Subprocess p({ABGATE_BINARY, "import", "outcomes", bad, "--store", store});
  EXPECT_EQ(p.Wait(20000), 1);
  EXPECT_NE(p.stderr_text().find("bad.jsonl:1: needs experiment, metric, and request_id and/or unit_id"), std::string::npos)
      << p.stderr_text();
  // Boost.JSON reads 1e400 as inf and 0e400 as NaN: refused in one line, as POST /outcomes
  // refuses them (a NaN or huge ts was cast to microseconds: undefined, stored as INT64_MIN).
  const struct {
    const char* file;
    const char* content;
    const char* error;
  } refused[] = {
      {"inf-value.jsonl", R"({"experiment":"e","unit_id":"u9","metric":"revenue","value":1e400})" "\n",
       "inf-value.jsonl:1: 'value' must be a finite number"},
      {"nan-value.jsonl", R"({"experiment":"e","unit_id":"u9","metric":"revenue","value":-0e400})" "\n",
       "nan-value.jsonl:1: 'value' must be a finite number"},
      {"nan-ts.jsonl", R"({"experiment":"e","unit_id":"u9","metric":"booked","value":1,"ts":0e400})" "\n",
       "nan-ts.jsonl:1: 'ts' must be Unix seconds (a number)"},
      {"inf-ts.jsonl", R"({"experiment":"e","unit_id":"u9","metric":"booked","value":1,"ts":1e400})" "\n",
       "inf-ts.jsonl:1: 'ts' must be Unix seconds (a number)"},
      {"huge-ts.csv", "experiment,unit_id,metric,value,ts\ne,u9,booked,1,1e300\n", "huge-ts.csv:2: ts must be Unix seconds"},
  };
  for (const auto& r : refused) {
    const auto path = (dir_ / r.file).string();
    std::ofstream(path) << r.content;
    Subprocess imp({ABGATE_BINARY, "import", "outcomes", path, "--store", store});
    EXPECT_EQ(imp.Wait(20000), 1) << r.file;
    EXPECT_NE(imp.stderr_text().find(r.error), std::string::npos) << r.file << ": " << imp.stderr_text();
  }
  sqlite3_open((dir_ / "events.db").string().c_str(), &db);
  sqlite3_prepare_v2(db, "SELECT count(*) FROM outcomes", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 5);  // none of them stored
  sqlite3_finalize(st);
  sqlite3_close(db);
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

// The durability contract of POST /outcomes: a 2xx means committed, even if the gateway is
// killed the next instant.
TEST_F(ProcessTest, EveryAcknowledgedOutcomeSurvivesSigkill) {
  std::string yaml = ConfigYaml("    metrics:\n      - {name: booked, type: binary, primary: true}\n");
  Subprocess gw({ABGATE_BINARY, "serve", "--config", WriteConfig(yaml)}, {"ABGATE_TEST_ADMIN_TOKEN=x"});
  const uint16_t port = PortFrom(gw.ReadStdoutLine(10000), "data");
  ASSERT_NE(port, 0);
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> acked;
  std::vector<std::thread> clients;
  for (int t = 0; t < 3; ++t) {
    clients.emplace_back([&, t] {
      RawConnection c(port, 2000);
      for (int batch = 0; batch < 100000 && !stop; ++batch) {
        std::string body;
        std::vector<std::string> ids;
        for (int i = 0; i < 20; ++i) {
          ids.push_back("t" + std::to_string(t) + "-b" + std::to_string(batch) + "-" + std::to_string(i));
          body += R"({"experiment":"hyatt_booking_ab","unit_id":"u)" + std::to_string(i) +
                  R"(","metric":"booked","value":1,"event_id":")" + ids.back() + "\"}\n";
        }
        if (!c.Send("POST /outcomes HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body)) {
          return;
        }
        const auto r = c.Read();
        if (r.status != 200) return;  // killed mid-request: not acknowledged
        std::lock_guard lock(mu);
        acked.insert(acked.end(), ids.begin(), ids.end());
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  gw.Signal(SIGKILL);
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(gw.Wait(5000), 128 + SIGKILL);
  ASSERT_GT(acked.size(), 100u);

  // One scan into a set (a per-id query would be quadratic without an index on event_id alone).
  const auto rows = store_->QueryStrings("SELECT event_id FROM outcomes WHERE value = 1 AND metric = 'booked'");
  const std::set<std::string> stored(rows.begin(), rows.end());
  size_t found = 0;
  for (const auto& id : acked) found += stored.count(id);
  EXPECT_EQ(found, acked.size());
}

// Issue 14, item 9: exposures are best-effort, but the loss on SIGKILL is bounded by time: what
// is lost is the queue at the kill, flush_ms plus the transaction in flight, so an exposure
// answered more than 3 s before the kill is in the store (a generous bound: on a machine
// running the suite, one PostgreSQL transaction took over 1 s). Three kills under load; the
// figures (README, "What abgate promises under faults") are printed.
TEST_F(ProcessTest, ExposureLossOnSigkillIsBoundedByTime) {
  int64_t total_served = 0, total_lost = 0, worst_lost = 0;
  double worst_span_s = 0;
  for (int run = 0; run < 3; ++run) {
    Subprocess gw({ABGATE_BINARY, "serve", "--config", WriteConfig(ConfigYaml())}, {"ABGATE_TEST_ADMIN_TOKEN=x"});
    const uint16_t port = PortFrom(gw.ReadStdoutLine(10000), "data");
    ASSERT_NE(port, 0);
    using Clock = std::chrono::steady_clock;
    std::atomic<bool> stop{false};
    std::mutex mu;
    std::vector<std::pair<std::string, Clock::time_point>> answered;
    std::vector<std::thread> clients;
    for (int t = 0; t < 2; ++t) {
      clients.emplace_back([&, t] {
        RawConnection c(port, 2000);
        for (int i = 0; i < 1'000'000 && !stop; ++i) {
          const std::string id = "k" + std::to_string(run) + "-" + std::to_string(t) + "-" + std::to_string(i);
          const std::string body = R"({"user_id":"u)" + std::to_string(i) + R"(","inputs":[[1]]})";
          if (!c.Send("POST /predict HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + id +
                      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body) ||
              c.Read().status != 200) {
            return;  // killed
          }
          std::lock_guard lock(mu);
          answered.emplace_back(id, Clock::now());
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    gw.Signal(SIGKILL);
    const auto killed_at = Clock::now();
    stop = true;
    for (auto& c : clients) c.join();
    EXPECT_EQ(gw.Wait(5000), 128 + SIGKILL);
    const auto rows = store_->QueryStrings("SELECT request_id FROM exposures WHERE request_id LIKE 'k" +
                                           std::to_string(run) + "-%'");
    const std::set<std::string> stored(rows.begin(), rows.end());
    int64_t lost = 0, lost_old = 0;
    double span_s = 0;
    for (const auto& [id, at] : answered) {
      if (stored.count(id)) continue;
      ++lost;
      const double age = std::chrono::duration<double>(killed_at - at).count();
      span_s = std::max(span_s, age);
      lost_old += age > 3.0;
    }
    EXPECT_EQ(lost_old, 0) << "run " << run << ": an exposure answered more than 3 s before the kill was lost";
    ASSERT_GT(answered.size(), 100u);
    total_served += static_cast<int64_t>(answered.size());
    total_lost += lost;
    if (lost > worst_lost) worst_lost = lost;
    worst_span_s = std::max(worst_span_s, span_s);
  }
  std::printf("sigkill figures: 3 runs, %lld exposures answered, %lld lost (worst run %lld, the oldest lost %.3f s "
              "before the kill)\n",
              static_cast<long long>(total_served), static_cast<long long>(total_lost),
              static_cast<long long>(worst_lost), worst_span_s);
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

// Issue 12: `abgate analyze --store` needs no YAML: an experiment created through the admin API
// is analysed as it ran — its arms, control and metrics from the stored config, its weight
// change from the audit trail (SRM checked per weight period, and the report says so), and every
// metric the store has outcomes for.
TEST_F(ProcessTest, AnalyzeStoreAloneSeesAnAdminCreatedExperimentAsItRan) {
  StartGateway(ConfigYaml());
  const std::string upstream_a = "http://127.0.0.1:" + std::to_string(model_a_->port()) + "/invocations";
  const std::string upstream_b = "http://127.0.0.1:" + std::to_string(model_b_->port()) + "/invocations";
  RawResponse created = Admin("POST", "/api/v1/experiments",
                              R"({"name":"made_by_api","model":"hyatt_booking_model","control":"B",)"
                              R"("arms":[{"name":"A","version":"7","weight":50,"upstream":")" + upstream_a +
                                  R"("},{"name":"B","version":"8","weight":50,"upstream":")" + upstream_b + R"("}]})");
  ASSERT_EQ(created.status, 201) << created.body;
  std::string outcomes;
  auto send_outcomes = [&] {  // in bodies under the fixture's 64 KB limit
    ASSERT_EQ(RawRequest(gateway_->port(), "POST", "/outcomes", outcomes, "application/x-ndjson").status, 200);
    outcomes.clear();
  };
  auto traffic = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      if (i % 100 == 0 && !outcomes.empty()) send_outcomes();
      const std::string user = "m" + std::to_string(i);
      ASSERT_EQ(Predict(R"({"user_id":")" + user + R"(","inputs":[[1]]})", "/predict/made_by_api").status, 200);
      outcomes += R"({"experiment":"made_by_api","unit_id":")" + user + R"(","metric":"booked","value":)" +
                  (i % 5 == 0 ? "1" : "0") + "}\n";
      outcomes += R"({"experiment":"made_by_api","unit_id":")" + user + R"(","metric":"revenue","value":)" +
                  std::to_string(i % 5 == 0 ? 120.5 + i % 7 : 0.0) + "}\n";
    }
  };
  traffic(0, 600);
  // A sends its share to B: 50/50 → 10/90 (B's weight does not go down, so nobody moves back).
  RawResponse weights = Admin("POST", "/api/v1/experiments/made_by_api/weights", R"({"weights":[10,90]})");
  ASSERT_EQ(weights.status, 200) << weights.body;
  traffic(600, 1800);
  send_outcomes();
  gateway_->Shutdown();

  Subprocess p({ABGATE_BINARY, "analyze", "--store", store_->uri(), "--experiment", "made_by_api", "--format", "json"});
  ASSERT_EQ(p.Wait(30000), 0) << p.stderr_text();
  const auto report = boost::json::parse(p.stdout_text());
  EXPECT_EQ(report.at("control"), "B");  // from the stored config, not the first arm by name
  EXPECT_EQ(report.at("primary_metric"), "booked");  // no metric declared: the store's, by name
  const auto& arm_a = report.at("arms").as_array()[0].as_object();
  EXPECT_EQ(arm_a.at("metrics").at("booked").at("type"), "binary");
  EXPECT_EQ(arm_a.at("metrics").at("revenue").at("type"), "continuous");  // found in the store
  const auto& srm = report.at("srm").as_object();
  ASSERT_TRUE(srm.at("checked").as_bool()) << boost::json::serialize(srm);
  EXPECT_FALSE(srm.at("mismatch").as_bool()) << boost::json::serialize(srm);  // against 50/50 it would be
  EXPECT_NE(std::string(srm.at("period").as_string()).find("weights changed"), std::string::npos);
  // Against the final 10/90 alone, the whole experiment's split is a mismatch: the check must
  // have used the weights in force.
  Subprocess flat({ABGATE_BINARY, "analyze", "--store", store_->uri(), "--experiment", "made_by_api", "--weights",
                   "10,90", "--format", "json"});
  ASSERT_EQ(flat.Wait(30000), 0) << flat.stderr_text();
  EXPECT_TRUE(boost::json::parse(flat.stdout_text()).at("srm").at("mismatch").as_bool());
  bool found_revenue = false;
  for (const auto& c : report.at("comparisons").as_array()) {
    if (c.at("metric") == "revenue") {
      found_revenue = true;
      EXPECT_EQ(c.at("family"), "secondary");
    }
  }
  EXPECT_TRUE(found_revenue);
}

}  // namespace
}  // namespace abgate::testing
