#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "serving/booster.h"
#include "common/strings.h"
#include "serving/mlflow_model.h"
#include "serving/model_server.h"
#include "serving/predictor.h"
#include "serving/scoring_input.h"
#include "serving/training.h"
#include "testing/test_paths.h"

namespace abgate::serving {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const fs::path kFixtures = fs::path(ABGATE_TEST_DATA_DIR) / "xgboost";

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path TempDir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("abgate-serving-" + std::to_string(::getpid()) + "-" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Python's predictions (Debian python3-xgboost 1.7.4, tests/tools/gen_xgboost_fixture.py) for
// the same rows, from each of the three formats MLflow writes.
TEST(XgboostFixture, PredictionsEqualPythonsInEveryFormat) {
  const json::value expected = json::parse(ReadFile(kFixtures / "expected_predictions.json"));
  const auto& want = expected.at("predictions").as_array();
  const std::string input = R"({"dataframe_split": )" + ReadFile(kFixtures / "input.json") + "}";
  for (const char* folder : {"model_xgb", "model_json", "model_ubj"}) {
    auto predictor = Predictor::Load(kFixtures / folder);
    ASSERT_TRUE(predictor.ok()) << folder << ": " << predictor.status();
    EXPECT_EQ((*predictor)->model().inputs.size(), 8u);
    ScoringResult parsed = ParseJsonInput(std::string_view(input), (*predictor)->model().inputs, 8);
    ASSERT_TRUE(parsed.ok()) << parsed.error->message;
    auto got = (*predictor)->PredictNow(std::move(parsed.matrix));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR((*got)[i], want[i].as_double(), 1e-6) << folder << " row " << i;
    }
    // The reply prints each value as Python prints a float32 widened to a float.
    EXPECT_EQ(json::parse(PredictionsJson(*got, false)).at("predictions"), expected.at("predictions")) << folder;
  }
}

TEST(MlflowModel, ClearErrorsForFoldersItCannotServe) {
  const fs::path dir = TempDir("mlmodel");
  auto none = ReadMlflowModel(dir);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("no MLmodel file"), std::string::npos);
  std::ofstream(dir / "MLmodel") << "flavors:\n  python_function: {loader_module: mlflow.sklearn}\n"
                                    "  sklearn: {pickled_model: model.pkl}\n";
  auto sklearn = ReadMlflowModel(dir);
  EXPECT_EQ(sklearn.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(sklearn.status().message().find("found flavors: python_function, sklearn"), std::string::npos)
      << sklearn.status();
  std::ofstream(dir / "MLmodel") << "flavors:\n  xgboost: {data: model.xgb, model_format: xgb}\n";
  EXPECT_NE(ReadMlflowModel(dir).status().message().find("is missing"), std::string::npos);
  std::ofstream(dir / "MLmodel") << "flavors:\n  xgboost: {data: ../../etc/passwd}\n";
  EXPECT_FALSE(ReadMlflowModel(dir).ok());
  fs::remove_all(dir);
}

const std::vector<ColumnSpec> kSig = {{"x1", "double", true}, {"x2", "double", true}};

std::vector<float> Values(const ScoringResult& r) { return r.matrix.values; }

TEST(ScoringInput, AllFourJsonFormsAndCsvAgree) {
  const std::vector<float> want = {1, 2, 3, 4};
  for (const char* body : {
           R"({"dataframe_split": {"columns": ["x2", "x1"], "data": [[2, 1], [4, 3]]}})",
           R"({"dataframe_records": [{"x1": 1, "x2": 2}, {"x2": 4, "x1": 3}]})",
           R"({"instances": [{"x1": 1, "x2": 2}, {"x1": 3, "x2": 4}]})",
           R"({"inputs": {"x1": [1, 3], "x2": [2, 4]}})",
           R"({"dataframe_split": {"columns": ["x1", "x2", "extra"], "data": [[1, 2, "s"], [3, 4, "t"]]}})",
       }) {
    ScoringResult r = ParseJsonInput(std::string_view(body), kSig, 2);
    ASSERT_TRUE(r.ok()) << body << ": " << r.error->message;
    EXPECT_EQ(Values(r), want) << body;
  }
  ScoringResult csv = ParseCsvInput("x2,x1\r\n2,1\r\n4,3\n", kSig, 2);
  ASSERT_TRUE(csv.ok()) << csv.error->message;
  EXPECT_EQ(Values(csv), want);
  ScoringResult missing = ParseJsonInput(std::string_view(R"({"dataframe_split": {"columns": ["x1"], "data": [[null]]}})"),
                                         {{"x1", "double", true}}, 1);
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(std::isnan(missing.matrix.values[0]));
  // Without a signature the list forms are positional.
  ScoringResult positional = ParseJsonInput(std::string_view(R"({"inputs": [[1, 2], [3, 4]]})"), {}, 2);
  ASSERT_TRUE(positional.ok());
  EXPECT_EQ(Values(positional), want);
}

TEST(ScoringInput, MlflowErrors) {
  auto err = [](std::string_view body) {
    ScoringResult r = ParseJsonInput(body, kSig, 2);
    return r.ok() ? ScoringError{200, "", ""} : *r.error;
  };
  ScoringError list = err("[1, 2]");
  EXPECT_EQ(list.http_status, 400);
  EXPECT_EQ(list.error_code, "BAD_REQUEST");
  EXPECT_NE(list.message.find("Received a list."), std::string::npos);
  ScoringError none = err(R"({"data": [[1, 2]]})");
  EXPECT_NE(none.message.find("Received dictionary with input fields: []."), std::string::npos) << none.message;
  EXPECT_NE(none.message.find("IMPORTANT: The MLflow Model scoring protocol has changed"), std::string::npos);
  EXPECT_NE(err(R"({"inputs": [[1, 2]], "instances": [[1, 2]]})").message.find("'inputs', 'instances'"),
            std::string::npos);
  EXPECT_NE(err("{not json").message.find("Ensure that input is a valid JSON formatted string"), std::string::npos);
  ScoringError missing = err(R"({"dataframe_split": {"columns": ["x1"], "data": [[1]]}})");
  EXPECT_EQ(missing.error_code, "INVALID_PARAMETER_VALUE");
  EXPECT_NE(missing.message.find("Model is missing inputs ['x2']."), std::string::npos) << missing.message;
  // With a column signature the list forms fail schema enforcement, as in MLflow.
  EXPECT_EQ(err(R"({"instances": [[1, 2]]})").error_code, "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(err(R"({"inputs": [[1, 2]]})").error_code, "INVALID_PARAMETER_VALUE");
  ScoringError type = err(R"({"dataframe_records": [{"x1": "abc", "x2": 1}]})");
  EXPECT_EQ(type.error_code, "BAD_REQUEST");
  EXPECT_NE(type.message.find("Failed to convert column x1 to type 'float64'"), std::string::npos) << type.message;
  EXPECT_EQ(err(R"({"dataframe_split": {"columns": ["x1", "x2"], "data": [[1]]}})").error_code, "BAD_REQUEST");
  EXPECT_FALSE(ParseCsvInput("x1,x2\n1\n", kSig, 2).ok());
}

// A records body whose records each name another key (0.9 MB, 70,000 keys) was a 70,000 x
// 70,000 table built with 4.9e9 lookups: gigabytes and std::bad_alloc. It is now one pass and
// a 400; this test does not finish (or runs out of memory) without the limits.
std::string DistinctKeyRecords(int n) {
  std::string body = R"({"dataframe_records": [)";
  for (int i = 0; i < n; ++i) body += StrCat(i ? "," : "", R"({"k)", i, R"(": 1})");
  return body + "]}";
}

TEST(ScoringInput, Issue14RecordsWithManyDistinctKeysAreA400) {
  const std::string body = DistinctKeyRecords(70000);
  ASSERT_GT(body.size(), 900000u);
  for (const auto& sig : {kSig, std::vector<ColumnSpec>{}}) {
    ScoringResult r = ParseJsonInput(std::string_view(body), sig, 2);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error->http_status, 400);
    EXPECT_EQ(r.error->error_code, "BAD_REQUEST");
    EXPECT_EQ(r.error->message, "Invalid input. The input names more than 10000 distinct columns.");
  }
  // Sparse records are still fine: an absent key is a missing value.
  ScoringResult sparse = ParseJsonInput(std::string_view(R"({"dataframe_records": [{"x1": 1}, {"x2": 2}]})"), kSig, 2);
  ASSERT_TRUE(sparse.ok()) << sparse.error->message;
  ASSERT_EQ(sparse.matrix.values.size(), 4u);
  EXPECT_EQ(sparse.matrix.values[0], 1);
  EXPECT_TRUE(std::isnan(sparse.matrix.values[1]) && std::isnan(sparse.matrix.values[2]));
  EXPECT_EQ(sparse.matrix.values[3], 2);
  // Empty records cost 3 bytes each but a row of the model's width: bounded by the body too.
  std::vector<ColumnSpec> wide;
  for (int j = 0; j < 10; ++j) wide.push_back({StrCat("c", j), "double", false});
  std::string empties = R"({"dataframe_records": [{})";
  for (int i = 1; i < 200000; ++i) empties += ",{}";
  empties += "]}";
  ScoringResult cells = ParseJsonInput(std::string_view(empties), wide, 10);
  ASSERT_FALSE(cells.ok());
  EXPECT_NE(cells.error->message.find("200000 rows by 10 columns"), std::string::npos) << cells.error->message;
  EXPECT_TRUE(ParseJsonInput(std::string_view(R"({"dataframe_records": [{}, {}]})"), wide, 10).ok());
}

TEST(ScoringInput, ContentTypes) {
  bool csv = false;
  EXPECT_FALSE(CheckContentType("application/json", csv));
  EXPECT_FALSE(CheckContentType("application/json; charset=utf-8", csv));
  EXPECT_FALSE(CheckContentType("text/csv", csv));
  EXPECT_TRUE(csv);
  auto plain = CheckContentType("text/plain", csv);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->http_status, 415);
  EXPECT_EQ(plain->message,
            "This predictor only supports the following content types: Types: ['text/csv', 'application/json']. Got "
            "'text/plain'.");
  EXPECT_EQ(CheckContentType("application/json; charset=latin-1", csv)->message, "The scoring server only supports UTF-8");
  EXPECT_EQ(CheckContentType("application/json; format=pandas-split", csv)->message.rfind(
                "Unrecognized content type parameters: format.", 0),
            0u);
}

