// The training-data export on a real event store (SQLite file, or the test PostgreSQL with
// ABGATE_TEST_BACKEND=postgres): sampled payloads of every MLflow input form, labels against
// the analysis' own attribution, unsampled and left-out exposures counted.
#include "feedback/training_export.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <boost/json.hpp>

#include "analysis/analysis.h"
#include "common/csv.h"
#include "common/strings.h"
#include "config/gateway_config.h"
#include "config/json_format.h"
#include "events/event_sink.h"
#include "gtest/gtest.h"
#include "feedback/export_training.h"
#include "serving/booster.h"
#include "serving/predictor.h"
#include "serving/scoring_input.h"
#include "serving/training.h"
#include "testing/test_store.h"

namespace abgate::feedback {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr int64_t kHour = 3'600'000'000LL;

// The booking columns' values of one hotel row, distinct per (request, instance).
std::vector<double> Features(int request, int instance) {
  return {10.0 + request, 100.5 + instance, 3, 0, 1, 2, 1, 1.0 + instance};
}

std::string SplitPayload(const std::vector<std::vector<double>>& rows) {
  json::array columns, data;
  for (const auto& c : serving::BookingColumns()) columns.push_back(json::value(c));
  for (const auto& r : rows) data.push_back(json::value_from(r));
  return config::ToJson(json::object{{"dataframe_split", json::object{{"columns", columns}, {"data", data}}}});
}

std::string RecordsPayload(const std::vector<double>& row) {
  json::object rec;
  const auto& cols = serving::BookingColumns();
  for (size_t j = cols.size(); j-- > 0;) rec[cols[j]] = row[j];  // keys in reverse order: names, not positions
  return config::ToJson(json::object{{"dataframe_records", json::array{rec}}});
}

std::string InstancesPayload(const std::vector<double>& row) {
  return config::ToJson(json::object{{"instances", json::array{json::value_from(row)}}});
}

std::string InputsPayload(const std::vector<double>& row) {
  json::object cols;
  const auto& names = serving::BookingColumns();
  for (size_t j = 0; j < names.size(); ++j) cols[names[j]] = json::array{row[j]};
  return config::ToJson(json::object{{"inputs", cols}});
}

std::string CsvPayload(const std::vector<double>& row) {
  std::string out;
  const auto& names = serving::BookingColumns();
  for (size_t j = 0; j < names.size(); ++j) StrAppend(&out, j ? "," : "", names[j]);
  out += "\n";
  for (size_t j = 0; j < row.size(); ++j) StrAppend(&out, j ? "," : "", row[j]);
  return out + "\n";
}

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / StrCat("abgate-export-test-", getpid(), "-", NowUs());
    fs::create_directories(dir_);
    store_ = std::make_unique<testing::TestStore>(testing::TestBackend(), dir_.string());
    if (store_->unconfigured()) GTEST_SKIP() << store_->reason();
    ASSERT_TRUE(store_->ok()) << store_->reason();
    // A model folder with the booking signature: the column names of positional payloads.
    auto trained = serving::TrainBookingModel(serving::ModelQuality::kWeak, 1, 500);
    ASSERT_TRUE(trained.ok()) << trained.status();
    ASSERT_TRUE(serving::WriteMlflowModel(trained->booster, dir_ / "model", "xgb", "").ok());
    auto cfg = config::ParseGatewayConfig(R"(
experiments:
  - name: exp
    model: booking
    routing_mode: user_hash
    attribution_window: 1h
    payload_sample_rate: 1.0
    arms:
      - {name: A, version: "7", weight: 80, upstream: http://127.0.0.1:9/invocations}
      - {name: B, version: "8", weight: 20, upstream: http://127.0.0.1:9/invocations}
    metrics:
      - {name: booked, type: binary, primary: true}
      - {name: revenue, type: continuous}
)");
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    experiment_ = cfg->experiments[0];
    WriteEvents();
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  events::Exposure Exposure(const std::string& request, const std::string& unit, const std::string& arm, int64_t ts,
                            std::optional<std::string> payload, const std::string& reply, double score) {
    events::Exposure e;
    e.request_id = request;
    e.ts_us = ts;
    e.experiment = "exp";
    e.unit_id = unit;
    e.arm = e.assigned_arm = arm;
    e.model_name = "booking";
    e.model_version = arm == "A" ? "7" : "8";
    e.routing_mode = "user_hash";
    e.status = 200;
    e.score = score;
    e.request_payload = std::move(payload);
    if (e.request_payload) e.response_payload = reply;
    return e;
  }

  void WriteEvents() {
    const int64_t t0 = NowUs() - 3 * kHour;
    change_us_ = t0 + 30 * 60'000'000LL;
    std::vector<events::Exposure> x;
    // r1: dataframe_split, two hotels; booked by request id.
    x.push_back(Exposure("r1", "u1", "A", t0, SplitPayload({Features(1, 0), Features(1, 1)}),
                         R"({"predictions": [0.2, 0.6]})", 0.2));
    // r2: dataframe_records; booked by unit id only.
    x.push_back(Exposure("r2", "u2", "B", t0 + 1000, RecordsPayload(Features(2, 0)), R"({"predictions": [0.4]})", 0.4));
    // r3: instances (positional: the signature names them); its booking came after the window.
    x.push_back(Exposure("r3", "u3", "A", t0 + 2000, InstancesPayload(Features(3, 0)), R"({"predictions": [0.1]})", 0.1));
    // r4: inputs as columns, after the weights changed to 50/50; not booked.
    x.push_back(Exposure("r4", "u4", "B", change_us_ + 1000, InputsPayload(Features(4, 0)), R"([0.9])", 0.9));
    // r9: a CSV body.
    x.push_back(Exposure("r9", "u9", "A", t0 + 3000, CsvPayload(Features(9, 0)), R"({"predictions": [0.3]})", 0.3));
    // r5: a unit outside the payload sample.
    x.push_back(Exposure("r5", "u5", "A", t0 + 4000, std::nullopt, "", 0.5));
    // r6 / r6b: a unit seen in two arms (the analysis leaves it out).
    x.push_back(Exposure("r6", "u6", "A", t0 + 5000, SplitPayload({Features(6, 0)}), R"({"predictions": [0.5]})", 0.5));
    x.push_back(Exposure("r6b", "u6", "B", t0 + 6000, SplitPayload({Features(6, 1)}), R"({"predictions": [0.5]})", 0.5));
    // r7: a unit exposed a minute ago: younger than the attribution window.
    x.push_back(Exposure("r7", "u7", "A", NowUs() - 60'000'000LL, SplitPayload({Features(7, 0)}),
                         R"({"predictions": [0.7]})", 0.7));
    // r8: outside the experiment (coverage): never exported nor counted.
    events::Exposure out = Exposure("r8", "u8", "A", t0 + 7000, SplitPayload({Features(8, 0)}), R"({"predictions": [0.8]})", 0.8);
    out.in_experiment = false;
    x.push_back(out);
    // The weights changed to 50/50 (an audited admin change).
    config::ExperimentConfig after = experiment_;
    after.arms[0].weight = after.arms[1].weight = 50;
    events::AuditRecord change{change_us_, "test", "", "weights", "exp",
                               config::ToJson(config::ExperimentToJson(experiment_)),
                               config::ToJson(config::ExperimentToJson(after))};
    std::vector<events::Outcome> o = {
        {t0 + 10, "exp", "r1", "u1", "booked", 1, "o1"},
        {t0 + 10, "exp", "r1", "u1", "revenue", 250, "o2"},
        {t0 + 2000, "exp", "", "u2", "booked", 1, "o3"},
        {t0 + 2000 + 2 * kHour, "exp", "r3", "u3", "booked", 1, "o4"},
        {change_us_ + 2000, "exp", "r4", "u4", "booked", 0, "o5"},
        {t0 + 5000, "exp", "r5", "u5", "booked", 1, "o6"},
        {t0 + 6000, "exp", "r6", "u6", "booked", 1, "o7"},
    };
    auto sink = events::OpenEventSink(store_->uri());
    ASSERT_TRUE(sink.ok()) << sink.status();
    ASSERT_TRUE((*sink)->WriteBatch(x, std::vector<events::AuditRecord>{change}, o).ok());
  }

  ExportOptions Options(const std::string& file) {
    ExportOptions o;
    o.store = store_->uri();
    o.experiment = "exp";
    o.output = (dir_ / file).string();
    o.experiment_config = experiment_;
    o.signature_from = (dir_ / "model").string();
    return o;
  }

  fs::path dir_;
  std::unique_ptr<testing::TestStore> store_;
  config::ExperimentConfig experiment_;
  int64_t change_us_ = 0;
};

struct Csv {
  std::vector<std::string> comments;
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
};

Csv ReadCsv(const fs::path& path) {
  Csv out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) {
      out.comments.push_back(line);
    } else if (out.header.empty()) {
      out.header = common::SplitCsvRecord(line);
    } else {
      const auto cells = common::SplitCsvRecord(line);
      std::map<std::string, std::string> row;
      for (size_t i = 0; i < cells.size() && i < out.header.size(); ++i) row[out.header[i]] = cells[i];
      out.rows.push_back(std::move(row));
    }
  }
  return out;
}

