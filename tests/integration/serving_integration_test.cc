// Native serving end to end, with real processes on loopback: `abgate model-server` against
// MLflow's scoring protocol (fixture folders from Python's XGBoost), `abgate train` logging and
// registering versions in `abgate registry`, `models:/` URIs through the registry, and the
// gateway serving arms in-process, including a version change under load.
#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/random.h"
#include "common/strings.h"
#include "registry_fixture.h"
#include "serving/predictor.h"
#include "testing/test_paths.h"

namespace abgate::testing {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

const fs::path kFixtures = fs::path(ABGATE_TEST_DATA_DIR) / "xgboost";

std::string S(const json::value& v) { return std::string(v.as_string()); }

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

uint16_t PortAfter(const std::string& line, const std::string& marker) {
  const size_t at = line.find(marker);
  if (at == std::string::npos) return 0;
  return static_cast<uint16_t>(std::stoi(line.substr(at + marker.size())));
}

// 1 MB of spaces in a CSV field: trimming them one erase at a time took seconds on an I/O thread.
std::string SpacesCsv() { return "lead_time_days\n" + std::string((1 << 20) - 64, ' ') + "1\n"; }

// Records that each name another key (70,000 of them are 0.9 MB): this body took the model
// server and the gateway down with std::bad_alloc (a 70,000 x 70,000 table). Issue 14.
std::string DistinctKeyRecords(std::string_view prefix, int n) {
  std::string body = StrCat("{", prefix, R"("dataframe_records": [)");
  for (int i = 0; i < n; ++i) body += StrCat(i ? "," : "", R"({"k)", i, R"(": 1})");
  return body + "]}";
}

class ServingTest : public RegistryFixture {
 protected:
  std::unique_ptr<Subprocess> StartModelServer(const std::string& model) {
    auto p = std::make_unique<Subprocess>(std::vector<std::string>{ABGATE_BINARY, "model-server", "--model", model,
                                                                   "--port", "0", "--registry-uri", uri(), "--cache-dir",
                                                                   (dir_ / "cache").string()});
    const std::string line = p->ReadStdoutLine(15000);
    model_port_ = PortAfter(line, "127.0.0.1:");
    EXPECT_NE(model_port_, 0) << line << p->stderr_text();
    return p;
  }
  // Runs `abgate train` registering a version; returns its stdout.
  std::string Train(const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {ABGATE_BINARY, "train", "--rows", "3000", "--registry-uri", uri(),
                                     "--model-name", "hyatt_booking_model"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    Subprocess p(argv);
    EXPECT_EQ(p.Wait(60000), 0) << p.stderr_text();
    return p.stdout_text();
  }
  ApiReply Score(uint16_t port, std::string_view path, std::string_view body,
                 std::string_view content_type = "application/json") {
    RawResponse r = RawRequest(port, "POST", path, body, content_type);
    ApiReply out;
    out.status = r.status;
    out.body = r.body;
    out.headers = r.headers;
    boost::system::error_code ec;
    out.json = json::parse(r.body, ec);
    return out;
  }
  uint16_t model_port_ = 0;
};

TEST_F(ServingTest, ModelServerSpeaksMlflowsScoringProtocol) {
  auto server = StartModelServer((kFixtures / "model_xgb").string());
  const json::value expected = json::parse(ReadFile(kFixtures / "expected_predictions.json"));
  const std::string split = ReadFile(kFixtures / "input.json");
  ApiReply r = Score(model_port_, "/invocations", R"({"dataframe_split": )" + split + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  const auto& got = r["predictions"].as_array();
  const auto& want = expected.at("predictions").as_array();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i].as_double(), want[i].as_double(), 1e-6);

