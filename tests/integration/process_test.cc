// Whole-binary tests: `abgate serve` as a process (SIGTERM drain and flush), CLI errors,
// and `abgate assign`.
#include <signal.h>

#include <fstream>

#include "assign/allocation.h"
#include "assign/hash.h"
#include "gateway_fixture.h"
#include "testing/subprocess.h"

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
  sqlite3* db = nullptr;
  sqlite3_open((dir_ / "events.db").string().c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, "SELECT count(DISTINCT unit_id) FROM exposures", -1, &st, nullptr);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), 500);
  sqlite3_finalize(st);
  sqlite3_close(db);
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