TEST_F(ExportTest, EveryInputFormBecomesRowsWithSignatureColumnsAndAnalysisLabels) {
  auto sum = ExportTrainingData(Options("train.csv"));
  ASSERT_TRUE(sum.ok()) << sum.status();
  // In the experiment: r1 r2 r3 r4 r9 r5 r6 r6b r7; sampled all but r5.
  EXPECT_EQ(sum->exposures, 9);
  EXPECT_EQ(sum->sampled, 8);
  EXPECT_EQ(sum->unsampled, 1);
  EXPECT_EQ(sum->multiple_arm_units, 2);  // r6 and r6b
  EXPECT_EQ(sum->maturing, 1);            // r7
  EXPECT_EQ(sum->unreadable, 0) << sum->first_unreadable;
  EXPECT_EQ(sum->requests_written, 5);
  EXPECT_EQ(sum->rows, 6);  // r1 has two hotels
  EXPECT_EQ(sum->features, serving::BookingColumns());
  EXPECT_EQ(sum->labels, (std::vector<std::string>{"booked", "revenue"}));

  const Csv csv = ReadCsv(dir_ / "train.csv");
  ASSERT_EQ(csv.rows.size(), 6u);
  bool says_unsampled = false, says_features = false;
  for (const auto& c : csv.comments) {
    says_unsampled |= c.find("unsampled 1") != std::string::npos;
    says_features |= c == "# features: " + [] {
      std::string s;
      for (const auto& n : serving::BookingColumns()) StrAppend(&s, s.empty() ? "" : ",", n);
      return s;
    }();
  }
  EXPECT_TRUE(says_unsampled);
  EXPECT_TRUE(says_features);
  std::map<std::string, std::map<std::string, std::string>> by;  // request#instance → row
  for (const auto& r : csv.rows) by[r.at("request_id") + "#" + r.at("instance")] = r;
  ASSERT_EQ(by.size(), 6u);
  // Features in the signature's names, whatever form the payload took.
  for (const auto& [key, request] : std::map<std::string, int>{{"r1#0", 1}, {"r2#0", 2}, {"r3#0", 3}, {"r4#0", 4}, {"r9#0", 9}}) {
    const auto expected = Features(request, 0);
    for (size_t j = 0; j < expected.size(); ++j) {
      EXPECT_EQ(std::stod(by[key].at(serving::BookingColumns()[j])), expected[j]) << key << " " << j;
    }
  }
  EXPECT_EQ(by["r1#1"].at("nightly_price"), "101.5");
  // Predictions and their rank within the request.
  EXPECT_EQ(by["r1#0"].at("prediction"), "0.2");
  EXPECT_EQ(by["r1#0"].at("rank"), "2");
  EXPECT_EQ(by["r1#1"].at("prediction"), "0.6");
  EXPECT_EQ(by["r1#1"].at("rank"), "1");
  EXPECT_EQ(by["r4#0"].at("prediction"), "0.9");  // a bare list reply
  // Labels as attributed: by request (r1, r4), by unit (r2), outside the window (r3).
  EXPECT_EQ(by["r1#0"].at("booked"), "1");
  EXPECT_EQ(by["r1#1"].at("booked"), "1");
  EXPECT_EQ(by["r1#0"].at("revenue"), "250");
  EXPECT_EQ(by["r1#0"].at("label_source"), "request");
  EXPECT_EQ(by["r2#0"].at("booked"), "1");
  EXPECT_EQ(by["r2#0"].at("label_source"), "unit");
  EXPECT_EQ(by["r3#0"].at("booked"), "0");
  EXPECT_EQ(by["r4#0"].at("booked"), "0");
  EXPECT_EQ(by["r4#0"].at("label_source"), "request");
  // Served arm and version; assignment probability from the weights in force (80/20, then 50/50).
  EXPECT_EQ(by["r2#0"].at("arm"), "B");
  EXPECT_EQ(by["r2#0"].at("model_version"), "8");
  EXPECT_EQ(by["r1#0"].at("assignment_probability"), "0.8");
  EXPECT_EQ(by["r2#0"].at("assignment_probability"), "0.2");
  EXPECT_EQ(by["r4#0"].at("assignment_probability"), "0.5");

  // The same labels the analysis scores each prediction against (its model-quality pairs).
  auto input = analysis::ReadEventStore(store_->uri(), "exp", "user", analysis::MetricsOf(experiment_),
                                        experiment_.attribution_window_us);
  ASSERT_TRUE(input.ok()) << input.status();
  std::multiset<std::tuple<std::string, double, int>> analysed;
  for (const auto& p : input->predictions) analysed.insert({input->arms[p.arm].name, p.score, p.label});
  for (const auto& [key, r] : by) {
    if (r.at("instance") != "0") continue;
    auto it = analysed.find({r.at("arm"), std::stod(r.at("prediction")), std::stoi(r.at("booked"))});
    EXPECT_NE(it, analysed.end()) << key;
    if (it != analysed.end()) analysed.erase(it);
  }
}

