// Issue 14, item 5: one row PostgreSQL refuses must not take its batch with it. Needs the
// throw-away PostgreSQL of scripts/test.sh (ABGATE_TEST_POSTGRES); skipped without it.
#include <filesystem>
#include <future>

#include "events/batching_writer.h"
#include "events/postgres_event_sink.h"
#include "gtest/gtest.h"
#include "testing/test_store.h"

namespace abgate::events {
namespace {

Exposure Make(int i) {
  Exposure e;
  e.request_id = "r" + std::to_string(i);
  e.ts_us = 1'000'000 + i;
  e.experiment = "exp";
  e.unit_id = "u" + std::to_string(i);
  e.arm = e.assigned_arm = i % 2 ? "A" : "B";
  e.routing_mode = "sticky";
  e.status = 200;
  e.score = 0.5;
  e.in_experiment = true;
  return e;
}

Outcome MakeOutcome(const std::string& unit, const std::string& event_id) {
  Outcome o;
  o.ts_us = 2'000'000;
  o.experiment = "exp";
  o.unit_id = unit;
  o.metric = "booked";
  o.value = 1;
  o.event_id = event_id;
  return o;
}

TEST(PoisonRowTest, ARefusedRowIsIsolatedAndEverythingElseStored) {
  const std::string dir = std::filesystem::temp_directory_path() / ("abgate_poison_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  testing::TestStore store("postgres", dir);
  if (store.unconfigured()) GTEST_SKIP() << store.reason();
  ASSERT_TRUE(store.ok()) << store.reason();
  auto sink = PostgresEventSink::Open(store.uri());
  ASSERT_TRUE(sink.ok()) << sink.status();
  {
    BatchingWriter writer(**sink, 60'000'000, 100'000);  // asleep until Flush: one batch
    const std::string invalid_utf8 = "\xff\xfe";
    for (int i = 0; i < 1000; ++i) {
      Exposure e = Make(i);
      if (i == 500) e.unit_id = "bad" + invalid_utf8;  // PostgreSQL refuses this text
      if (i == 600) {
        // A sampled raw text/csv body cut mid-character is bytes, not text: stored as bytea.
        e.request_payload = "a,b\n1,\xc3";
        e.response_payload = "{}";
      }
      ASSERT_TRUE(writer.Enqueue(std::move(e)));
    }
    std::vector<Assignment> sticky;
    for (int i = 0; i < 100; ++i) {
      sticky.push_back({"exp", i == 7 ? "bad" + invalid_utf8 : "u" + std::to_string(i), "A", 1, "hash", 1, false});
    }
    writer.EnqueueAssignments(std::move(sticky));
    // Two callers' outcomes in the same group commit: only the one with the bad row fails.
    std::promise<std::pair<absl::Status, int64_t>> good, bad;
    writer.EnqueueOutcomes({MakeOutcome("u1", "e1"), MakeOutcome("u2", "e2")},
                           [&](absl::Status s, int64_t n) { good.set_value({s, n}); });
    writer.EnqueueOutcomes({MakeOutcome("u3", "e3"), MakeOutcome("bad" + invalid_utf8, "e4")},
                           [&](absl::Status s, int64_t n) { bad.set_value({s, n}); });
    writer.Flush();
    const auto [good_status, good_stored] = good.get_future().get();
    EXPECT_TRUE(good_status.ok()) << good_status;
    EXPECT_EQ(good_stored, 2);
    const auto [bad_status, bad_stored] = bad.get_future().get();
    EXPECT_EQ(bad_status.code(), absl::StatusCode::kInvalidArgument) << bad_status;
    EXPECT_EQ(bad_stored, 0);
    const WriterStats s = writer.stats();
    EXPECT_EQ(s.written, 999);
    EXPECT_EQ(s.write_errors, 1);
    EXPECT_EQ(s.sticky_lost, 1);
    EXPECT_EQ(s.outages, 0) << "a refused row is not an outage";
    EXPECT_TRUE(writer.store_available());
  }
  EXPECT_EQ(store.QueryInt("SELECT count(*) FROM exposures"), 999);
  EXPECT_EQ(store.QueryInt("SELECT count(*) FROM assignments"), 99);
  EXPECT_EQ(store.QueryInt("SELECT count(*) FROM outcomes"), 2);  // e1, e2; not e3 (its caller was told)
  EXPECT_EQ(store.QueryInt("SELECT sum(rows) FROM exposure_blocks"), 999);
  EXPECT_EQ(store.QueryInt("SELECT count(*) FROM payloads WHERE request = decode('612c620a312cc3', 'hex')"), 1);
  sink->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace abgate::events
