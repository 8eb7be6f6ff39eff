#include "control/simulator.h"

#include <chrono>
#include <random>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "common/mutex.h"
#include "common/random.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "http/blocking_client.h"
#include "serving/training.h"

namespace abgate::control {
namespace json = boost::json;
using SteadyClock = std::chrono::steady_clock;

namespace {

struct UserProfile {
  float loyalty_tier;
  float prior_bookings;
  float mobile;
};

}  // namespace

absl::StatusOr<SimulateReport> Simulate(const SimulateOptions& o, const std::function<void(const SimulateReport&)>& progress,
                                        const std::atomic<bool>* stop) {
  if (o.users <= 0 || o.rate <= 0 || o.duration_s <= 0 || o.hotels <= 0 || o.workers <= 0) {
    return absl::InvalidArgumentError("users, rate, duration, hotels and workers must be positive");
  }
  ABGATE_ASSIGN_OR_RETURN(http::Url url, http::ParseHttpUrl(o.gateway));
  // Fixed user profiles.
  std::vector<UserProfile> users;
  {
    common::Xoshiro256 rng(o.seed);
    std::poisson_distribution<int> poisson(2.0);
    for (int64_t i = 0; i < o.users; ++i) {
      users.push_back({static_cast<float>(rng() % 4), static_cast<float>(poisson(rng)), (rng() & 1) ? 1.f : 0.f});
    }
  }
  const std::string target = o.experiment.empty() ? "/predict" : StrCat("/predict/", o.experiment);
  http::BlockingClient client(o.workers * 2);
  common::Mutex mu;  // guards report
  SimulateReport report;
  const auto start = SteadyClock::now();
  const auto end = start + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(o.duration_s));
  std::atomic<int64_t> ticket{0};
  const double interval_s = 1.0 / o.rate;
  auto flush = [&](std::string& lines, int64_t count) {
    if (lines.empty()) return;
    auto r = client.Send(url, "POST", "/outcomes", "application/json", std::move(lines));
    lines.clear();
    common::MutexLock lock(mu);
    report.outcomes += count;
    if (!r.ok() || r->status >= 300) report.outcomes_rejected += count;
  };
  auto worker = [&](int w) {
    common::Xoshiro256 rng(o.seed * 1000003 + static_cast<uint64_t>(w) + 1);
    std::uniform_real_distribution<double> u01(0, 1);
    std::string pending;
    int64_t pending_count = 0;
    while (true) {
      const int64_t n = ticket.fetch_add(1);
      if (n >= o.max_requests || (stop && stop->load())) break;
      const auto due = start + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(n * interval_s));
      if (due >= end) break;
      std::this_thread::sleep_until(due);
      const int64_t user = static_cast<int64_t>(rng() % static_cast<uint64_t>(o.users));
      const UserProfile& p = users[user];
      // One session: `hotels` candidates with the user's profile.
      std::vector<std::array<float, 8>> rows(o.hotels);
      json::array data;
      for (auto& row : rows) {
        row = {static_cast<float>(std::floor(u01(rng) * 366)), static_cast<float>(std::round((60 + u01(rng) * 540) * 100) / 100),
               static_cast<float>(1 + rng() % 14), u01(rng) < 0.3 ? 1.f : 0.f, p.loyalty_tier, p.prior_bookings, p.mobile,
               static_cast<float>(1 + rng() % 20)};
        json::array r;
        for (float x : row) r.push_back(static_cast<double>(x));
        data.push_back(std::move(r));
      }
      json::array columns;
      for (const auto& c : serving::BookingColumns()) columns.push_back(json::value(c));
      const json::object body{{"user_id", StrCat("user-", user)},
                              {"dataframe_split", json::object{{"columns", std::move(columns)}, {"data", std::move(data)}}}};
      auto r = client.Send(url, "POST", target, "application/json", config::ToJson(body), {}, 10'000'000);
      if (!r.ok() || r->status != 200) {
        common::MutexLock lock(mu);
        ++report.sent;
        ++report.failed;
        continue;
      }
      boost::system::error_code ec;
      json::value reply = json::parse(r->body, ec);
      if (ec || !reply.is_object() || !reply.as_object().contains("predictions")) {
        common::MutexLock lock(mu);
        ++report.sent;
        ++report.failed;
        continue;
      }
      const auto& obj = reply.as_object();
      const json::value& preds = *obj.if_contains("predictions");
      int top = 0;
      double best = -1;
      if (preds.is_array()) {
        for (size_t i = 0; i < preds.as_array().size() && i < rows.size(); ++i) {
          const double s = preds.as_array()[i].is_number() ? preds.as_array()[i].to_number<double>() : -1;
          if (s > best) {
            best = s;
            top = static_cast<int>(i);
          }
        }
      }
      const double p_book = serving::BookingProbability(rows[top].data());
      const bool booked = u01(rng) < p_book;
      const double revenue = booked ? static_cast<double>(rows[top][1]) * rows[top][2] : 0;
      // The reply came over the network: fields are read without trusting their types.
      auto field = [&](std::string_view key, std::string fallback) {
        const json::value* v = obj.if_contains(key);
        return v && v->is_string() ? std::string(v->as_string()) : fallback;
      };
      const std::string arm = StrCat(field("model_group", "?"), " (v", field("model_version", "?"), ")");
      const std::string experiment = field("experiment", o.experiment);
      const std::string request_id = field("request_id", "");
      {
        common::MutexLock lock(mu);
        ++report.sent;
        ++report.ok;
        auto& t = report.arms[arm];
        ++t.requests;
        t.bookings += booked;
        t.revenue += revenue;
      }
      for (const auto& [metric, value] : {std::pair{"booked", booked ? 1.0 : 0.0}, std::pair{"revenue", revenue}}) {
        pending += config::ToJson(json::object{{"experiment", experiment},
                                               {"request_id", request_id},
                                               {"unit_id", StrCat("user-", user)},
                                               {"metric", metric},
                                               {"value", value}});
        pending += '\n';
        ++pending_count;
      }
      if (pending_count >= 200) {
        flush(pending, pending_count);
        pending_count = 0;
      }
    }
    flush(pending, pending_count);
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < o.workers; ++w) threads.emplace_back(worker, w);
  // Progress about once a second while the workers run.
  std::atomic<bool> done{false};
  std::thread joiner([&] {
    for (auto& t : threads) t.join();
    done = true;
  });
  while (!done.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    static thread_local auto last = SteadyClock::now();
    if (progress && SteadyClock::now() - last >= std::chrono::seconds(1)) {
      last = SteadyClock::now();
      SimulateReport copy;
      {
        common::MutexLock lock(mu);
        copy = report;
      }
      copy.elapsed_s = std::chrono::duration<double>(SteadyClock::now() - start).count();
      progress(copy);
    }
  }
  joiner.join();
  report.elapsed_s = std::chrono::duration<double>(SteadyClock::now() - start).count();
  return report;
}

}  // namespace abgate::control
