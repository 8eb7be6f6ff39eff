// Store faults under load: a private PostgreSQL server stopped and started again while the
// gateway serves (issue 13, item 5). Every exposure is written or counted as dropped, no
// acknowledged outcome is lost, outcomes and admin changes are refused with 503 while the
// store is down, /readyz and /metrics report the outage, and the gateway reconnects by itself.
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "gateway_fixture.h"
#include "postgres/connection.h"
#include "testing/postgres_server.h"

namespace abgate::testing {
namespace {

using std::chrono::steady_clock;

class StoreFaultTest : public GatewayFixture {
 protected:
  // The fixture's config with `store` as the event store.
  std::string ConfigWithStore(const std::string& store, std::string_view extra_events = "") {
    std::string yaml = ConfigYaml("    metrics:\n      - {name: booked, type: binary, primary: true}\n");
    const size_t at = yaml.find("  store: '");
    const size_t end = yaml.find('\n', at);
    yaml.replace(at, end - at, "  store: '" + store + "'" + std::string(extra_events));
    return yaml;
  }
  // Polls `condition` every 20 ms until it holds or `seconds` pass.
  static bool WaitFor(const std::function<bool()>& condition, double seconds) {
    const auto deadline = steady_clock::now() + std::chrono::duration<double>(seconds);
    while (steady_clock::now() < deadline) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return condition();
  }
  static int64_t Metric(const std::string& body, const std::string& name) {
    const size_t at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stoll(body.substr(at + name.size() + 2));
  }
};

struct Load {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> served{0};           // /predict answered 200
  std::atomic<int64_t> served_while_down{0};
  std::atomic<int64_t> predict_errors{0};
  std::atomic<int64_t> outcomes_refused{0};  // 503 with Retry-After
  std::atomic<int64_t> outcomes_bad{0};      // anything else not 200 (a 503 without Retry-After included)
  std::atomic<bool> down{false};
  std::mutex mu;
  std::vector<std::string> acked;  // event ids answered 200
};

TEST_F(StoreFaultTest, PostgresStoppedUnderLoadAndStartedAgain) {
  PostgresServer pg(dir_.string());
  if (!pg.ok()) GTEST_SKIP() << pg.reason();
  // A queue smaller than the outage's traffic: it buffers 50,000 exposures, then drops and counts.
  StartGateway(ConfigWithStore(pg.uri(), "\n  queue_capacity: 50000"));
  const uint16_t port = gateway_->port();
  const uint16_t admin = gateway_->admin_port();

  Load load;
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&, t] {
      RawConnection c(port, 10000);
      for (int i = 0; i < 2'000'000 && !load.stop; ++i) {
        const std::string body = R"({"user_id":"t)" + std::to_string(t) + "-" + std::to_string(i) + R"(","inputs":[[1]]})";
        if (!c.Send("POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body)) {
          ++load.predict_errors;
          return;
        }
        const auto r = c.Read();
        if (r.status != 200) {
          ++load.predict_errors;
          return;
        }
        ++load.served;
        if (load.down) ++load.served_while_down;
      }
    });
  }
  std::atomic<int> last_bad_status{0};
  clients.emplace_back([&] {
    RawConnection c(port, 10000);
    for (int batch = 0; batch < 1'000'000 && !load.stop; ++batch) {
      std::string body;
      std::vector<std::string> ids;
      for (int i = 0; i < 5; ++i) {
        ids.push_back("b" + std::to_string(batch) + "-" + std::to_string(i));
        body += R"({"experiment":"hyatt_booking_ab","unit_id":"u)" + std::to_string(i) +
                R"(","metric":"booked","value":1,"event_id":")" + ids.back() + "\"}\n";
      }
      if (!c.Send("POST /outcomes HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body)) {
        ++load.outcomes_bad;
        return;
      }
      const auto r = c.Read();
      if (r.status == 200) {
        std::lock_guard lock(load.mu);
        load.acked.insert(load.acked.end(), ids.begin(), ids.end());
      } else if (r.status == 503 && r.headers.count("retry-after")) {
        ++load.outcomes_refused;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a polite client backs off
      } else {
        ++load.outcomes_bad;
        last_bad_status = r.status;
      }
    }
  });
  auto stop_load = [&] {
    load.stop = true;
    for (auto& c : clients) c.join();
    clients.clear();
  };

  // Healthy under load first.
  ASSERT_TRUE(WaitFor([&] { return load.served > 500; }, 20)) << "no load";
  ASSERT_EQ(RawRequest(port, "GET", "/readyz").status, 200);

