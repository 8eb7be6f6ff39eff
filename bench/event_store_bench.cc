// Event-store throughput (a benchmark, not a test): exposures/s through the BatchingWriter into
// SQLite from two producer threads, and acknowledged outcomes/s (batches of 100, each
// acknowledged only after its commit) from four concurrent clients. Prints what it measured.
// Usage: build/bench/event_store_bench [EXPOSURES=2000000] [OUTCOMES=400000] [STORE_URI]
// (STORE_URI defaults to a temporary SQLite file; postgresql://... benchmarks PostgreSQL.)
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "events/batching_writer.h"
#include "events/sqlite_event_sink.h"

using namespace abgate;

int main(int argc, char** argv) {
  const int64_t exposures = argc > 1 ? std::atoll(argv[1]) : 2'000'000;
  const int64_t outcomes = argc > 2 ? std::atoll(argv[2]) : 400'000;
  const auto dir = std::filesystem::temp_directory_path() / ("abgate_event_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string uri = argc > 3 ? argv[3] : "sqlite:" + (dir / "events.db").string();
  auto sink = events::OpenEventSink(uri);
  std::printf("store: %s\n", uri.c_str());
  if (!sink.ok()) {
    std::fprintf(stderr, "%s\n", std::string(sink.status().message()).c_str());
    return 1;
  }
  {
    events::BatchingWriter writer(**sink, 50'000, 1 << 20);
    const auto start = std::chrono::steady_clock::now();
    std::vector<std::thread> producers;
    for (int t = 0; t < 2; ++t) {
      producers.emplace_back([&, t] {
        for (int64_t i = t; i < exposures; i += 2) {
          events::Exposure e;
          e.request_id = std::to_string(i) + "-0123456789abcdef0123456789";
          e.ts_us = 1'790'000'000'000'000 + i;
          e.experiment = "hyatt_booking_ab";
          e.unit_id = "user-" + std::to_string(i % 1'000'000);
          e.arm = e.assigned_arm = i % 5 ? "A" : "B";
          e.model_name = "hyatt_booking_model";
          e.model_version = i % 5 ? "7" : "8";
          e.routing_mode = "user_hash";
          e.status = 200;
          e.latency_us = 900;
          e.score = 0.31;
          while (!writer.Enqueue(e)) std::this_thread::yield();  // back-pressure, counted as drops
        }
      });
    }
    for (auto& p : producers) p.join();
    writer.Flush();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const auto stats = writer.stats();
    std::printf("exposures: %lld committed in %.2f s = %.0f/s (%lld batches; %lld enqueue attempts refused while the queue was full)\n",
                static_cast<long long>(stats.written), s, stats.written / s, static_cast<long long>(stats.batches),
                static_cast<long long>(stats.dropped));

    const auto ostart = std::chrono::steady_clock::now();
    std::atomic<int64_t> acked{0};
    std::vector<std::thread> clients;
    for (int c = 0; c < 4; ++c) {
      clients.emplace_back([&, c] {
        for (int64_t b = c; b * 100 < outcomes; b += 4) {
          std::vector<events::Outcome> batch;
          for (int i = 0; i < 100; ++i) {
            batch.push_back({1'790'000'000'000'000, "hyatt_booking_ab", "", "user-" + std::to_string(b * 100 + i), "booked",
                             1, "evt-" + std::to_string(b * 100 + i)});
          }
          std::promise<int64_t> done;
          writer.EnqueueOutcomes(std::move(batch), [&done](absl::Status s, int64_t stored) { done.set_value(s.ok() ? stored : 0); });
          acked += done.get_future().get();  // like a client waiting for its 2xx
        }
      });
    }
    for (auto& c : clients) c.join();
    const double os = std::chrono::duration<double>(std::chrono::steady_clock::now() - ostart).count();
    std::printf("outcomes: %lld acknowledged after commit in %.2f s = %.0f/s (4 clients, 100 per request)\n",
                static_cast<long long>(acked.load()), os, acked.load() / os);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