  // The same rows as records, as a column dict, and as CSV give the same answer.
  const json::value parsed = json::parse(split);
  const auto& columns = parsed.at("columns").as_array();
  json::array records;
  json::object by_column;
  std::string csv;
  for (size_t j = 0; j < columns.size(); ++j) csv += (j ? "," : "") + std::string(columns[j].as_string());
  csv += "\n";
  for (const auto& row : parsed.at("data").as_array()) {
    json::object rec;
    for (size_t j = 0; j < columns.size(); ++j) {
      rec[columns[j].as_string()] = row.as_array()[j];
      by_column[columns[j].as_string()].emplace_array();
      csv += (j ? "," : "") + (row.as_array()[j].is_null() ? std::string() : json::serialize(row.as_array()[j]));
    }
    csv += "\n";
    records.push_back(std::move(rec));
  }
  for (const auto& row : parsed.at("data").as_array()) {
    for (size_t j = 0; j < columns.size(); ++j) by_column[columns[j].as_string()].as_array().push_back(row.as_array()[j]);
  }
  for (const std::string& body : {json::serialize(json::object{{"dataframe_records", records}}),
                                  json::serialize(json::object{{"instances", records}}),
                                  json::serialize(json::object{{"inputs", by_column}})}) {
    ApiReply same = Score(model_port_, "/invocations", body);
    EXPECT_EQ(same.body, r.body) << body.substr(0, 80);
  }
  EXPECT_EQ(Score(model_port_, "/invocations", csv, "text/csv").body, r.body);

  // MLflow's errors.
  ApiReply list = Score(model_port_, "/invocations", "[1, 2]");
  EXPECT_EQ(list.status, 400);
  EXPECT_EQ(list.Code(), "BAD_REQUEST");
  EXPECT_EQ(Score(model_port_, "/invocations", R"({"instances": [[1,2,3,4,5,6,7,8]]})").Code(), "INVALID_PARAMETER_VALUE");
  ApiReply missing = Score(model_port_, "/invocations", R"({"dataframe_records": [{"lead_time_days": 3}]})");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.Message().find("Model is missing inputs ['nightly_price'"), std::string::npos) << missing.body;
  EXPECT_EQ(Score(model_port_, "/invocations", "{broken").Code(), "BAD_REQUEST");
  ApiReply plain = Score(model_port_, "/invocations", "x", "text/plain");
  EXPECT_EQ(plain.status, 415);
  EXPECT_EQ(plain.body,
            "This predictor only supports the following content types: Types: ['text/csv', 'application/json']. "
            "Got 'text/plain'.");
  EXPECT_EQ(Score(model_port_, "/invocations", "{}", "application/json; charset=latin-1").status, 415);
  EXPECT_EQ(Score(model_port_, "/invocations", "{}", "application/json; format=pandas-split").status, 415);
  EXPECT_EQ(RawRequest(model_port_, "GET", "/invocations").status, 405);
  RawResponse ping = RawRequest(model_port_, "GET", "/ping");
  EXPECT_EQ(ping.status, 200);
  EXPECT_EQ(ping.body, "\n");
  EXPECT_EQ(RawRequest(model_port_, "GET", "/health").status, 200);
  EXPECT_EQ(RawRequest(model_port_, "GET", "/version").body, "2.17.2");
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(10000), 0);
}

TEST_F(ServingTest, FolderWithoutXgboostFlavorIsAOneLineError) {
  const fs::path folder = dir_ / "sk";
  fs::create_directories(folder);
  std::ofstream(folder / "MLmodel") << "flavors:\n  python_function: {}\n  sklearn: {pickled_model: model.pkl}\n";
  Subprocess p({ABGATE_BINARY, "model-server", "--model", folder.string(), "--port", "0"});
  EXPECT_EQ(p.Wait(10000), 1);
  EXPECT_NE(p.stderr_text().find("found flavors: python_function, sklearn"), std::string::npos) << p.stderr_text();
}