TEST_F(ExportTest, JsonLinesCarryTheSameRowsAndAHeaderObject) {
  auto sum = ExportTrainingData([&] {
    auto o = Options("train.jsonl");
    o.format = ExportFormat::kJsonLines;
    o.arm = "B";
    return o;
  }());
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(sum->rows, 2);  // r2 and r4
  std::ifstream in(dir_ / "train.jsonl");
  std::string line;
  std::vector<json::value> lines;
  while (std::getline(in, line)) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  const json::object& head = lines[0].as_object().at("abgate_export").as_object();
  EXPECT_EQ(head.at("unsampled").as_int64(), 0);  // r5 was served by A
  EXPECT_EQ(head.at("rows").as_int64(), 2);
  const json::object& r2 = lines[1].as_object();
  EXPECT_EQ(r2.at("request_id").as_string(), "r2");
  EXPECT_EQ(r2.at("nightly_price").to_number<double>(), 100.5);
  EXPECT_EQ(r2.at("booked").to_number<double>(), 1);
}

TEST_F(ExportTest, RefusesAnExistingFileAndLeavesItAlone) {
  std::ofstream(dir_ / "mine.csv") << "precious\n";
  auto sum = ExportTrainingData(Options("mine.csv"));
  ASSERT_FALSE(sum.ok());
  EXPECT_EQ(sum.status().code(), absl::StatusCode::kAlreadyExists);
  std::ifstream in(dir_ / "mine.csv");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(text, "precious\n");
}