TEST(Training, DeterministicAndStrongBeatsWeak) {
  auto a = TrainBookingModel(ModelQuality::kStrong, 11, 4000);
  auto b = TrainBookingModel(ModelQuality::kStrong, 11, 4000);
  auto weak = TrainBookingModel(ModelQuality::kWeak, 11, 4000);
  ASSERT_TRUE(a.ok() && b.ok() && weak.ok());
  EXPECT_EQ(*a->booster.Save("json"), *b->booster.Save("json"));
  EXPECT_GT(a->holdout_auc, 0.75);
  EXPECT_GT(a->holdout_auc, weak->holdout_auc + 0.05) << a->holdout_auc << " vs " << weak->holdout_auc;
  const fs::path dir = TempDir("train");
  for (const char* format : {"xgb", "json", "ubj"}) {
    const fs::path folder = dir / format;
    ASSERT_TRUE(WriteMlflowModel(a->booster, folder, format, "").ok());
    auto loaded = Predictor::Load(folder);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    EXPECT_EQ((*loaded)->model().model_format, format);
    ASSERT_EQ((*loaded)->model().inputs.size(), 8u);
    EXPECT_EQ((*loaded)->model().inputs[0].name, "lead_time_days");
    const std::string example = ReadFile(folder / "serving_input_example.json");
    ScoringResult parsed = ParseJsonInput(std::string_view(example), (*loaded)->model().inputs, 8);
    ASSERT_TRUE(parsed.ok());
    auto from_file = (*loaded)->PredictNow(parsed.matrix);
    auto in_memory = a->booster.Predict(parsed.matrix.values.data(), 2, 8);
    ASSERT_TRUE(from_file.ok() && in_memory.ok());
    EXPECT_EQ(*from_file, *in_memory) << format;
  }
  EXPECT_EQ(ReadFile(dir / "xgb" / "model.xgb").substr(0, 4), "binf");  // XGBoost's legacy binary, as MLflow writes
  fs::remove_all(dir);
}