TEST_F(ServingTest, TrainRegistersVersionsThatServeFromTheRegistry) {
  const std::string weak = Train({"--quality", "weak", "--seed", "5", "--alias", "champion", "--stage", "Production"});
  EXPECT_NE(weak.find("registered hyatt_booking_model version 1"), std::string::npos) << weak;
  const std::string strong = Train({"--quality", "strong", "--seed", "6", "--tag", "ab_test_candidate=true"});
  EXPECT_NE(strong.find("registered hyatt_booking_model version 2"), std::string::npos) << strong;

  // What MLflow records for a logged and registered model.
  ApiReply v2 = Api("GET", "model-versions/get?name=hyatt_booking_model&version=2");
  ASSERT_EQ(v2.status, 200);
  const auto& mv = v2["model_version"].as_object();
  EXPECT_EQ(json::serialize(mv.at("tags")), R"([{"key":"ab_test_candidate","value":"true"}])");
  const std::string source(mv.at("source").as_string());
  EXPECT_EQ(source.rfind("mlflow-artifacts:/", 0), 0u) << source;
  const std::string run_id(mv.at("run_id").as_string());
  const auto run = Api("GET", "runs/get?run_id=" + run_id)["run"].as_object();
  EXPECT_EQ(run.at("info").as_object().at("status").as_string(), "FINISHED");
  bool has_auc = false;
  for (const auto& m : run.at("data").as_object().at("metrics").as_array()) {
    has_auc |= m.as_object().at("key").as_string() == "holdout_auc";
  }
  EXPECT_TRUE(has_auc);
  ApiReply files = Api("GET", "artifacts/list?run_id=" + run_id + "&path=model");
  std::set<std::string> names;
  for (const auto& f : files["files"].as_array()) names.insert(std::string(f.as_object().at("path").as_string()));
  for (const char* want : {"model/MLmodel", "model/model.xgb", "model/conda.yaml", "model/python_env.yaml",
                           "model/requirements.txt", "model/input_example.json", "model/serving_input_example.json"}) {
    EXPECT_TRUE(names.count(want)) << want;
  }
  EXPECT_EQ(S(Api("GET", "registered-models/alias?name=hyatt_booking_model&alias=champion")["model_version"]
                  .as_object()
                  .at("current_stage")),
            "Production");

  // models:/ URIs resolve through the registry; the same rows score differently per version.
  auto champion = StartModelServer("models:/hyatt_booking_model@champion");
  const fs::path example = dir_ / "cache" / "hyatt_booking_model" / "1" / "serving_input_example.json";
  ASSERT_TRUE(fs::exists(example));
  ApiReply a = Score(model_port_, "/invocations", ReadFile(example));
  ASSERT_EQ(a.status, 200) << a.body;
  auto local = serving::Predictor::Load(dir_ / "cache" / "hyatt_booking_model" / "1");
  ASSERT_TRUE(local.ok());
  champion->Signal(SIGTERM);
  champion->Wait(10000);
  auto candidate = StartModelServer("models:/hyatt_booking_model/2");
  ApiReply b = Score(model_port_, "/invocations", ReadFile(example));
  ASSERT_EQ(b.status, 200);
  EXPECT_NE(a.body, b.body);
  candidate->Signal(SIGTERM);
  candidate->Wait(10000);
}

