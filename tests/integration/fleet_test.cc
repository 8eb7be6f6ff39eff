// A fleet (issue 13): several `abgate serve` processes sharing one PostgreSQL store, behind a
// real nginx round-robin upstream. A change accepted by one replica reaches the others within
// a second (measured), two changes based on one version get exactly one 409, `abgate rollout`
// returns once every replica serves the step, and GET /api/v1/fleet shows who serves what.
// Runs on the PostgreSQL backend only (label `postgres`).
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include <boost/json.hpp>

#include "gateway_fixture.h"
#include "testing/load_balancer.h"
#include "testing/subprocess.h"
#include "testing/test_paths.h"

namespace abgate::testing {
namespace {

namespace json = boost::json;
using Steady = std::chrono::steady_clock;

struct Replica {
  std::unique_ptr<Subprocess> process;
  uint16_t data = 0;
  uint16_t admin = 0;
};

uint16_t PortFrom(const std::string& line, const std::string& key) {
  const size_t at = line.find(key + "=127.0.0.1:");
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::stoi(line.substr(at + key.size() + 11)));
}

class FleetTest : public GatewayFixture {
 protected:
  void SetUp() override {
    GatewayFixture::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    if (!store_->is_postgres()) GTEST_SKIP() << "a fleet shares a PostgreSQL store (the postgres.* variant)";
  }

  void TearDown() override {
    for (auto& r : replicas_) {
      r.process->Signal(SIGTERM);
      EXPECT_EQ(r.process->Wait(20000), 0) << r.process->stderr_text();
    }
    replicas_.clear();
    GatewayFixture::TearDown();
  }

  void StartReplicas(int n, std::string_view weights) {
    const auto path = dir_ / "fleet.yaml";
    std::ofstream(path) << ConfigYaml("", weights);
    for (int i = 0; i < n; ++i) {
      Replica r;
      r.process = std::make_unique<Subprocess>(
          std::vector<std::string>{ABGATE_BINARY, "serve", "--config", path.string()},
          std::vector<std::string>{std::string("ABGATE_TEST_ADMIN_TOKEN=") + kToken});
      const std::string line = r.process->ReadStdoutLine(30000);
      r.data = PortFrom(line, "data");
      r.admin = PortFrom(line, "admin");
      ASSERT_NE(r.admin, 0) << line;
      replicas_.push_back(std::move(r));
    }
  }

  RawResponse AdminOn(uint16_t port, std::string_view method, std::string_view target, std::string_view body = "",
                      const std::string& extra_headers = "") {
    return RawRequest(port, method, target, body, "application/json",
                      std::string("Authorization: Bearer ") + kToken + "\r\n" + extra_headers);
  }

  static json::value Json(const RawResponse& r) {
    boost::system::error_code ec;
    json::value v = json::parse(r.body, ec);
    return ec ? json::value() : v;
  }

  // The arm a replica serves `user` now.
  static std::string ArmOn(uint16_t port, const std::string& user) {
    const auto r = RawRequest(port, "POST", "/predict", R"({"user_id":")" + user + R"(","inputs":[[1]]})");
    const auto it = r.headers.find("x-abgate-arm");
    return r.status == 200 && it != r.headers.end() ? it->second : "status " + std::to_string(r.status);
  }

  static int64_t Metric(uint16_t port, const std::string& name) {
    const auto r = RawRequest(port, "GET", "/metrics");
    std::smatch m;
    if (!std::regex_search(r.body, m, std::regex("\n" + name + " ([0-9]+)"))) return -1;
    return std::stoll(m[1]);
  }

  std::vector<Replica> replicas_;
};

TEST_F(FleetTest, WeightChangeOnOneReplicaReachesTheOthersWithinOneSecond) {
  StartReplicas(3, "100, 0");
  ASSERT_FALSE(HasFatalFailure());
  for (const auto& r : replicas_) ASSERT_EQ(ArmOn(r.data, "u1"), "A");
  std::vector<double> took_ms;
  for (int round = 0; round < 6; ++round) {
    const std::string target = round % 2 == 0 ? "B" : "A";
    const std::string weights = round % 2 == 0 ? "[0, 100]" : "[100, 0]";
    const size_t changed_on = round % replicas_.size();
    // From before the change is sent until every other replica routes by it.
    const auto t0 = Steady::now();
    const auto reply = AdminOn(replicas_[changed_on].admin, "POST", "/api/v1/experiments/hyatt_booking_ab/weights",
                               R"({"weights": )" + weights + R"(, "allow_reassignment": true})");
    ASSERT_EQ(reply.status, 200) << reply.body;
    EXPECT_EQ(ArmOn(replicas_[changed_on].data, "u1"), target);  // in force where accepted once answered
    double slowest = 0;
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (i == changed_on) continue;
      const auto deadline = t0 + std::chrono::seconds(5);
      std::string arm;
      while ((arm = ArmOn(replicas_[i].data, "u1")) != target && Steady::now() < deadline) {
      }
      ASSERT_EQ(arm, target) << "replica " << i << " still routes by the old weights after 5 s";
      slowest = std::max(slowest, std::chrono::duration<double, std::milli>(Steady::now() - t0).count());
    }
    took_ms.push_back(slowest);
  }
  std::sort(took_ms.begin(), took_ms.end());
  std::printf("[fleet] a weight change on one of 3 replicas was routed by all of them after %.0f ms (median), "
              "%.0f ms (max) over %zu changes\n",
              took_ms[took_ms.size() / 2], took_ms.back(), took_ms.size());
  EXPECT_LE(took_ms.back(), 1000) << "slower than the 1 s contract";
}

