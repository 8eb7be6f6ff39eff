#include "http/server.h"

#include <future>
#include <thread>

#include "gtest/gtest.h"
#include "http/client.h"
#include "http/router.h"
#include "testing/raw_http.h"

namespace abgate::http {
namespace {

using testing::RawConnection;
using testing::RawRequest;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("POST", "/echo", [](Request& req, Respond respond) {
      std::move(respond)(Response::Json(200, req.body));
    });
    router_.Add("GET", "/items/{id}", [](Request& req, Respond respond) {
      std::move(respond)(Response::Text(200, std::string(req.PathParam("id"))));
    });
    router_.Add("GET", "/slow", [this](Request& req, Respond respond) {
      // Answers from another thread after 300 ms, like a handler that posted blocking work.
      std::thread([respond = std::move(respond)]() mutable {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        std::move(respond)(Response::Text(200, "slow"));
      }).detach();
    });
    router_.Add("GET", "/never", [this](Request&, Respond respond) {
      parked_.push_back(std::make_shared<Respond>(std::move(respond)));
    });
    ServerOptions options;
    options.max_body_bytes = 1024;
    options.max_header_bytes = 1024;
    options.read_timeout_us = 300'000;
    options.idle_timeout_us = 2'000'000;
    auto server = Server::Create(pool_, options, [this](Request& r, Respond respond) {
      router_.Dispatch(r, std::move(respond));
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    pool_.Start();
    server_->Start();
  }
  void TearDown() override {
    server_->Shutdown(100'000);
    pool_.Post(0, [this] {
      for (auto& r : parked_) std::move(*r)(Response::Text(200, "late"));
    });
    pool_.Stop();
  }

  IoPool pool_{2};
  Router router_;
  std::unique_ptr<Server> server_;
  std::vector<std::shared_ptr<Respond>> parked_;
};

TEST_F(ServerTest, EchoesAndKeepsTheConnectionAlive) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 7\r\n\r\n{\"a\":1}"));
    auto r = c.Read();
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"a\":1}");
    EXPECT_FALSE(r.closed);
  }
}

TEST_F(ServerTest, RoutesPathParamsAnd404And405) {
  auto r = RawRequest(server_->port(), "GET", "/items/42");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "42");
  r = RawRequest(server_->port(), "GET", "/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(r.body.find("ENDPOINT_NOT_FOUND"), std::string::npos);
  r = RawRequest(server_->port(), "DELETE", "/echo");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.headers["allow"], "POST");
}

TEST_F(ServerTest, OversizedBodyGets413AndTheResponseArrives) {
  const std::string big(4096, 'x');
  auto r = RawRequest(server_->port(), "POST", "/echo", big);
  EXPECT_EQ(r.status, 413);
  EXPECT_NE(r.body.find("PAYLOAD_TOO_LARGE"), std::string::npos);
}

TEST_F(ServerTest, OversizedHeadersGet431) {
  const std::string header = "X-Big: " + std::string(2048, 'h') + "\r\n";
  auto r = RawRequest(server_->port(), "GET", "/items/1", "", "", header);
  EXPECT_EQ(r.status, 431);
}

TEST_F(ServerTest, MalformedRequestLineGets400) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.Send("THIS IS NOT HTTP\r\n\r\n"));
  auto r = c.Read();
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("BAD_REQUEST"), std::string::npos);
}

TEST_F(ServerTest, TruncatedRequestTimesOutWith408) {
  RawConnection c(server_->port());
  ASSERT_TRUE(c.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"partial"));
  auto r = c.Read();
  EXPECT_EQ(r.status, 408);
  EXPECT_TRUE(c.PeerClosed(2000));
}

TEST_F(ServerTest, AnswersFromAnotherThread) {
  auto r = RawRequest(server_->port(), "GET", "/slow");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "slow");
}

TEST_F(ServerTest, ShutdownClosesIdleConnectionsAndFinishesInFlight) {
  RawConnection idle(server_->port());
  ASSERT_TRUE(idle.Send("GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(idle.Read().status, 200);
  RawConnection busy(server_->port());
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  server_->Shutdown(2'000'000);
  EXPECT_TRUE(idle.PeerClosed(1000));
  auto r = busy.Read();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "slow");
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(server_->open_connections(), 0);
}

// Runs Client::Send on loop 0 and waits for the result.
absl::StatusOr<ClientResponse> SendSync(IoPool& pool, Client& client, ClientRequest req) {
  std::promise<absl::StatusOr<ClientResponse>> p;
  pool.Post(0, [&] {
    client.Send(0, std::move(req), [&p](absl::StatusOr<ClientResponse> r) { p.set_value(std::move(r)); });
  });
  return p.get_future().get();
}

TEST_F(ServerTest, ClientReusesConnectionsAndReportsErrors) {
  Client client(pool_, 4);
  ClientRequest req;
  req.host = "127.0.0.1";
  req.port = server_->port();
  req.target = "/echo";
  req.body = "{\"x\":2}";
  for (int i = 0; i < 3; ++i) {
    auto r = SendSync(pool_, client, req);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "{\"x\":2}");
  }
  EXPECT_EQ(server_->open_connections(), 1);  // one pooled keep-alive connection

  req.target = "/never";
  req.method = "GET";
  req.request_timeout_us = 200'000;
  auto timeout = SendSync(pool_, client, req);
  EXPECT_EQ(timeout.status().code(), absl::StatusCode::kDeadlineExceeded) << timeout.status();

  req.port = 1;  // nothing listens on port 1
  auto refused = SendSync(pool_, client, req);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
}

}  // namespace
}  // namespace abgate::http