TEST_F(ExportTest, AnExperimentWithoutSampledPayloadsSaysHowToGetThem) {
  auto sink = events::OpenEventSink(store_->uri());
  ASSERT_TRUE(sink.ok());
  std::vector<events::Exposure> x = {Exposure("q1", "v1", "A", NowUs() - kHour, std::nullopt, "", 0.1)};
  x[0].experiment = "other";
  ASSERT_TRUE((*sink)->WriteBatch(x, {}).ok());
  auto o = Options("other.csv");
  o.experiment = "other";
  o.experiment_config.reset();
  auto sum = ExportTrainingData(o);
  ASSERT_FALSE(sum.ok());
  EXPECT_EQ(sum.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(sum.status().message().find("payload_sample_rate"), absl::string_view::npos) << sum.status();
  EXPECT_FALSE(fs::exists(dir_ / "other.csv"));
}

// The loop's second half: a model trained on an export learns the booking process and serves
// in-process (the gateway's Predictor) with the export's columns as its signature.
TEST_F(ExportTest, ModelTrainedOnTheExportLearnsAndServes) {
  const serving::BookingData data = serving::GenerateBookings(4000, 11);
  std::vector<events::Exposure> x;
  std::vector<events::Outcome> o;
  const int64_t t0 = NowUs() - 3 * kHour;
  for (int64_t i = 0; i < data.rows; ++i) {
    std::vector<double> row(data.features.begin() + i * 8, data.features.begin() + (i + 1) * 8);
    const std::string id = StrCat("q", i);
    events::Exposure e = Exposure(id, StrCat("user", i), i % 5 == 0 ? "B" : "A", t0 + i, SplitPayload({row}),
                                  R"({"predictions": [0.5]})", 0.5);
    e.experiment = "big";
    x.push_back(std::move(e));
    o.push_back({t0 + i + 10, "big", id, "", "booked", data.labels[i], StrCat("b", i)});
  }
  auto sink = events::OpenEventSink(store_->uri());
  ASSERT_TRUE(sink.ok()) << sink.status();
  ASSERT_TRUE((*sink)->WriteBatch(x, {}, o).ok());
  ExportOptions opts = Options("big.csv");
  opts.experiment = "big";
  opts.experiment_config->name = "big";
  auto sum = ExportTrainingData(opts);
  ASSERT_TRUE(sum.ok()) << sum.status();
  ASSERT_EQ(sum->rows, 4000);

  TrainingOptions t;
  t.label = "booked";
  auto read = ReadTrainingData((dir_ / "big.csv").string(), t);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->rows, 4000);
  EXPECT_EQ(read->features, serving::BookingColumns());
  ASSERT_EQ(read->weight.size(), 4000u);
  EXPECT_FLOAT_EQ(read->weight[0], 1 / 0.2f);  // q0 was served by B, at 20%
  EXPECT_FLOAT_EQ(read->weight[1], 1 / 0.8f);
  EXPECT_EQ(read->provenance.at("experiment").as_string(), "big");
  auto trained = TrainOnData(*read, t);
  ASSERT_TRUE(trained.ok()) << trained.status();
  EXPECT_GT(trained->holdout_rows, 400);
  ASSERT_TRUE(trained->holdout_auc.has_value());
  EXPECT_GT(*trained->holdout_auc, 0.7);  // the process is learnable; a model of noise scores ~0.5

  // The run names the export it learnt from.
  const serving::RunRecord record = RunRecordFor((dir_ / "big.csv").string(), *read, *trained, t, "training", "booking");
  EXPECT_EQ(record.run_tags.at("abgate.training_data.experiment"), "big");
  EXPECT_EQ(record.run_tags.at("abgate.training_data.rows"), "4000");
  EXPECT_NE(record.run_tags.at("abgate.training_data.range").find(" to "), std::string::npos);

  // Saved as an MLflow folder and served by the gateway's in-process predictor.
  serving::ModelSignature signature{read->features, {read->x.begin(), read->x.begin() + 8}};
  ASSERT_TRUE(serving::WriteMlflowModel(trained->booster, dir_ / "v3", "xgb", "", signature).ok());
  auto model = serving::ReadMlflowModel(dir_ / "v3");
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->inputs.size(), 8u);
  EXPECT_EQ(model->inputs[7].name, "search_rank");
  auto predictor = serving::Predictor::Load(dir_ / "v3");
  ASSERT_TRUE(predictor.ok()) << predictor.status();
  const auto good = Features(0, 0), bad = std::vector<double>{300, 590, 1, 1, 0, 0, 0, 20};
  auto parsed = serving::ParseJsonInput(SplitPayload({good, bad}), model->inputs, 8);
  ASSERT_TRUE(parsed.ok()) << parsed.error->message;
  auto scores = (*predictor)->PredictNow(parsed.matrix);
  ASSERT_TRUE(scores.ok()) << scores.status();
  ASSERT_EQ(scores->size(), 2u);
  EXPECT_GT((*scores)[0], (*scores)[1]);  // loyal, mobile, soon and cheap books; far, dear, rank 20 does not
  EXPECT_GT((*scores)[0], 0.f);
  EXPECT_LT((*scores)[0], 1.f);
}

}  // namespace
}  // namespace abgate::feedback
