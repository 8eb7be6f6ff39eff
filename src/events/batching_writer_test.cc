#include "events/batching_writer.h"

#include <unistd.h>

#include <filesystem>
#include <future>
#include <thread>

#include "events/sqlite_event_sink.h"
#include "gtest/gtest.h"

namespace abgate::events {
namespace {

class BatchingWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("abgate_events_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto sink = SqliteEventSink::Open((dir_ / "events.db").string());
    ASSERT_TRUE(sink.ok()) << sink.status();
    sink_ = std::move(*sink);
  }
  void TearDown() override {
    sink_.reset();
    std::filesystem::remove_all(dir_);
  }
  static Exposure Make(int i) {
    Exposure e;
    e.request_id = "r" + std::to_string(i);
    e.ts_us = 1'000'000 + i;
    e.experiment = "exp";
    e.unit_id = "u" + std::to_string(i % 100);
    e.arm = e.assigned_arm = i % 5 ? "A" : "B";
    e.routing_mode = "user_hash";
    e.status = 200;
    e.score = i * 0.001;
    return e;
  }
  std::filesystem::path dir_;
  std::unique_ptr<SqliteEventSink> sink_;
};

TEST_F(BatchingWriterTest, CommitsEverythingFromManyThreadsAndFlushesOnStop) {
  BatchingWriter writer(*sink_, 5'000, 1 << 20);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&writer, t] {
      for (int i = 0; i < 25'000; ++i) ASSERT_TRUE(writer.Enqueue(Make(t * 25'000 + i)));
    });
  }
  for (auto& t : threads) t.join();
  writer.Stop();
  EXPECT_EQ(writer.stats().written, 100'000);
  EXPECT_EQ(writer.stats().dropped, 0);
  EXPECT_EQ(*sink_->CountExposures("exp"), 100'000);
}

TEST_F(BatchingWriterTest, FullQueueDropsAndCounts) {
  // A huge flush interval keeps the writer asleep, so the queue fills.
  BatchingWriter writer(*sink_, 60'000'000, 100);
  int accepted = 0;
  for (int i = 0; i < 150; ++i) accepted += writer.Enqueue(Make(i));
  EXPECT_EQ(accepted, 100);
  EXPECT_EQ(writer.stats().dropped, 50);
  EXPECT_EQ(writer.stats().queued, 100);
  writer.Flush();
  EXPECT_EQ(*sink_->CountExposures("exp"), 100);
}

TEST_F(BatchingWriterTest, AuditCallbackRunsAfterCommit) {
  BatchingWriter writer(*sink_, 60'000'000, 100);
  std::promise<absl::Status> done;
  AuditRecord a;
  a.ts_us = 5;
  a.actor = "alice";
  a.action = "weights";
  a.experiment = "exp";
  a.before_json = "{}";
  a.after_json = "{\"x\":1}";
  writer.EnqueueAudit(a, [&done](absl::Status s) { done.set_value(s); });
  auto f = done.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  auto rows = sink_->ReadAudit("exp", 10);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].actor, "alice");
  EXPECT_EQ((*rows)[0].after_json, "{\"x\":1}");
}

TEST_F(BatchingWriterTest, ExperimentStartIsRecordedOnce) {
  EXPECT_EQ(*sink_->EnsureExperimentStart("exp", 100), 100);
  EXPECT_EQ(*sink_->EnsureExperimentStart("exp", 200), 100);
}

}  // namespace
}  // namespace abgate::events