  // The outage.
  ASSERT_TRUE(pg.Stop());
  load.down = true;
  const auto down_at = steady_clock::now();
  const bool noticed = WaitFor([&] { return RawRequest(port, "GET", "/readyz").status == 503; }, 10);
  const auto ready = RawRequest(port, "GET", "/readyz");
  const auto metrics_down = RawRequest(port, "GET", "/metrics").body;
  // An admin change while the store is down: refused, nothing applied.
  const auto version_before = gateway_->snapshot()->version;
  const auto change = RawRequest(admin, "POST", "/api/v1/experiments/hyatt_booking_ab/weights", R"({"weights":[50,50]})",
                                 "application/json", std::string("Authorization: Bearer ") + kToken + "\r\n");
  const auto version_after = gateway_->snapshot()->version;
  // Serve through 6 s of outage in all.
  while (steady_clock::now() - down_at < std::chrono::seconds(6)) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const int64_t refused_during_outage = load.outcomes_refused;

  // Back: the gateway reconnects by itself.
  ASSERT_TRUE(pg.Start());
  load.down = false;
  const auto up_at = steady_clock::now();
  const bool recovered = WaitFor([&] { return RawRequest(port, "GET", "/readyz").status == 200; }, 15);
  const double reconnect_s = std::chrono::duration<double>(steady_clock::now() - up_at).count();
  // Outcomes are acknowledged again.
  const size_t acked_at_recovery = [&] {
    std::lock_guard lock(load.mu);
    return load.acked.size();
  }();
  const bool outcomes_back = WaitFor(
      [&] {
        std::lock_guard lock(load.mu);
        return load.acked.size() > acked_at_recovery + 50;
      },
      10);
  stop_load();

  EXPECT_TRUE(noticed) << "/readyz never reported the outage";
  EXPECT_EQ(ready.status, 503);
  EXPECT_NE(ready.body.find("STORE_UNAVAILABLE"), std::string::npos) << ready.body;
  EXPECT_EQ(Metric(metrics_down, "abgate_event_store_up"), 0) << metrics_down;
  EXPECT_EQ(change.status, 503) << change.body;
  EXPECT_NE(change.body.find("STORE_UNAVAILABLE"), std::string::npos) << change.body;
  EXPECT_EQ(version_after, version_before) << "a change the store did not take was applied";
  EXPECT_TRUE(recovered) << "the gateway did not reconnect";
  EXPECT_TRUE(outcomes_back);
  EXPECT_EQ(load.predict_errors, 0) << "predictions must be served through the outage";
  EXPECT_GT(load.served_while_down, 0);
  EXPECT_GT(refused_during_outage, 0);
  EXPECT_EQ(load.outcomes_bad, 0) << "last status " << last_bad_status;

  // Every exposure is written or counted as dropped; the store holds exactly the written ones.
  gateway_->FlushEventsForTest();
  const auto stats = gateway_->writer_stats();
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(stats.written + stats.dropped + stats.write_errors, load.served.load());
  EXPECT_EQ(stats.write_errors, 0);
  EXPECT_EQ(stats.outages, 1);
  const auto metrics_up = RawRequest(port, "GET", "/metrics").body;
  EXPECT_EQ(Metric(metrics_up, "abgate_event_store_up"), 1);

  auto c = postgres::Connection::Connect(pg.uri());
  ASSERT_TRUE(c.ok()) << c.status();
  auto exposures = c->Query("SELECT count(*) FROM exposures");
  ASSERT_TRUE(exposures.ok()) << exposures.status();
  EXPECT_EQ(exposures->Int(0, 0), stats.written);
  // Not one acknowledged outcome lost.
  auto rows = c->Query("SELECT event_id FROM outcomes");
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::set<std::string> stored;
  for (int i = 0; i < rows->rows(); ++i) stored.insert(rows->Text(i, 0));
  size_t lost = 0;
  for (const auto& id : load.acked) lost += stored.count(id) == 0;
  EXPECT_EQ(lost, 0u);
  // The figures (README, "What abgate promises under faults").
  std::printf(
      "outage figures: %lld predictions served (%lld while PostgreSQL was down), %lld exposures written, %lld "
      "dropped (queue full), %lld lost; %lld outcome requests refused with 503, %zu outcomes acknowledged, %zu lost; "
      "reconnected %.2f s after PostgreSQL was back\n",
      static_cast<long long>(load.served.load()), static_cast<long long>(load.served_while_down.load()),
      static_cast<long long>(stats.written), static_cast<long long>(stats.dropped),
      static_cast<long long>(stats.write_errors), static_cast<long long>(refused_during_outage), load.acked.size(), lost,
      reconnect_s);
}

}  // namespace
}  // namespace abgate::testing