TEST_F(FleetTest, ConcurrentChangesBasedOnOneVersionGetExactlyOne409) {
  StartReplicas(2, "50, 50");
  ASSERT_FALSE(HasFatalFailure());
  for (int round = 0; round < 4; ++round) {
    const auto got = AdminOn(replicas_[0].admin, "GET", "/api/v1/experiments/hyatt_booking_ab");
    ASSERT_EQ(got.status, 200);
    const int64_t version = Json(got).at("runtime").at("config_version").as_int64();
    EXPECT_EQ(got.headers.at("etag"), "\"" + std::to_string(version) + "\"");
    // Both based on `version`, one through the body and one through If-Match, on two replicas.
    auto by_body = std::async(std::launch::async, [&] {
      return AdminOn(replicas_[0].admin, "POST", "/api/v1/experiments/hyatt_booking_ab/weights",
                     R"({"weights": [60, 40], "allow_reassignment": true, "expected_config_version": )" +
                         std::to_string(version) + "}");
    });
    auto by_header = std::async(std::launch::async, [&] {
      return AdminOn(replicas_[1].admin, "POST", "/api/v1/experiments/hyatt_booking_ab/weights",
                     R"({"weights": [40, 60], "allow_reassignment": true})",
                     "If-Match: \"" + std::to_string(version) + "\"\r\n");
    });
    const RawResponse a = by_body.get(), b = by_header.get();
    std::vector<int> statuses = {a.status, b.status};
    std::sort(statuses.begin(), statuses.end());
    ASSERT_EQ(statuses, (std::vector<int>{200, 409})) << a.body << "\n" << b.body;
    const RawResponse& conflict = a.status == 409 ? a : b;
    EXPECT_EQ(Json(conflict).at("error_code"), "CONFLICT") << conflict.body;
  }
  // A change based on an old version is refused; based on the current one it is accepted.
  const auto stale = AdminOn(replicas_[1].admin, "POST", "/api/v1/experiments/hyatt_booking_ab/weights",
                             R"({"weights": [50, 50], "allow_reassignment": true, "expected_config_version": 1})");
  EXPECT_EQ(stale.status, 409) << stale.body;
  const auto bad = AdminOn(replicas_[1].admin, "POST", "/api/v1/experiments/hyatt_booking_ab/weights",
                           R"({"weights": [50, 50]})", "If-Match: yesterday\r\n");
  EXPECT_EQ(bad.status, 400) << bad.body;
  const auto fleet = AdminOn(replicas_[1].admin, "GET", "/api/v1/fleet");
  ASSERT_EQ(fleet.status, 200);
  const int64_t current = Json(fleet).at("config_version").as_int64();
  const auto fresh = AdminOn(replicas_[1].admin, "POST", "/api/v1/experiments/hyatt_booking_ab/weights",
                             R"({"weights": [50, 50], "allow_reassignment": true, "expected_config_version": )" +
                                 std::to_string(current) + "}");
  EXPECT_EQ(fresh.status, 200) << fresh.body;
}

