// In-process prediction throughput of a booking model (abgate train's strong model unless a
// folder is given): rows/s of Booster::Predict at several batch sizes on one thread, and
// requests/s of single-row requests through Predictor (the path the gateway's in-process arms
// and the model server take: queue → batch → score → callback). Bounded by time per case.
// Usage: build/bench/predict_bench [MODEL_DIR] [SECONDS_PER_CASE=2]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "serving/predictor.h"
#include "serving/training.h"

using namespace abgate::serving;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  const double seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  std::filesystem::path folder = argc > 1 ? argv[1] : "";
  const bool trained_here = folder.empty();
  if (trained_here) {
    folder = std::filesystem::temp_directory_path() / ("abgate-predict-bench-" + std::to_string(::getpid()));
    auto trained = TrainBookingModel(ModelQuality::kStrong, 1);
    if (!trained.ok() || !WriteMlflowModel(trained->booster, folder, "xgb", "").ok()) {
      std::fprintf(stderr, "predict_bench: cannot train the model\n");
      return 1;
    }
  }
  const BookingData data = GenerateBookings(100000, 42);
  auto booster = Booster::FromFile((folder / "model.xgb").string());
  if (!booster.ok()) {
    std::fprintf(stderr, "predict_bench: %s\n", std::string(booster.status().message()).c_str());
    return 1;
  }
  std::printf("model: %s (%lld features)\n", folder.c_str(), static_cast<long long>(booster->num_features()));
  std::printf("%-44s %14s %14s\n", "case", "rows/s", "calls/s");
  for (int64_t batch : {1, 10, 100, 1000, 10000}) {
    int64_t rows = 0, calls = 0, offset = 0;
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < end && calls < 50'000'000) {
      if (offset + batch > data.rows) offset = 0;
      auto out = booster->Predict(data.features.data() + offset * 8, batch, 8);
      if (!out.ok()) return 1;
      rows += batch;
      ++calls;
      offset += batch;
    }
    std::printf("%-44s %14.0f %14.0f\n", ("Booster::Predict, batch " + std::to_string(batch) + ", 1 thread").c_str(),
                rows / seconds, calls / seconds);
  }
  for (int threads : {1, 2}) {
    auto predictor = Predictor::Load(folder, {.threads = threads});
    if (!predictor.ok()) return 1;
    std::atomic<int64_t> done{0};
    std::atomic<int64_t> in_flight{0};
    const auto end = Clock::now() + std::chrono::duration<double>(seconds);
    // Two submitters keep up to 256 single-row requests in flight, as concurrent callers would.
    std::vector<std::thread> submitters;
    for (int s = 0; s < 2; ++s) {
      submitters.emplace_back([&, s] {
        int64_t i = s;
        while (Clock::now() < end) {
          if (in_flight.load() >= 256) {
            std::this_thread::yield();
            continue;
          }
          const int64_t row = (i += 2) % data.rows;
          Matrix m{std::vector<float>(data.features.begin() + row * 8, data.features.begin() + row * 8 + 8), 1, 8};
          in_flight++;
          (*predictor)->Predict(std::move(m), [&](absl::StatusOr<std::vector<float>>) {
            in_flight--;
            done++;
          });
        }
      });
    }
    for (auto& t : submitters) t.join();
    while (in_flight.load() > 0) std::this_thread::yield();
    std::printf("%-44s %14.0f %14.0f   (%.1f requests per batch)\n",
                ("Predictor, 1-row requests, " + std::to_string(threads) + " scoring thread(s)").c_str(),
                done.load() / seconds, done.load() / seconds,
                static_cast<double>((*predictor)->requests()) / std::max<int64_t>(1, (*predictor)->batches()));
  }
  if (trained_here) std::filesystem::remove_all(folder);
  return 0;
}