TEST(Predictor, BatchesConcurrentRequestsAndAnswersEachWithItsRows) {
  auto trained = TrainBookingModel(ModelQuality::kStrong, 3, 2000);
  ASSERT_TRUE(trained.ok());
  const fs::path dir = TempDir("batch");
  ASSERT_TRUE(WriteMlflowModel(trained->booster, dir, "xgb", "").ok());
  auto predictor = Predictor::Load(dir, {.threads = 1});
  ASSERT_TRUE(predictor.ok());
  const BookingData data = GenerateBookings(300, 99);
  auto expected = trained->booster.Predict(data.features.data(), data.rows, 8);
  ASSERT_TRUE(expected.ok());
  std::vector<std::promise<absl::StatusOr<std::vector<float>>>> promises(data.rows);
  for (int64_t i = 0; i < data.rows; ++i) {
    Matrix m{std::vector<float>(data.features.begin() + i * 8, data.features.begin() + (i + 1) * 8), 1, 8};
    (*predictor)->Predict(std::move(m), [&promises, i](absl::StatusOr<std::vector<float>> r) {
      promises[i].set_value(std::move(r));
    });
  }
  for (int64_t i = 0; i < data.rows; ++i) {
    auto r = promises[i].get_future().get();
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->size(), 1u);
    EXPECT_EQ((*r)[0], (*expected)[i]) << i;
  }
  EXPECT_EQ((*predictor)->requests(), 300);
  EXPECT_LT((*predictor)->batches(), 300);  // requests that queued together were scored together
  Matrix wrong{{1, 2, 3}, 1, 3};
  EXPECT_EQ((*predictor)->PredictNow(wrong).status().code(), absl::StatusCode::kInvalidArgument);
  fs::remove_all(dir);
}