TEST_F(FleetTest, RolloutByHandBehindNginxIsInForceOnEveryReplicaWhenItReturns) {
  StartReplicas(3, "100, 0");
  ASSERT_FALSE(HasFatalFailure());
  std::vector<uint16_t> data_ports;
  for (const auto& r : replicas_) data_ports.push_back(r.data);
  LoadBalancer lb(dir_.string(), data_ports);
  ASSERT_TRUE(lb.ok()) << lb.error();

  const std::string admin_url = "http://127.0.0.1:" + std::to_string(replicas_[0].admin);
  Subprocess rollout({ABGATE_BINARY, "rollout", "--experiment", "hyatt_booking_ab", "--percent", "50", "--admin-url",
                      admin_url, "--token-env", "ABGATE_TEST_ADMIN_TOKEN"},
                     {std::string("ABGATE_TEST_ADMIN_TOKEN=") + kToken});
  ASSERT_EQ(rollout.Wait(60000), 0) << rollout.stderr_text();
  std::printf("[fleet] %s", rollout.stdout_text().c_str());
  EXPECT_NE(rollout.stdout_text().find("arm B at 50%"), std::string::npos) << rollout.stdout_text();
  EXPECT_NE(rollout.stdout_text().find("on 3 live gateway(s)"), std::string::npos) << rollout.stdout_text();

  // Once it returned, every replica serves the step: no waiting here.
  int64_t version = -1;
  for (const auto& r : replicas_) {
    const json::value e = Json(AdminOn(r.admin, "GET", "/api/v1/experiments/hyatt_booking_ab"));
    EXPECT_EQ(e.at("runtime").at("current_weights"), (json::array{0.5, 0.5})) << e;
    if (version < 0) version = e.at("runtime").at("config_version").as_int64();
    EXPECT_EQ(e.at("runtime").at("config_version").as_int64(), version);
    EXPECT_EQ(Metric(r.data, "abgate_config_version"), version);
  }
  const json::value fleet = Json(AdminOn(replicas_[2].admin, "GET", "/api/v1/fleet"));
  ASSERT_TRUE(fleet.is_object()) << fleet;
  EXPECT_EQ(fleet.at("config_version").as_int64(), version);
  EXPECT_EQ(fleet.at("live_replicas").as_int64(), 3);
  EXPECT_EQ(fleet.at("converged"), true);
  ASSERT_EQ(fleet.at("replicas").as_array().size(), 3u) << fleet;
  for (const auto& r : fleet.at("replicas").as_array()) {
    EXPECT_EQ(r.at("applied_config_version").as_int64(), version) << r;
    EXPECT_EQ(r.at("lag_versions").as_int64(), 0) << r;
    EXPECT_EQ(r.at("live"), true) << r;
  }
  // The audit says the step was in force everywhere, with the replicas that served it.
  const json::value audit = Json(AdminOn(replicas_[1].admin, "GET", "/api/v1/audit?experiment=hyatt_booking_ab"));
  const auto& rows = audit.at("audit").as_array();
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0].at("action"), "fleet_applied") << rows[0];
  EXPECT_EQ(rows[0].at("after").at("config_version").as_int64(), version);
  EXPECT_EQ(rows[0].at("after").at("replicas").as_array().size(), 3u);

  // Through nginx: both arms served, by every replica, and every exposure lands in one store.
  std::map<std::string, int> arms;
  for (int i = 0; i < 300; ++i) ++arms[ArmOn(lb.port(), "lb-" + std::to_string(i))];
  EXPECT_GT(arms["A"], 90);
  EXPECT_GT(arms["B"], 90);
  EXPECT_EQ(arms["A"] + arms["B"], 300);
  const int64_t stored_before = store_->QueryInt("SELECT count(*) FROM exposures WHERE unit_id LIKE 'lb-%'");
  (void)stored_before;
  for (const auto& r : replicas_) {
    // The round robin gave every replica a share (exposures flushed every 5 ms).
    const auto deadline = Steady::now() + std::chrono::seconds(5);
    int64_t n = 0;
    while ((n = Metric(r.data, "abgate_events_written_total")) <= 0 && Steady::now() < deadline) {
    }
    EXPECT_GT(n, 0);
  }
  const auto deadline = Steady::now() + std::chrono::seconds(5);
  while (store_->QueryInt("SELECT count(*) FROM exposures WHERE unit_id LIKE 'lb-%'") < 300 && Steady::now() < deadline) {
  }
  EXPECT_EQ(store_->QueryInt("SELECT count(*) FROM exposures WHERE unit_id LIKE 'lb-%'"), 300);

  // Bad input: one line, non-zero exit, nothing changed.
  Subprocess bad({ABGATE_BINARY, "rollout", "--experiment", "hyatt_booking_ab", "--percent", "150", "--admin-url",
                  admin_url, "--token-env", "ABGATE_TEST_ADMIN_TOKEN"},
                 {std::string("ABGATE_TEST_ADMIN_TOKEN=") + kToken});
  EXPECT_NE(bad.Wait(30000), 0);
  EXPECT_NE(bad.stderr_text().find("abgate rollout:"), std::string::npos) << bad.stderr_text();
  EXPECT_EQ(Json(AdminOn(replicas_[0].admin, "GET", "/api/v1/fleet")).at("config_version").as_int64(), version);
}

}  // namespace
}  // namespace abgate::testing
