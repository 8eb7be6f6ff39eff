// The network fault suite (issue 14, items 3, 4 and 8): real `abgate` processes on loopback,
// attacked as a slow or hostile client would, or with an upstream frozen by SIGSTOP. Each test
// waits on observable conditions with deadlines and stays under ~30 s.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "gtest/gtest.h"
#include "testing/raw_http.h"
#include "testing/subprocess.h"
#include "testing/test_paths.h"

namespace abgate::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

const fs::path kModel = fs::path(ABGATE_TEST_DATA_DIR) / "xgboost" / "model_xgb";

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

// Polls `done` every 10 ms until it holds or `ms` pass.
bool WaitFor(const std::function<bool()>& done, int ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

uint16_t PortAfter(const std::string& line, const std::string& marker) {
  const size_t at = line.find(marker);
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::stoi(line.substr(at + marker.size())));
}

// VmRSS of a process in kB, from /proc (0 when unreadable).
int64_t RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return 0;
}

// A loopback connection opened without waiting for the handshake (the server's backlog may be
// full); -1 when the test process is out of descriptors or ports.
int ConnectNonBlocking(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

struct Fds {
  std::vector<int> fds;
  ~Fds() {
    for (int fd : fds) ::close(fd);
  }
};

// Raises this process's open-file soft limit to min(hard, want); returns the soft limit now.
int64_t RaiseNofile(int64_t want) {
  rlimit l{};
  ::getrlimit(RLIMIT_NOFILE, &l);
  const rlim_t target = std::min<rlim_t>(l.rlim_max, static_cast<rlim_t>(want));
  if (l.rlim_cur < target) {
    l.rlim_cur = target;
    ::setrlimit(RLIMIT_NOFILE, &l);
  }
  ::getrlimit(RLIMIT_NOFILE, &l);
  return static_cast<int64_t>(l.rlim_cur);
}

// Sends a request line, then one header line every `every_ms` and never the blank line; returns
// the status answered (0 = none) and how long it took.
std::pair<int, int64_t> TrickleHeaders(uint16_t port, int every_ms, int max_ms) {
  RawConnection c(port, max_ms);
  const auto start = Clock::now();
  if (!c.Send("GET /health HTTP/1.1\r\nHost: x\r\n")) return {0, 0};
  std::atomic<bool> stop{false};
  std::thread trickle([&] {
    for (int i = 0; !stop && MsSince(start) < max_ms; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(every_ms));
      if (!c.Send("X-Trickle-" + std::to_string(i) + ": y\r\n")) return;
    }
  });
  const RawResponse r = c.Read();
  const int64_t took = MsSince(start);
  stop = true;
  trickle.join();
  return {r.status, took};
}

std::string WriteFile(const fs::path& p, const std::string& text) {
  std::ofstream(p) << text;
  return p.string();
}

class FaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("abgate_fault_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `abgate model-server` on the fixture model; its port in *port.
  std::unique_ptr<Subprocess> StartModelServer(uint16_t* port, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {ABGATE_BINARY, "model-server", "--model", kModel.string(), "--port", "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<Subprocess>(argv);
    const std::string line = p->ReadStdoutLine(15000);
    *port = PortAfter(line, "127.0.0.1:");
    EXPECT_NE(*port, 0) << line << p->stderr_text();
    return p;
  }

  std::unique_ptr<Subprocess> StartRegistry(uint16_t* port, std::vector<std::string> extra = {},
                                            std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {ABGATE_BINARY, "registry", "--port", "0", "--store",
                                     "sqlite:" + (dir_ / "registry.db").string(), "--artifacts",
                                     (dir_ / "artifacts").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<Subprocess>(argv, env);
    const std::string line = p->ReadStdoutLine(15000);
    *port = PortAfter(line, "127.0.0.1:");
    EXPECT_NE(*port, 0) << line << p->stderr_text();
    return p;
  }

  // `abgate serve` with `server_extra` under server: and `top_extra` at the top level; the
  // experiment's two arms are the given upstream ports. `shell_prefix` (e.g. "ulimit -n 4096")
  // runs first in a shell that then execs the gateway.
  std::unique_ptr<Subprocess> StartGateway(uint16_t port_a, uint16_t port_b, const std::string& server_extra,
                                           const std::string& top_extra, uint16_t* data, uint16_t* admin,
                                           const std::string& shell_prefix = "") {
    const std::string yaml =
        "server:\n  listen: 127.0.0.1:0\n  admin_listen: 127.0.0.1:0\n  admin_token_env: ABGATE_TEST_ADMIN_TOKEN\n"
        "  threads: 2\n" + server_extra +
        "events:\n  store: 'sqlite:" + (dir_ / "events.db").string() + "'\n  flush_ms: 20\n" + top_extra +
        "experiments:\n  - name: exp\n    model: m\n    default: true\n    routing_mode: request_random\n"
        "    control: A\n    arms:\n"
        "      - {name: A, version: '1', weight: 50, upstream: 'http://127.0.0.1:" + std::to_string(port_a) + "/invocations'}\n"
        "      - {name: B, version: '2', weight: 50, upstream: 'http://127.0.0.1:" + std::to_string(port_b) + "/invocations'}\n";
    const std::string config = WriteFile(dir_ / "gateway.yaml", yaml);
    std::vector<std::string> argv = {ABGATE_BINARY, "serve", "--config", config};
    if (!shell_prefix.empty()) {
      argv = {"/bin/sh", "-c", shell_prefix + " && exec \"$0\" \"$@\"", ABGATE_BINARY, "serve", "--config", config};
    }
    auto p = std::make_unique<Subprocess>(argv, std::vector<std::string>{"ABGATE_TEST_ADMIN_TOKEN=t"});
    const std::string line = p->ReadStdoutLine(15000);
    *data = PortAfter(line, "data=127.0.0.1:");
    *admin = PortAfter(line, "admin=127.0.0.1:");
    EXPECT_NE(*data, 0) << line << p->stderr_text();
    return p;
  }

  fs::path dir_;
};

// Item 3: a header trickled in one line every 200 ms is answered 408 within the read timeout
// (1 s here) on all four servers: the gateway's data and admin ports, the registry and the
// model server. Before, only the 60 s idle timer applied until the header was complete.
TEST_F(FaultTest, TrickledHeadersGet408OnAllFourServers) {
  uint16_t model = 0, registry = 0, data = 0, admin = 0;
  auto model_server = StartModelServer(&model, {"--read-timeout", "1"});
  auto registry_server = StartRegistry(&registry, {"--read-timeout", "1"});
  auto gateway = StartGateway(model, model, "  read_timeout: 1s\n", "", &data, &admin);
  ASSERT_TRUE(model && registry && data && admin);
  const uint16_t ports[] = {data, admin, registry, model};
  std::pair<int, int64_t> results[4];
  std::vector<std::thread> clients;
  for (int i = 0; i < 4; ++i) clients.emplace_back([&, i] { results[i] = TrickleHeaders(ports[i], 200, 8000); });
  for (auto& t : clients) t.join();
  const char* names[] = {"gateway data", "gateway admin", "registry", "model server"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(results[i].first, 408) << names[i];
    EXPECT_GE(results[i].second, 900) << names[i];
    EXPECT_LT(results[i].second, 2500) << names[i];
    std::printf("trickled header on the %s: %d after %lld ms\n", names[i], results[i].first,
                static_cast<long long>(results[i].second));
  }
  // Counted for operators.
  const RawResponse metrics = RawRequest(data, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("abgate_http_request_timeouts_total{listener=\"data\"} 1"), std::string::npos)
      << metrics.body;
}

// Item 3: 500 idle connections against a cap of 50 do not lock out a health probe on a fresh
// connection: the oldest idle ones are closed to make room (what nginx does with keep-alive
// connections when it runs out).
TEST_F(FaultTest, IdleConnectionsBeyondTheCapDoNotStopAProbe) {
  uint16_t model = 0, data = 0, admin = 0;
  auto model_server = StartModelServer(&model);
  auto gateway = StartGateway(model, model, "  max_connections: 50\n", "", &data, &admin);
  ASSERT_TRUE(model && data);
  Fds idle;
  for (int i = 0; i < 500; ++i) {
    const int fd = ConnectNonBlocking(data);
    ASSERT_GE(fd, 0);
    idle.fds.push_back(fd);
  }
  // Wait until the server has taken them all in (accepted or closed to make room).
  ASSERT_TRUE(WaitFor([&] {
    const std::string key = "abgate_http_idle_connections_closed_total{listener=\"data\"} ";
    const RawResponse metrics = RawRequest(data, "GET", "/metrics");
    const size_t at = metrics.body.find(key);
    return at != std::string::npos && std::stoll(metrics.body.substr(at + key.size())) >= 440;
  }, 10000)) << RawRequest(data, "GET", "/metrics").body;
  const auto start = Clock::now();
  const RawResponse probe = RawRequest(data, "GET", "/healthz");
  const int64_t took = MsSince(start);
  EXPECT_EQ(probe.status, 200);
  EXPECT_LT(took, 1000);
  const RawResponse metrics = RawRequest(data, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("abgate_http_max_connections{listener=\"data\"} 50"), std::string::npos);
  EXPECT_NE(metrics.body.find("abgate_http_connections_refused_total{listener=\"data\"} 0"), std::string::npos);
  std::printf("500 idle connections, cap 50: probe answered %d in %lld ms\n", probe.status, static_cast<long long>(took));
  gateway->Signal(SIGTERM);
  EXPECT_EQ(gateway->Wait(15000), 0);
  // One line when the cap was reached, not one per connection.
  const std::string& log = gateway->stderr_text();
  size_t lines = 0;
  for (size_t at = log.find("reached server.max_connections"); at != std::string::npos;
       at = log.find("reached server.max_connections", at + 1)) {
    ++lines;
  }
  EXPECT_LE(lines, 2u) << log;
}

// Item 3, the audit's scenario: many idle connections from one client against a gateway whose
// open-file limit is below their number (so without its cap it would run out of descriptors and
// stop accepting, as it did, logging "Too many open files" 220 times). The default cap (half the
// limit) holds; a probe on a fresh connection is answered, and the log has a handful of lines.
class IdleFloodTest : public FaultTest {
 protected:
  void Run(int wanted, int gateway_nofile) {
    const int64_t soft = RaiseNofile(wanted + 1000);
    const int n = static_cast<int>(std::min<int64_t>(wanted, soft - 400));
    if (n < wanted * 9 / 10) GTEST_SKIP() << "the open-file limit (" << soft << ") is too low for this test";
    uint16_t model = 0, data = 0, admin = 0;
    auto model_server = StartModelServer(&model);
    auto gateway = StartGateway(model, model, "", "", &data, &admin, "ulimit -n " + std::to_string(gateway_nofile));
    ASSERT_TRUE(model && data);
    Fds idle;
    const auto open_start = Clock::now();
    for (int i = 0; i < n; ++i) {
      const int fd = ConnectNonBlocking(data);
      if (fd < 0) break;
      idle.fds.push_back(fd);
    }
    std::printf("opened %zu idle connections in %lld ms\n", idle.fds.size(), static_cast<long long>(MsSince(open_start)));
    EXPECT_GE(static_cast<int>(idle.fds.size()), n - 100);
    // Probes on fresh connections until one is answered: the first SYN may meet a full backlog
    // while the server works through the flood (then TCP retries it after 1 s).
    const auto start = Clock::now();
    int status = 0;
    while (status != 200 && MsSince(start) < 15000) status = RawRequest(data, "GET", "/healthz").status;
    const int64_t took = MsSince(start);
    EXPECT_EQ(status, 200);
    EXPECT_LT(took, 5000);
    const RawResponse metrics = RawRequest(data, "GET", "/metrics");
    std::printf("%zu idle connections, gateway fd limit %d: probe answered after %lld ms\n", idle.fds.size(),
                gateway_nofile, static_cast<long long>(took));
    for (const char* series : {"abgate_http_connections{listener=\"data\"}", "abgate_http_max_connections{listener=\"data\"}",
                               "abgate_http_idle_connections_closed_total{listener=\"data\"}",
                               "abgate_http_accept_errors_total{listener=\"data\"}"}) {
      const size_t at = metrics.body.find(series);
      if (at != std::string::npos) std::printf("  %s\n", metrics.body.substr(at, metrics.body.find('\n', at) - at).c_str());
    }
    EXPECT_NE(metrics.body.find("abgate_http_max_connections{listener=\"data\"} " + std::to_string(gateway_nofile / 2)),
              std::string::npos);
    { Fds closing; closing.fds.swap(idle.fds); }
    gateway->Signal(SIGTERM);
    EXPECT_EQ(gateway->Wait(20000), 0);
    const std::string& log = gateway->stderr_text();
    EXPECT_EQ(log.find("Too many open files"), std::string::npos) << log.substr(0, 2000);
    EXPECT_LT(std::count(log.begin(), log.end(), '\n'), 20) << log.substr(0, 2000);
  }
};

// Always on: 3,000 idle connections against a gateway limited to 1,024 descriptors. (It was
// opt-in while a gateway hung after the flood in full-suite runs: the self-deadlock in
// http::Server::EvictIdle, fixed in bd2dead; and this suite, meant to run alone, ran beside
// other tests because an empty LABELS shifted its RUN_SERIAL property.)
TEST_F(IdleFloodTest, ThreeThousandIdleConnectionsAgainstAThousandDescriptors) { Run(3000, 1024); }

// The audit's size: ~20,000 idle connections against 8,192 descriptors. It holds most of the
// loopback ephemeral ports towards one address for a few seconds, which can disturb other
// suites on a shared machine, so it runs only with ABGATE_FAULT_HEAVY=1 (which .ci/run sets:
// CI has the machine to itself, and this suite runs serially).
TEST_F(IdleFloodTest, TwentyThousandIdleConnections) {
  if (!std::getenv("ABGATE_FAULT_HEAVY")) GTEST_SKIP() << "set ABGATE_FAULT_HEAVY=1 to run it";
  Run(20000, 8192);
}

// Item 4: with credentials configured, four anonymous 200 MB PUTs are answered 401 from their
// headers; the registry does not read them (its RSS does not grow). An authenticated 200 MB
// upload streams to disk and arrives byte for byte.
TEST_F(FaultTest, RegistryChecksCredentialsBeforeReadingAnUpload) {
  uint16_t port = 0;
  auto registry = StartRegistry(&port, {}, {"ABGATE_REGISTRY_TOKEN=sesame"});
  ASSERT_NE(port, 0);
  ASSERT_EQ(RawRequest(port, "GET", "/health").status, 200);
  const int64_t size = 200ll << 20;
  const int64_t rss_before = RssKb(registry->pid());
  // A client that sends its 200 MB body without waiting (no Expect: 100-continue), as requests
  // does, and reads the answer meanwhile.
  auto anonymous_put = [&](int i, int* status, int64_t* ms) {
    RawConnection c(port, 10000);
    const auto start = Clock::now();
    c.Send("PUT /api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/big" + std::to_string(i) +
           ".bin HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n");
    std::thread sender([&c] {
      const std::string chunk(1 << 20, 'x');
      for (int k = 0; k < 200; ++k) {
        if (!c.Send(chunk)) return;
      }
    });
    *status = c.Read().status;
    *ms = MsSince(start);
    sender.join();  // ends when the server closes the connection (EPIPE or a reset)
  };
  int statuses[4] = {};
  int64_t took[4] = {};
  {
    std::vector<std::thread> puts;
    for (int i = 0; i < 4; ++i) puts.emplace_back(anonymous_put, i, &statuses[i], &took[i]);
    for (auto& t : puts) t.join();
  }
  const int64_t rss_after = RssKb(registry->pid());
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(statuses[i], 401);
    EXPECT_LT(took[i], 2000);
  }
  EXPECT_LT(rss_after - rss_before, 32 * 1024) << "RSS grew from " << rss_before << " kB to " << rss_after << " kB";
  std::printf("4 anonymous 200 MB PUTs: 401 after %lld/%lld/%lld/%lld ms; registry RSS %lld kB -> %lld kB\n",
              static_cast<long long>(took[0]), static_cast<long long>(took[1]), static_cast<long long>(took[2]),
              static_cast<long long>(took[3]), static_cast<long long>(rss_before), static_cast<long long>(rss_after));
  EXPECT_FALSE(fs::exists(dir_ / "artifacts" / "0" / "run" / "artifacts" / "big0.bin"));

  // REST calls get the small limit, checked on the header.
  const RawResponse big_json = RawRequest(port, "POST", "/api/2.0/mlflow/runs/log-batch", std::string(5 << 20, ' '),
                                          "application/json", "Authorization: Bearer sesame\r\n");
  EXPECT_EQ(big_json.status, 413);

  // Authenticated: streamed to disk, identical bytes, RSS still flat.
  auto byte_at = [](int64_t i) { return static_cast<char>((i * 2654435761ll) >> 13); };
  {
    RawConnection c(port, 30000);
    ASSERT_TRUE(c.Send("PUT /api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/model.bin HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer sesame\r\nContent-Length: " + std::to_string(size) + "\r\n\r\n"));
    std::string chunk(1 << 20, '\0');
    for (int64_t off = 0; off < size; off += chunk.size()) {
      for (size_t j = 0; j < chunk.size(); ++j) chunk[j] = byte_at(off + static_cast<int64_t>(j));
      ASSERT_TRUE(c.Send(chunk));
    }
    EXPECT_EQ(c.Read().status, 200);
  }
  const int64_t rss_upload = RssKb(registry->pid());
  EXPECT_LT(rss_upload - rss_before, 48 * 1024) << "RSS grew from " << rss_before << " kB to " << rss_upload << " kB";
  const fs::path stored = dir_ / "artifacts" / "0" / "run" / "artifacts" / "model.bin";
  ASSERT_EQ(static_cast<int64_t>(fs::file_size(stored)), size);
  std::ifstream in(stored, std::ios::binary);
  std::string block(1 << 20, '\0');
  int64_t mismatches = 0;
  for (int64_t off = 0; off < size; off += block.size()) {
    in.read(block.data(), static_cast<std::streamsize>(block.size()));
    for (size_t j = 0; j < block.size(); ++j) mismatches += block[j] != byte_at(off + static_cast<int64_t>(j));
  }
  EXPECT_EQ(mismatches, 0);
  // No temporary file is left behind.
  for (const auto& e : fs::directory_iterator(stored.parent_path())) {
    EXPECT_EQ(e.path().filename().string().find(".abgate-tmp-"), std::string::npos) << e.path();
  }
  std::printf("authenticated 200 MB PUT streamed to disk; registry RSS %lld kB -> %lld kB\n",
              static_cast<long long>(rss_before), static_cast<long long>(rss_upload));
}

json::value HealthOf(uint16_t admin) {
  const RawResponse r = RawRequest(admin, "GET", "/api/v1/experiments/exp/health", "", "application/json",
                                   "Authorization: Bearer t\r\n");
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  return ec ? json::value() : v;
}

const json::object* ArmHealth(const json::value& health, std::string_view arm) {
  if (!health.is_object() || !health.as_object().if_contains("arms")) return nullptr;
  for (const auto& a : health.at("arms").as_array()) {
    if (a.at("arm").as_string() == arm) return &a.as_object();
  }
  return nullptr;
}

// Item 8: arm B's model server is frozen with SIGSTOP. After a few timeouts B is ejected and
// every request comes back fast (served by control, flagged as a fallback); the ejection shows
// in /health and /metrics, and counts against B for the error-rate guardrail. After SIGCONT
// and the ejection time, B serves again.
TEST_F(FaultTest, HungUpstreamIsEjectedThenServesAgain) {
  uint16_t port_a = 0, port_b = 0, data = 0, admin = 0;
  auto server_a = StartModelServer(&port_a);
  auto server_b = StartModelServer(&port_b);
  auto gateway = StartGateway(port_a, port_b, "",
                              "upstream:\n  request_timeout: 500ms\n  connect_timeout: 500ms\n"
                              "  outlier_detection: {consecutive_failures: 3, base_ejection_time: 2s}\n",
                              &data, &admin);
  ASSERT_TRUE(port_a && port_b && data);
  const std::string body = std::string(R"({"dataframe_split": )") + [] {
    std::ifstream in(fs::path(ABGATE_TEST_DATA_DIR) / "xgboost" / "input.json");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }() + "}";
  auto predict = [&](RawResponse* out) {
    const auto start = Clock::now();
    *out = RawRequest(data, "POST", "/predict", body);
    return MsSince(start);
  };
  RawResponse r;
  // Both arms serve.
  ASSERT_TRUE(WaitFor([&] {
    predict(&r);
    return r.status == 200 && r.headers["x-abgate-arm"] == "B";
  }, 5000)) << r.status << r.body;

  server_b->Signal(SIGSTOP);
  // Requests assigned to B wait for the 500 ms timeout until B is ejected; then 20 in a row
  // come back fast.
  const auto frozen = Clock::now();
  int fast_in_a_row = 0, slow = 0, fallbacks = 0;
  while (fast_in_a_row < 20 && MsSince(frozen) < 15000) {
    const int64_t ms = predict(&r);
    ASSERT_EQ(r.status, 200) << r.body;
    if (ms < 200) {
      ++fast_in_a_row;
    } else {
      fast_in_a_row = 0;
      ++slow;
    }
    fallbacks += r.headers["x-abgate-fallback"] == "true";
  }
  const int64_t ejected_after = MsSince(frozen);
  EXPECT_EQ(fast_in_a_row, 20) << "requests still wait for the hung upstream";
  EXPECT_GT(fallbacks, 0);
  std::printf("B frozen: %d slow requests, then fast after %lld ms\n", slow, static_cast<long long>(ejected_after));
  // A burst while ejected: every request fast.
  int64_t worst = 0;
  for (int i = 0; i < 50; ++i) worst = std::max(worst, predict(&r));
  EXPECT_LT(worst, 200);
  std::printf("50 requests while B is ejected: slowest %lld ms\n", static_cast<long long>(worst));

  const json::value health = HealthOf(admin);
  const json::object* b = ArmHealth(health, "B");
  ASSERT_NE(b, nullptr) << json::serialize(health);
  EXPECT_TRUE(b->at("ejected").as_bool()) << json::serialize(*b);
  EXPECT_GE(b->at("ejections").to_number<int64_t>(), 1);
  const int64_t ejected_requests = b->at("ejected_requests").to_number<int64_t>();
  EXPECT_GT(ejected_requests, 0);
  // The guardrail's failures include the requests skipped while ejected.
  EXPECT_GE(b->at("failures").to_number<int64_t>(), ejected_requests + 3);
  const json::object* a = ArmHealth(health, "A");
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->at("ejected").as_bool());
  const RawResponse metrics = RawRequest(data, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("abgate_arm_ejected{experiment=\"exp\",arm=\"B\"} 1"), std::string::npos);
  EXPECT_NE(metrics.body.find("abgate_arm_ejected{experiment=\"exp\",arm=\"A\"} 0"), std::string::npos);
  EXPECT_NE(metrics.body.find("abgate_arm_ejections_total{experiment=\"exp\",arm=\"B\"} "), std::string::npos);

  server_b->Signal(SIGCONT);
  // After the ejection time B is tried again and, answering now, serves.
  EXPECT_TRUE(WaitFor([&] {
    predict(&r);
    return r.status == 200 && r.headers["x-abgate-arm"] == "B" && r.headers.count("x-abgate-fallback") == 0;
  }, 10000));
  EXPECT_FALSE(ArmHealth(HealthOf(admin), "B")->at("ejected").as_bool());
  EXPECT_NE(RawRequest(data, "GET", "/metrics").body.find("abgate_arm_ejected{experiment=\"exp\",arm=\"B\"} 0"),
            std::string::npos);
}

}  // namespace
}  // namespace abgate::testing