// Large bodies are parsed on the predictor's threads, small ones where they arrive.
TEST(Predictor, Issue14LargeBodiesAreParsedOffTheCallingThread) {
  auto predictor = Predictor::Load(kFixtures / "model_json", {.threads = 1});
  ASSERT_TRUE(predictor.ok()) << predictor.status();
  struct Seen {
    std::thread::id thread;
    ScoringReply reply;
  };
  auto score = [&](std::string body) {
    std::promise<Seen> seen;
    Score(**predictor, "application/json", std::move(body), [&seen](ScoringReply reply) {
      seen.set_value({std::this_thread::get_id(), std::move(reply)});
    });
    return seen.get_future().get();
  };
  const Seen small_bad = score(DistinctKeyRecords(10));
  EXPECT_EQ(small_bad.thread, std::this_thread::get_id());
  ASSERT_TRUE(small_bad.reply.error.has_value());
  const Seen large_bad = score(DistinctKeyRecords(70000));
  EXPECT_NE(large_bad.thread, std::this_thread::get_id());
  ASSERT_TRUE(large_bad.reply.error.has_value());
  EXPECT_EQ(large_bad.reply.error->http_status, 400);
  // A large valid body: 3000 copies of the fixture's rows.
  const json::value split = json::parse(ReadFile(kFixtures / "input.json"));
  json::array data;
  while (data.size() < 3000) {
    for (const auto& row : split.at("data").as_array()) data.push_back(row);
  }
  json::object big;
  big["dataframe_split"] = {{"columns", split.at("columns")}, {"data", data}};
  const std::string body = json::serialize(big);
  ASSERT_GT(body.size(), 64u << 10);
  const Seen large_ok = score(body);
  EXPECT_NE(large_ok.thread, std::this_thread::get_id());
  ASSERT_FALSE(large_ok.reply.error.has_value()) << large_ok.reply.error->message;
  ASSERT_TRUE(large_ok.reply.status.ok()) << large_ok.reply.status;
  EXPECT_EQ(large_ok.reply.predictions.size(), data.size());
}

}  // namespace
}  // namespace abgate::serving
