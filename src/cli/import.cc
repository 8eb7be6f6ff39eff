// abgate import outcomes FILE | abgate import results FILE: load ground truth into the event
// store. Outcomes: JSON lines (the POST /outcomes shape) or CSV with a header naming
// experiment, metric, value, request_id and/or unit_id, optional ts and event_id. Results: the
// seed's ab_results.csv (user_id, model_version, y_true, y_pred), stored as one exposure per
// row (arm = model version, score = y_pred) and one `booked` outcome per row, so that
// `abgate analyze --store` sees what `--csv` sees.
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

#include <boost/json.hpp>

#include "cli/commands.h"
#include "common/clock.h"
#include "common/csv.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "events/sqlite_event_sink.h"

namespace abgate::cli {
namespace {

namespace json = boost::json;

int Fail(const std::string& message) {
  std::fprintf(stderr, "abgate import: %s\n", message.c_str());
  return 1;
}

struct Args {
  std::string kind, file, store = "sqlite:abgate-events.db", experiment = "ab_results";
};

// What POST /outcomes accepts as `ts`: Unix seconds, from 1970 to 2096 (a larger or non-finite
// number would make the cast to microseconds undefined).
bool IsUnixSeconds(double seconds) { return seconds >= 0 && seconds <= 4e9; }

absl::Status Commit(events::EventSink& sink, std::vector<events::Exposure>& exposures,
                    std::vector<events::Outcome>& outcomes, int64_t& stored) {
  std::vector<bool> flags;
  auto s = sink.WriteBatch(exposures, {}, outcomes, &flags);
  if (!s.ok()) return s;
  for (bool f : flags) stored += f;
  exposures.clear();
  outcomes.clear();
  return absl::OkStatus();
}

int ImportOutcomes(const Args& a, events::EventSink& sink) {
  std::ifstream in(a.file, std::ios::binary);
  if (!in) return Fail(StrCat(a.file, ": cannot open"));
  const int64_t now = common::SystemClock::Get().NowUs();
  std::vector<events::Exposure> no_exposures;
  std::vector<events::Outcome> batch;
  int64_t stored = 0, read = 0;
  std::string line;
  std::vector<std::string> header;
  size_t line_no = 0;
  bool csv = false;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    events::Outcome o;
    o.ts_us = now;
    if (line_no == 1 && line[0] != '{') {
      csv = true;
      header = common::SplitCsvRecord(line);
      continue;
    }
    if (csv) {
      const auto cells = common::SplitCsvRecord(line);
      for (size_t i = 0; i < header.size() && i < cells.size(); ++i) {
        const std::string& h = header[i];
        const std::string& c = cells[i];
        double d;
        if (h == "experiment") o.experiment = c;
        else if (h == "metric") o.metric = c;
        else if (h == "request_id") o.request_id = c;
        else if (h == "unit_id") o.unit_id = c;
        else if (h == "event_id") o.event_id = c;
        else if (h == "value") {
          if (!common::ParseFiniteDouble(c == "true" ? "1" : c == "false" ? "0" : c, d)) return Fail(StrCat(a.file, ":", line_no, ": value must be a number"));
          o.value = d;
        } else if (h == "ts" && !c.empty()) {
          if (!common::ParseFiniteDouble(c, d) || !IsUnixSeconds(d)) return Fail(StrCat(a.file, ":", line_no, ": ts must be Unix seconds"));
          o.ts_us = static_cast<int64_t>(d * 1e6);
        }
      }
    } else {
      boost::system::error_code ec;
      json::monotonic_resource memory;
      const json::value v = config::ParseJson(line, &memory, ec);
      if (ec || !v.is_object()) return Fail(StrCat(a.file, ":", line_no, ": not a JSON object"));
      const auto& obj = v.as_object();
      auto str = [&](const char* key, std::string& into) {
        if (const auto* f = obj.if_contains(key)) {
          if (f->is_string()) into = std::string(f->as_string());
          if (f->is_int64()) into = std::to_string(f->as_int64());
        }
      };
      str("experiment", o.experiment);
      str("metric", o.metric);
      str("request_id", o.request_id);
      str("unit_id", o.unit_id);
      str("event_id", o.event_id);
      const auto* value = obj.if_contains("value");
      if (!value || !(value->is_number() || value->is_bool())) return Fail(StrCat(a.file, ":", line_no, ": 'value' must be a number"));
      // Boost.JSON reads 1e400 as inf and 0e400 as NaN: refused, as POST /outcomes refuses them.
      o.value = value->is_bool() ? (value->as_bool() ? 1 : 0) : value->to_number<double>();
      if (!std::isfinite(o.value)) return Fail(StrCat(a.file, ":", line_no, ": 'value' must be a finite number"));
      if (const auto* ts = obj.if_contains("ts"); ts && !ts->is_null()) {
        const double seconds = ts->is_number() ? ts->to_number<double>() : -1;
        if (!IsUnixSeconds(seconds)) return Fail(StrCat(a.file, ":", line_no, ": 'ts' must be Unix seconds (a number)"));
        o.ts_us = static_cast<int64_t>(seconds * 1e6);
      }
    }
    if (o.experiment.empty() || o.metric.empty() || (o.request_id.empty() && o.unit_id.empty())) {
      return Fail(StrCat(a.file, ":", line_no, ": needs experiment, metric, and request_id and/or unit_id"));
    }
    batch.push_back(std::move(o));
    ++read;
    if (batch.size() == 10000) {
      if (auto s = Commit(sink, no_exposures, batch, stored); !s.ok()) return Fail(std::string(s.message()));
    }
  }
  if (auto s = Commit(sink, no_exposures, batch, stored); !s.ok()) return Fail(std::string(s.message()));
  std::printf("imported %lld outcomes (%lld stored, %lld duplicates) into %s\n", static_cast<long long>(read),
              static_cast<long long>(stored), static_cast<long long>(read - stored), a.store.c_str());
  return 0;
}

int ImportResults(const Args& a, events::EventSink& sink) {
  std::ifstream in(a.file, std::ios::binary);
  if (!in) return Fail(StrCat(a.file, ": cannot open"));
  std::string line;
  if (!std::getline(in, line)) return Fail(StrCat(a.file, ": empty file"));
  const auto header = common::SplitCsvRecord(line);
  auto col = [&](const char* name) -> int {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return static_cast<int>(i);
    }
    return -1;
  };
  const int c_user = col("user_id"), c_version = col("model_version"), c_true = col("y_true"), c_pred = col("y_pred");
  if (c_user < 0 || c_version < 0 || c_true < 0 || c_pred < 0) {
    return Fail(StrCat(a.file, ": needs the columns user_id, model_version, y_true, y_pred"));
  }
  if (auto existing = sink.CountExposures(a.experiment); existing.ok() && *existing > 0) {
    return Fail(StrCat("experiment '", a.experiment, "' already has ", *existing,
                       " exposures in ", a.store, "; import under another --experiment"));
  }
  const int64_t base = common::SystemClock::Get().NowUs();
  std::vector<events::Exposure> exposures;
  std::vector<events::Outcome> outcomes;
  int64_t rows = 0, stored = 0;
  size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line == "\r") continue;
    const auto cells = common::SplitCsvRecord(line);
    if (static_cast<int>(cells.size()) <= std::max({c_user, c_version, c_true, c_pred})) {
      return Fail(StrCat(a.file, ":", line_no, ": too few fields"));
    }
    double y_true, y_pred;
    if (!common::ParseFiniteDouble(cells[c_true], y_true) || (y_true != 0 && y_true != 1)) {
      return Fail(StrCat(a.file, ":", line_no, ": y_true must be 0 or 1"));
    }
    if (!common::ParseFiniteDouble(cells[c_pred], y_pred)) return Fail(StrCat(a.file, ":", line_no, ": y_pred must be a number"));
    events::Exposure e;
    e.request_id = StrCat(a.experiment, ":", line_no);  // stable: re-importing the file is idempotent for outcomes
    e.ts_us = base + rows;  // file order is time order
    e.experiment = a.experiment;
    e.unit_id = cells[c_user];
    e.arm = e.assigned_arm = StrCat("v", cells[c_version]);
    e.model_version = cells[c_version];
    e.routing_mode = "imported";
    e.status = 200;
    e.score = y_pred;
    events::Outcome o;
    o.ts_us = e.ts_us;
    o.experiment = a.experiment;
    o.request_id = e.request_id;
    o.unit_id = e.unit_id;
    o.metric = "booked";
    o.value = y_true;
    o.event_id = e.request_id;
    exposures.push_back(std::move(e));
    outcomes.push_back(std::move(o));
    ++rows;
    if (exposures.size() == 10000) {
      if (auto s = Commit(sink, exposures, outcomes, stored); !s.ok()) return Fail(std::string(s.message()));
    }
  }
  if (auto s = Commit(sink, exposures, outcomes, stored); !s.ok()) return Fail(std::string(s.message()));
  std::printf("imported %lld rows of %s as experiment %s into %s (analyze with --store %s --experiment %s)\n",
              static_cast<long long>(rows), a.file.c_str(), a.experiment.c_str(), a.store.c_str(), a.store.c_str(),
              a.experiment.c_str());
  return 0;
}

}  // namespace

Command AddImport(CLI::App& app) {
  auto* cmd = app.add_subcommand("import", "Load outcomes (JSON lines or CSV) or a seed-style ab_results.csv into the event store");
  auto a = std::make_shared<Args>();
  cmd->add_option("kind", a->kind, "outcomes or results")->required();
  cmd->add_option("file", a->file, "input file")->required();
  cmd->add_option("--store", a->store, "event store URI, sqlite:PATH or postgresql://... (default sqlite:abgate-events.db)");
  cmd->add_option("--experiment,-e", a->experiment, "experiment name for `results` (default ab_results)");
  return {cmd, [a]() -> int {
            if (a->kind != "outcomes" && a->kind != "results") return Fail("kind must be outcomes or results");
            auto sink = events::OpenEventSink(a->store);
            if (!sink.ok()) return Fail(std::string(sink.status().message()));
            return a->kind == "outcomes" ? ImportOutcomes(*a, **sink) : ImportResults(*a, **sink);
          }};
}

}  // namespace abgate::cli