TEST_F(ServingTest, GatewayServesArmsInProcessAndSwapsVersionsUnderLoad) {
  Train({"--quality", "weak", "--seed", "5"});
  Train({"--quality", "strong", "--seed", "6"});
  Train({"--quality", "strong", "--seed", "7"});
  const fs::path config = dir_ / "gateway.yaml";
  std::ofstream(config) << "server: {listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, threads: 2}\n"
                        << "registry: {uri: \"" << uri() << "\", cache_dir: \"" << (dir_ / "gwcache").string() << "\"}\n"
                        << "events: {store: \"sqlite:" << (dir_ / "events.db").string() << "\", flush_ms: 5}\n"
                        << "experiments:\n"
                        << "  - name: hyatt_booking_ab\n"
                        << "    model: hyatt_booking_model\n"
                        << "    default: true\n"
                        << "    routing_mode: user_hash\n"
                        << "    arms:\n"
                        << "      - {name: A, version: \"1\", weight: 50}\n"
                        << "      - {name: B, version: \"2\", weight: 50}\n";
  Subprocess gw({ABGATE_BINARY, "serve", "--config", config.string()}, {"ABGATE_ADMIN_TOKEN=t"});
  const std::string line = gw.ReadStdoutLine(30000);
  const uint16_t port = PortAfter(line, "data=127.0.0.1:");
  const uint16_t admin = PortAfter(line, "admin=127.0.0.1:");
  ASSERT_NE(port, 0) << line << gw.stderr_text();
  const std::string rows = ReadFile(dir_ / "gwcache" / "hyatt_booking_model" / "2" / "serving_input_example.json");
  const std::string body_tail = rows.substr(1);  // {"dataframe_split": ...} without its '{'
  auto predict = [&](const std::string& user) {
    return Score(port, "/predict", R"({"user_id":")" + user + "\"," + body_tail);
  };
  // Each arm answers with its own version's predictions.
  std::map<std::string, std::string> by_arm;
  for (int i = 0; i < 40 && by_arm.size() < 2; ++i) {
    ApiReply r = predict("u" + std::to_string(i));
    ASSERT_EQ(r.status, 200) << r.body;
    by_arm[S(r["model_group"])] = json::serialize(r["predictions"]);
    EXPECT_EQ(r.headers["x-abgate-model-version"], S(r["model_group"]) == "A" ? "1" : "2");
  }
  ASSERT_EQ(by_arm.size(), 2u);
  EXPECT_NE(by_arm["A"], by_arm["B"]);
  ApiReply mlflow = Score(port, "/invocations", rows);
  ASSERT_EQ(mlflow.status, 200);
  EXPECT_EQ(mlflow.body.rfind("{\"predictions\": [", 0), 0u) << mlflow.body;
  ApiReply bad = Score(port, "/predict", R"({"user_id":"u1","dataframe_records":[{"lead_time_days":1}]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.Code(), "INVALID_PARAMETER_VALUE");
  // The gateway's in-process arms refuse the 70,000-key body too, and the gateway lives.
  ApiReply keys = Score(port, "/predict", DistinctKeyRecords(R"("user_id":"u1",)", 70000));
  EXPECT_EQ(keys.status, 400) << keys.body.substr(0, 200);
  EXPECT_EQ(Score(port, "/invocations", SpacesCsv(), "text/csv").status, 400);
  EXPECT_EQ(RawRequest(port, "GET", "/healthz").status, 200);

  // Swap B to version 3 while two clients keep sending: nothing fails, and afterwards B serves v3.
  std::atomic<bool> stop{false};
  std::atomic<int> failures{0}, sent{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 2; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; !stop && i < 20000; ++i) {
        if (predict("load-" + std::to_string(t) + "-" + std::to_string(i)).status != 200) failures++;
        sent++;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  RawResponse patched = RawRequest(admin, "PATCH", "/api/v1/experiments/hyatt_booking_ab",
                                   R"({"arms":[{"name":"A","version":"1","weight":50},{"name":"B","version":"3","weight":50}]})",
                                   "application/json", "Authorization: Bearer t\r\n");
  EXPECT_EQ(patched.status, 200) << patched.body;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(failures.load(), 0) << "of " << sent.load();
  EXPECT_GT(sent.load(), 20);
  for (int i = 0; i < 40; ++i) {
    ApiReply r = predict("u" + std::to_string(i));
    if (S(r["model_group"]) != "B") continue;
    EXPECT_EQ(r.headers["x-abgate-model-version"], "3");
    EXPECT_NE(json::serialize(r["predictions"]), by_arm["B"]);
    break;
  }
  gw.Signal(SIGTERM);
  EXPECT_EQ(gw.Wait(20000), 0) << gw.stderr_text();
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

TEST_F(ServingTest, GarbageScoringRequestsGetMlflowErrorsNeverA5xx) {
  auto server = StartModelServer((kFixtures / "model_json").string());
  const std::vector<std::string> bodies = {
      "", "null", "1", "[]", "{}", "{\"inputs\": null}", "{\"inputs\": {}}", "{\"inputs\": [[]]}",
      "{\"dataframe_split\": {\"columns\": \"x\"}}", "{\"dataframe_split\": {\"data\": [[1e999]]}}",
      "{\"dataframe_records\": [1, 2]}", "{\"instances\": [{\"lead_time_days\": [1, 2]}]}",
      "{\"inputs\": {\"lead_time_days\": [1], \"nightly_price\": [1, 2]}}", std::string(2000, '['),
      "{\"dataframe_split\": {\"columns\": [], \"data\": []}}", "lead_time_days\n1,2,3\n", "\xff\xfe\x00"};
  common::Xoshiro256 rng(11);
  std::vector<std::string> all = bodies;
  for (int i = 0; i < 150; ++i) {
    std::string junk(rng() % 200, '\0');
    for (auto& c : junk) c = static_cast<char>(rng() & 0xFF);
    all.push_back(std::move(junk));
  }
  for (const std::string& body : all) {
    for (const char* ct : {"application/json", "text/csv"}) {
      ApiReply r = Score(model_port_, "/invocations", body, ct);
      ASSERT_NE(r.status, 0) << "no answer for " << body.substr(0, 40);
      EXPECT_TRUE(r.status == 200 || r.status == 400) << ct << " " << body.substr(0, 40) << " -> " << r.status << " "
                                                      << r.body.substr(0, 200);
    }
  }
  EXPECT_EQ(RawRequest(model_port_, "GET", "/ping").status, 200);
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(10000), 0);
}

TEST_F(ServingTest, Issue14QuadraticBodiesAreA400AndTheModelServerLives) {
  auto server = StartModelServer((kFixtures / "model_json").string());
  const std::string body = DistinctKeyRecords("", 70000);
  ASSERT_GT(body.size(), 900000u);
  for (int i = 0; i < 3; ++i) {
    ApiReply r = Score(model_port_, "/invocations", body);
    ASSERT_EQ(r.status, 400) << r.body.substr(0, 200);
    EXPECT_EQ(r.Code(), "BAD_REQUEST");
    EXPECT_EQ(S(r["message"]), "Invalid input. The input names more than 10000 distinct columns.");
  }
  EXPECT_EQ(RawRequest(model_port_, "GET", "/ping").status, 200);
  // Answered within RawRequest's 5 s deadline (it took longer with the quadratic trim).
  ApiReply spaces = Score(model_port_, "/invocations", SpacesCsv(), "text/csv");
  EXPECT_EQ(spaces.status, 400) << spaces.body.substr(0, 200);
  EXPECT_EQ(spaces.Code(), "INVALID_PARAMETER_VALUE");  // the other seven columns are missing
  EXPECT_EQ(RawRequest(model_port_, "GET", "/ping").status, 200);
  server->Signal(SIGTERM);
  EXPECT_EQ(server->Wait(10000), 0) << server->stderr_text();
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

// Issue 12: an arm defined by alias records the version it served — in the exposure, the
// X-Abgate-Model-Version header and the reply — and an alias that moves mid-experiment shows
// up as two versions of that arm in the analysis, never as a blank.
TEST_F(ServingTest, ArmsByAliasRecordTheVersionTheyServed) {
  Train({"--quality", "weak", "--seed", "5", "--alias", "champion"});
  Train({"--quality", "strong", "--seed", "6"});
  Train({"--quality", "strong", "--seed", "7"});
  const fs::path config = dir_ / "gateway.yaml";
  const std::string store = "sqlite:" + (dir_ / "events.db").string();
  std::ofstream(config) << "server: {listen: 127.0.0.1:0, admin_listen: 127.0.0.1:0, threads: 2}\n"
                        << "registry: {uri: \"" << uri() << "\", cache_dir: \"" << (dir_ / "gwcache").string() << "\"}\n"
                        << "events: {store: \"" << store << "\", flush_ms: 5}\n"
                        << "experiments:\n"
                        << "  - name: by_alias\n"
                        << "    model: hyatt_booking_model\n"
                        << "    default: true\n"
                        << "    routing_mode: user_hash\n"
                        << "    arms:\n"
                        << "      - {name: A, alias: champion, weight: 50}\n"
                        << "      - {name: B, version: \"2\", weight: 50}\n";
  Subprocess gw({ABGATE_BINARY, "serve", "--config", config.string()}, {"ABGATE_ADMIN_TOKEN=t"});
  const std::string line = gw.ReadStdoutLine(30000);
  const uint16_t port = PortAfter(line, "data=127.0.0.1:");
  const uint16_t admin = PortAfter(line, "admin=127.0.0.1:");
  ASSERT_NE(port, 0) << line << gw.stderr_text();
  const std::string rows = ReadFile(dir_ / "gwcache" / "hyatt_booking_model" / "2" / "serving_input_example.json");
  auto predict = [&](const std::string& user) {
    return Score(port, "/predict", R"({"user_id":")" + user + "\"," + rows.substr(1));
  };
  // A user of A, before and after the alias moves.
  auto served_to_a = [&](const std::string& expected) {
    int seen = 0;
    for (int i = 0; i < 60; ++i) {
      ApiReply r = predict("u" + std::to_string(i));
      EXPECT_EQ(r.status, 200) << r.body;
      if (S(r["model_group"]) != "A") continue;
      EXPECT_EQ(r.headers["x-abgate-model-version"], expected);
      EXPECT_EQ(S(r["model_version"]), expected);
      ++seen;
    }
    EXPECT_GT(seen, 0);
  };
  served_to_a("1");
  ASSERT_EQ(Api("POST", "registered-models/alias", R"({"name":"hyatt_booking_model","alias":"champion","version":"3"})").status,
            200);
  // A change recompiles the experiment, which resolves the alias again.
  RawResponse patched = RawRequest(admin, "POST", "/api/v1/experiments/by_alias/weights", R"({"weights":[50,50]})",
                                   "application/json", "Authorization: Bearer t\r\n");
  ASSERT_EQ(patched.status, 200) << patched.body;
  served_to_a("3");
  gw.Signal(SIGTERM);
  ASSERT_EQ(gw.Wait(20000), 0) << gw.stderr_text();

  Subprocess analyze({ABGATE_BINARY, "analyze", "--store", store, "--experiment", "by_alias", "--control", "A",
                      "--format", "json"});
  ASSERT_EQ(analyze.Wait(30000), 0) << analyze.stderr_text();
  const json::value report = json::parse(analyze.stdout_text());
  const auto& a = report.at("arms").as_array()[0].as_object();
  EXPECT_EQ(a.at("arm"), "A");
  EXPECT_EQ(a.at("model_version"), "1,3");
  ASSERT_EQ(a.at("versions").as_array().size(), 2u);
  EXPECT_EQ(a.at("versions").as_array()[0].at("version"), "1");
  EXPECT_EQ(a.at("versions").as_array()[1].at("version"), "3");
  EXPECT_EQ(report.at("multiple_exposure_units").as_int64(), 0);  // one arm, two versions: not two arms

  // Any experiment can have its per-arm MLflow runs: analyze --log-to-mlflow.
  Subprocess logged({ABGATE_BINARY, "analyze", "--store", store, "--experiment", "by_alias", "--control", "A",
                     "--log-to-mlflow", uri(), "--mlflow-experiment", "alias-analyses"});
  ASSERT_EQ(logged.Wait(30000), 0) << logged.stderr_text();
  ApiReply tracking = Api("GET", "experiments/get-by-name?experiment_name=alias-analyses");
  ASSERT_EQ(tracking.status, 200) << tracking.body;
  const std::string exp_id = S(tracking["experiment"].as_object().at("experiment_id"));
  ApiReply runs = Api("POST", "runs/search", R"({"experiment_ids":[")" + exp_id + R"("],"filter":"tags.ab_test = 'by_alias'"})");
  ASSERT_EQ(runs["runs"].as_array().size(), 2u) << runs.body;
  std::string all = json::serialize(runs.json);
  EXPECT_NE(all.find("\"1,3\""), std::string::npos) << all.substr(0, 800);  // A's versions as a param
  EXPECT_NE(all.find("\"units\""), std::string::npos);
  EXPECT_NE(all.find("ab_test.decision"), std::string::npos);
}

}  // namespace
}  // namespace abgate::testing
