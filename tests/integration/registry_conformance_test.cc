// Conformance of `abgate registry` with MLflow 2.17.2's REST API as MLFLOW.md records it:
// every endpoint of §3–§5, the search grammar of §6, the wire conventions of §1 and the error
// cases marked (observed). Each test talks to a real registry process over loopback.
#include <signal.h>

#include <string>

#include "common/random.h"
#include "registry_fixture.h"

namespace abgate::testing {
namespace {

namespace json = boost::json;

std::string S(const json::value& v) { return std::string(v.as_string()); }

class RegistryConformance : public RegistryFixture {
 protected:
  std::string CreateExperiment(const std::string& name) {
    ApiReply r = Api("POST", "experiments/create", R"({"name":")" + name + R"("})");
    EXPECT_EQ(r.status, 200) << r.body;
    return S(r["experiment_id"]);
  }
  json::object CreateRun(const std::string& exp, const std::string& name, int64_t start = 1795690821663) {
    ApiReply r = Api("POST", "runs/create",
                     R"({"experiment_id":")" + exp + R"(","run_name":")" + name + R"(","start_time":)" +
                         std::to_string(start) + R"(,"tags":[{"key":"ab_group","value":"A"}]})");
    EXPECT_EQ(r.status, 200) << r.body;
    return r["run"].as_object();
  }
  void CreateModelWithVersions(const std::string& name, int versions) {
    ASSERT_EQ(Api("POST", "registered-models/create", R"({"name":")" + name + R"("})").status, 200);
    for (int i = 0; i < versions; ++i) {
      ASSERT_EQ(Api("POST", "model-versions/create", R"({"name":")" + name + R"(","source":"runs:/abc/model"})").status,
                200);
    }
  }
};

// ---- §1 wire conventions ----

TEST_F(RegistryConformance, HealthAndVersion) {
  ApiReply h = Raw("GET", "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "OK");
  ApiReply v = Raw("GET", "/version");
  EXPECT_EQ(v.status, 200);
  EXPECT_EQ(v.body, "2.17.2");
}

TEST_F(RegistryConformance, ContentTypeMalformedJsonAndUnknownPaths) {
  ApiReply missing = Api("POST", "experiments/create", R"({"name":"x"})", "");
  EXPECT_EQ(missing.status, 400);
  EXPECT_EQ(missing.Code(), "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(missing.Message(), "Bad Request. Content-Type header is missing.");
  ApiReply wrong = Api("POST", "experiments/create", R"({"name":"x"})", "text/plain");
  EXPECT_EQ(wrong.Message(), "Bad Request. Content-Type must be one of ['application/json'].");
  EXPECT_EQ(Api("POST", "experiments/create", R"({"name":"cs"})", "application/json; charset=utf-8").status, 200);
  ApiReply malformed = Api("POST", "experiments/create", "{nope");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(malformed.Message(),
            "Missing value for required parameter 'name'. See the API docs for more information about request parameters.");
  EXPECT_EQ(Api("GET", "no/such/endpoint").status, 404);
  ApiReply not_allowed = Api("GET", "runs/search");
  EXPECT_EQ(not_allowed.status, 405);
  // The UI prefix answers the same handlers.
  EXPECT_EQ(Raw("GET", "/ajax-api/2.0/mlflow/experiments/get?experiment_id=0").status, 200);
}

TEST_F(RegistryConformance, WrongScalarTypesAreRefusedByName) {
  const std::string exp = CreateExperiment("types");
  const std::string run = S(CreateRun(exp, "r")["info"].as_object().at("run_id"));
  ApiReply r = Api("POST", "runs/log-metric",
                   R"({"run_id":")" + run + R"(","key":"k","value":"abc","timestamp":1})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.Message().find("Invalid value \"abc\" for parameter 'value' supplied: Hint: Value was of type 'str'"),
            std::string::npos)
      << r.Message();
  EXPECT_EQ(Api("POST", "experiments/create", R"({"name":5})").Code(), "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(Api("POST", "registered-models/create", R"({"name":["a"]})").status, 400);
  // experiment_id as a JSON number is converted, as MLflow does.
  EXPECT_EQ(Api("POST", "runs/create", R"({"experiment_id":)" + exp + "}").status, 200);
}

// ---- §3 tracking ----

TEST_F(RegistryConformance, Experiments) {
  const std::string id = CreateExperiment("hyatt_booking_ab");
  ApiReply dup = Api("POST", "experiments/create", R"({"name":"hyatt_booking_ab"})");
  EXPECT_EQ(dup.status, 400);
  EXPECT_EQ(dup.Code(), "RESOURCE_ALREADY_EXISTS");
  ApiReply got = Api("GET", "experiments/get?experiment_id=" + id);
  ASSERT_EQ(got.status, 200);
  const auto& e = got["experiment"].as_object();
  EXPECT_EQ(S(e.at("name")), "hyatt_booking_ab");
  EXPECT_EQ(S(e.at("artifact_location")), "mlflow-artifacts:/" + id);
  EXPECT_EQ(S(e.at("lifecycle_stage")), "active");
  EXPECT_TRUE(e.at("creation_time").is_int64());
  EXPECT_FALSE(e.contains("tags"));  // empty repeated fields are left out
  ApiReply unknown = Api("GET", "experiments/get?experiment_id=424242");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.Code(), "RESOURCE_DOES_NOT_EXIST");
  EXPECT_EQ(unknown.Message(), "No Experiment with id=424242 exists");
  EXPECT_EQ(Api("GET", "experiments/get?experiment_id=abc").status, 404);
  ApiReply by_name = Api("GET", "experiments/get-by-name?experiment_name=x");
  EXPECT_EQ(by_name.status, 404);
  EXPECT_EQ(by_name.Message(), "Could not find experiment with name 'x'");
  EXPECT_EQ(S(Api("GET", "experiments/get-by-name?experiment_name=hyatt_booking_ab")["experiment"]
                  .as_object()
                  .at("experiment_id")),
            id);
  EXPECT_EQ(Api("GET", "experiments/get").status, 400);

  ASSERT_EQ(Api("POST", "experiments/set-experiment-tag", R"({"experiment_id":")" + id + R"(","key":"team","value":"ml"})").status, 200);
  ASSERT_EQ(Api("POST", "experiments/update", R"({"experiment_id":")" + id + R"(","new_name":"renamed"})").status, 200);
  const auto renamed = Api("GET", "experiments/get?experiment_id=" + id)["experiment"].as_object();
  EXPECT_EQ(S(renamed.at("name")), "renamed");
  EXPECT_EQ(S(renamed.at("tags").as_array()[0].as_object().at("value")), "ml");

  ASSERT_EQ(Api("POST", "experiments/delete", R"({"experiment_id":")" + id + R"("})").status, 200);
  EXPECT_EQ(S(Api("GET", "experiments/get?experiment_id=" + id)["experiment"].as_object().at("lifecycle_stage")), "deleted");
  ApiReply active = Api("POST", "experiments/search", R"({"filter":"name = 'renamed'"})");
  EXPECT_EQ(active.body, "{}");  // an empty search answers {}
  ApiReply deleted = Api("POST", "experiments/search", R"({"view_type":"DELETED_ONLY"})");
  EXPECT_EQ(deleted["experiments"].as_array().size(), 1u);
  ASSERT_EQ(Api("POST", "experiments/restore", R"({"experiment_id":")" + id + R"("})").status, 200);
}

TEST_F(RegistryConformance, SearchExperimentsOrdersAndPages) {
  for (int i = 0; i < 5; ++i) CreateExperiment("exp-" + std::to_string(i));
  ApiReply page1 = Api("POST", "experiments/search",
                       R"({"max_results":2,"filter":"name LIKE 'exp-%'","order_by":["name DESC"]})");
  ASSERT_EQ(page1.status, 200) << page1.body;
  ASSERT_EQ(page1["experiments"].as_array().size(), 2u);
  EXPECT_EQ(S(page1["experiments"].as_array()[0].as_object().at("name")), "exp-4");
  const std::string token = S(page1["next_page_token"]);
  ApiReply page2 = Api("POST", "experiments/search",
                       R"({"max_results":2,"filter":"name LIKE 'exp-%'","order_by":["name DESC"],"page_token":")" +
                           token + R"("})");
  EXPECT_EQ(S(page2["experiments"].as_array()[0].as_object().at("name")), "exp-2");
  ApiReply get = Api("GET", "experiments/search?max_results=100");
  EXPECT_EQ(get["experiments"].as_array().size(), 6u);  // with Default
  EXPECT_EQ(Api("POST", "experiments/search", R"({"max_results":50001})").status, 400);
}

TEST_F(RegistryConformance, RunsCreateGetUpdate) {
  const std::string exp = CreateExperiment("runs");
  json::object run = CreateRun(exp, "arm-A");
  const auto& info = run.at("info").as_object();
  const std::string id = S(info.at("run_id"));
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(S(info.at("run_uuid")), id);
  EXPECT_EQ(S(info.at("experiment_id")), exp);
  EXPECT_EQ(S(info.at("run_name")), "arm-A");
  EXPECT_EQ(S(info.at("user_id")), "");
  EXPECT_EQ(S(info.at("status")), "RUNNING");
  EXPECT_EQ(info.at("start_time").as_int64(), 1795690821663);
  EXPECT_FALSE(info.contains("end_time"));
  EXPECT_EQ(S(info.at("artifact_uri")), "mlflow-artifacts:/" + exp + "/" + id + "/artifacts");
  EXPECT_EQ(json::serialize(run.at("inputs")), "{}");
  const auto& tags = run.at("data").as_object().at("tags").as_array();
  ASSERT_EQ(tags.size(), 2u);
  EXPECT_EQ(S(tags[1].as_object().at("key")), "mlflow.runName");

  EXPECT_EQ(Api("POST", "runs/create", R"({"experiment_id":"999"})").status, 404);
  ApiReply unknown = Api("GET", "runs/get?run_id=nope");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.Message(), "Run with id=nope not found");
  EXPECT_EQ(Api("GET", "runs/get?run_uuid=" + id).status, 200);  // legacy name

  ApiReply done = Api("POST", "runs/update", R"({"run_id":")" + id + R"(","status":"FINISHED","end_time":1795690822000})");
  ASSERT_EQ(done.status, 200);
  EXPECT_EQ(S(done["run_info"].as_object().at("status")), "FINISHED");
  EXPECT_EQ(done["run_info"].as_object().at("end_time").as_int64(), 1795690822000);
  ApiReply bad_status = Api("POST", "runs/update", R"({"run_id":")" + id + R"(","status":"DONE"})");
  EXPECT_EQ(bad_status.status, 200);  // an unknown enum name is dropped
  EXPECT_EQ(S(bad_status["run_info"].as_object().at("status")), "FINISHED");

  ASSERT_EQ(Api("POST", "runs/delete", R"({"run_id":")" + id + R"("})").status, 200);
  EXPECT_EQ(S(Api("GET", "runs/get?run_id=" + id)["run"].as_object().at("info").as_object().at("lifecycle_stage")), "deleted");
  ASSERT_EQ(Api("POST", "runs/restore", R"({"run_id":")" + id + R"("})").status, 200);
}

TEST_F(RegistryConformance, ParamsMetricsTagsAndHistory) {
  const std::string exp = CreateExperiment("log");
  const std::string id = S(CreateRun(exp, "r")["info"].as_object().at("run_id"));
  const std::string rid = R"({"run_id":")" + id + R"(",)";
  ApiReply no_ts = Api("POST", "runs/log-metric", rid + R"("key":"latency_ms","value":12.5})");
  EXPECT_EQ(no_ts.status, 400);
  EXPECT_EQ(no_ts.Message(), "Missing value for required parameter 'timestamp'. See the API docs for more information "
                             "about request parameters.");
  ASSERT_EQ(Api("POST", "runs/log-metric", rid + R"("key":"latency_ms","value":12.5,"timestamp":1795690821663,"step":1})").status, 200);
  ASSERT_EQ(Api("POST", "runs/log-metric", rid + R"("key":"latency_ms","value":13.0,"timestamp":1795690821664,"step":2})").status, 200);
  ASSERT_EQ(Api("POST", "runs/log-metric", rid + R"("key":"nan_metric","value":"NaN","timestamp":1})").status, 200);
  ApiReply history = Api("GET", "metrics/get-history?run_id=" + id + "&metric_key=latency_ms");
  EXPECT_EQ(history.body,
            R"({"metrics":[{"key":"latency_ms","value":12.5,"timestamp":1795690821663,"step":1},)"
            R"({"key":"latency_ms","value":13.0,"timestamp":1795690821664,"step":2}]})");
  EXPECT_EQ(Api("GET", "metrics/get-history?run_id=" + id + "&metric_key=unknown").body, "{}");

  ASSERT_EQ(Api("POST", "runs/log-parameter", rid + R"("key":"k","value":"7"})").status, 200);
  ASSERT_EQ(Api("POST", "runs/log-parameter", rid + R"("key":"k","value":"7"})").status, 200);
  ApiReply change = Api("POST", "runs/log-parameter", rid + R"("key":"k","value":"8"})");
  EXPECT_EQ(change.status, 400);
  EXPECT_NE(change.Message().find("Changing param values is not allowed. Param with key='k' was already logged with value='7'"),
            std::string::npos);
  ASSERT_EQ(Api("POST", "runs/set-tag", rid + R"("key":"t","value":"1"})").status, 200);
  ASSERT_EQ(Api("POST", "runs/set-tag", rid + R"("key":"t","value":"2"})").status, 200);  // overwrites
  EXPECT_EQ(Api("POST", "runs/set-tag", rid + R"("key":"","value":"2"})").status, 400);
  ASSERT_EQ(Api("POST", "runs/delete-tag", rid + R"("key":"ab_group"})").status, 200);

  const auto data = Api("GET", "runs/get?run_id=" + id)["run"].as_object().at("data").as_object();
  const auto& metrics = data.at("metrics").as_array();
  ASSERT_EQ(metrics.size(), 2u);  // the latest value per key only
  EXPECT_EQ(metrics[0].as_object().at("value").as_double(), 13.0);
  EXPECT_EQ(S(metrics[1].as_object().at("value")), "NaN");
  EXPECT_EQ(S(data.at("params").as_array()[0].as_object().at("value")), "7");
  for (const auto& t : data.at("tags").as_array()) {
    EXPECT_NE(S(t.as_object().at("key")), "ab_group");
    if (S(t.as_object().at("key")) == "t") { EXPECT_EQ(S(t.as_object().at("value")), "2"); }
  }
}

TEST_F(RegistryConformance, LogBatchPathsAndLimits) {
  const std::string exp = CreateExperiment("batch");
  const std::string id = S(CreateRun(exp, "r")["info"].as_object().at("run_id"));
  ApiReply path = Api("POST", "runs/log-batch", R"({"run_id":")" + id + R"(","metrics":[{"key":"m","value":1}]})");
  EXPECT_EQ(path.status, 400);
  EXPECT_NE(path.Message().find("'metrics[0].timestamp'"), std::string::npos) << path.Message();
  ApiReply tag_path = Api("POST", "runs/log-batch", R"({"run_id":")" + id + R"(","tags":[{"key":"a"},{"value":"b"}]})");
  EXPECT_NE(tag_path.Message().find("'tags[1].key'"), std::string::npos) << tag_path.Message();
  std::string many = R"({"run_id":")" + id + R"(","metrics":[)";
  for (int i = 0; i < 1001; ++i) many += std::string(i ? "," : "") + R"({"key":"m","value":1,"timestamp":1})";
  many += "]}";
  ApiReply too_many = Api("POST", "runs/log-batch", many);
  EXPECT_EQ(too_many.status, 400);
  EXPECT_NE(too_many.Message().find("at most 1000 metrics"), std::string::npos);
  // A refused batch logs nothing.
  EXPECT_EQ(Api("GET", "metrics/get-history?run_id=" + id + "&metric_key=m").body, "{}");
  ApiReply ok = Api("POST", "runs/log-batch",
                    R"({"run_id":")" + id + R"(","metrics":[{"key":"m","value":1,"timestamp":1,"step":0},)"
                    R"({"key":"m","value":2,"timestamp":2,"step":1}],"params":[{"key":"arm","value":"A"}],)"
                    R"("tags":[{"key":"ab_test","value":"x"}]})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.body, "{}");
  ApiReply bad_key = Api("POST", "runs/log-batch", R"({"run_id":")" + id + R"(","params":[{"key":"../etc","value":"A"}]})");
  EXPECT_EQ(bad_key.status, 400);
}

TEST_F(RegistryConformance, LogModelAppendsHistory) {
  const std::string exp = CreateExperiment("lm");
  const std::string id = S(CreateRun(exp, "r")["info"].as_object().at("run_id"));
  const std::string model = json::serialize(json::value(json::serialize(json::object{
      {"artifact_path", "model"}, {"flavors", json::object{{"xgboost", json::object{}}}},
      {"utc_time_created", "2026-11-26 10:58:24.502792"}, {"run_id", id}})));
  ASSERT_EQ(Api("POST", "runs/log-model", R"({"run_id":")" + id + R"(","model_json":)" + model + "}").status, 200);
  ASSERT_EQ(Api("POST", "runs/log-model", R"({"run_id":")" + id + R"(","model_json":)" + model + "}").status, 200);
  EXPECT_EQ(Api("POST", "runs/log-model", R"({"run_id":")" + id + R"(","model_json":"{\"flavors\":{}}"})").status, 400);
  const auto tags = Api("GET", "runs/get?run_id=" + id)["run"].as_object().at("data").as_object().at("tags").as_array();
  bool found = false;
  for (const auto& t : tags) {
    if (S(t.as_object().at("key")) != "mlflow.log-model.history") continue;
    found = true;
    EXPECT_EQ(json::parse(S(t.as_object().at("value"))).as_array().size(), 2u);
  }
  EXPECT_TRUE(found);
}

TEST_F(RegistryConformance, SearchRunsGrammarOrderAndPaging) {
  const std::string exp = CreateExperiment("search");
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    const std::string id = S(CreateRun(exp, "arm-" + std::to_string(i), 1000 + i)["info"].as_object().at("run_id"));
    ids.push_back(id);
    ASSERT_EQ(Api("POST", "runs/log-batch",
                  R"({"run_id":")" + id + R"(","metrics":[{"key":"conversion_rate","value":)" + std::to_string(0.1 * i) +
                      R"(,"timestamp":1}],"params":[{"key":"arm","value":")" + std::string(i % 2 ? "B" : "A") +
                      R"("}],"tags":[{"key":"ab_test","value":"hyatt"}]})")
                  .status,
              200);
  }
  auto names = [&](const std::string& body) {
    ApiReply r = Api("POST", "runs/search", body);
    EXPECT_EQ(r.status, 200) << body << " -> " << r.body;
    std::vector<std::string> out;
    if (r.json.is_object() && r.json.as_object().contains("runs")) {
      for (const auto& run : r["runs"].as_array()) {
        out.push_back(S(run.as_object().at("info").as_object().at("run_name")));
      }
    }
    return out;
  };
  const std::string e = R"("experiment_ids":[")" + exp + R"("])";
  EXPECT_EQ(names("{" + e + "}"), (std::vector<std::string>{"arm-3", "arm-2", "arm-1", "arm-0"}));  // start_time DESC
  EXPECT_EQ(names("{" + e + R"(,"filter":"tags.ab_test = 'hyatt' and params.arm = 'B'","order_by":["metrics.conversion_rate DESC"]})"),
            (std::vector<std::string>{"arm-3", "arm-1"}));
  EXPECT_EQ(names("{" + e + R"(,"filter":"metrics.conversion_rate > 0.15"})"), (std::vector<std::string>{"arm-3", "arm-2"}));
  EXPECT_EQ(names("{" + e + R"(,"filter":"attributes.run_name ILIKE 'ARM-%' AND attributes.start_time >= 1002"})"),
            (std::vector<std::string>{"arm-3", "arm-2"}));
  EXPECT_EQ(names("{" + e + R"x(,"filter":"attributes.run_id IN (')x" + ids[0] + R"x(')"})x"), (std::vector<std::string>{"arm-0"}));
  EXPECT_EQ(names("{" + e + R"(,"filter":"params.missing = 'x'"})"), (std::vector<std::string>{}));
  EXPECT_EQ(names("{" + e + R"(,"order_by":["params.arm ASC", "attributes.start_time ASC"]})"),
            (std::vector<std::string>{"arm-0", "arm-2", "arm-1", "arm-3"}));
  ApiReply page = Api("POST", "runs/search", "{" + e + R"(,"max_results":3})");
  EXPECT_EQ(page["runs"].as_array().size(), 3u);
  EXPECT_EQ(names("{" + e + R"(,"max_results":3,"page_token":")" + S(page["next_page_token"]) + R"("})"),
            (std::vector<std::string>{"arm-0"}));
  EXPECT_EQ(Api("POST", "runs/search", "{" + e + R"(,"max_results":50001})").status, 400);
  EXPECT_EQ(Api("POST", "runs/search", "{" + e + R"(,"order_by":["start_time","start_time DESC"]})").status, 400);
  EXPECT_EQ(Api("POST", "runs/search", "{" + e + R"(,"page_token":"!!"})").status, 400);
}

TEST_F(RegistryConformance, FilterInjectionIsA400NeverAnSqlError) {
  const std::string exp = CreateExperiment("inject");
  CreateRun(exp, "r");
  CreateModelWithVersions("m", 1);
  for (const char* filter : {"name = 'x' OR 1=1", "name = 'x'; DROP TABLE registered_models; --", "name = 'x' OR '1'='1'",
                             "name = ''' OR 1=1 --", "name = 'x\\' OR 1=1", "name = \xE2\x80\x98x\xE2\x80\x99",
                             "tags.`a = 'b` = 'c'", "name LIKE", "(name = 'm')", "name IN ('m')", "1=1"}) {
    ApiReply r = Raw("GET", "/api/2.0/mlflow/registered-models/search?filter=" + [](std::string s) {
      std::string out;
      for (unsigned char c : s) {
        char buf[4];
        std::snprintf(buf, sizeof(buf), "%%%02X", c);
        out += buf;
      }
      return out;
    }(filter));
    EXPECT_TRUE(r.status == 400 || (r.status == 200 && r.body == "{}")) << filter << " -> " << r.status << " " << r.body;
    if (r.status == 400) {
      EXPECT_EQ(r.Code(), "INVALID_PARAMETER_VALUE") << filter;
      EXPECT_EQ(r.Message().find("sqlite"), std::string::npos) << r.Message();
    }
  }
  ApiReply still = Api("GET", "registered-models/search?filter=name%20%3D%20%27m%27");
  EXPECT_EQ(still["registered_models"].as_array().size(), 1u);
  // Quotes and unicode inside a value are data.
  ASSERT_EQ(Api("POST", "registered-models/create", R"({"name":"it's \u00e9t\u00e9"})").status, 200);
  ApiReply quoted = Api("GET", "registered-models/search?filter=name%20%3D%20%27it%27%27s%20%C3%A9t%C3%A9%27");
  ASSERT_EQ(quoted.status, 200) << quoted.body;
  EXPECT_EQ(S(quoted["registered_models"].as_array()[0].as_object().at("name")), "it's \xC3\xA9t\xC3\xA9");
  ApiReply runs = Api("POST", "runs/search", R"({"experiment_ids":[")" + exp + R"("],"filter":"params.a = 'x' OR 1=1"})");
  EXPECT_EQ(runs.status, 400);
  EXPECT_EQ(runs.Message(), "Invalid clause(s) in filter string: 'OR'");
}

TEST_F(RegistryConformance, RunArtifactsListIsRelativeToTheRunRoot) {
  const std::string exp = CreateExperiment("art");
  const std::string id = S(CreateRun(exp, "r")["info"].as_object().at("run_id"));
  const std::string base = "/api/2.0/mlflow-artifacts/artifacts/" + exp + "/" + id + "/artifacts/";
  ASSERT_EQ(Raw("PUT", base + "model/MLmodel", "flavors: {}", "text/plain").status, 200);
  ASSERT_EQ(Raw("PUT", base + "model/model.xgb", "binf", "application/octet-stream").status, 200);
  ApiReply top = Api("GET", "artifacts/list?run_id=" + id);
  EXPECT_EQ(S(top["root_uri"]), "mlflow-artifacts:/" + exp + "/" + id + "/artifacts");
  EXPECT_EQ(json::serialize(top["files"]), R"([{"path":"model","is_dir":true}])");
  ApiReply sub = Api("GET", "artifacts/list?run_id=" + id + "&path=model");
  EXPECT_EQ(json::serialize(sub["files"]),
            R"([{"path":"model/MLmodel","is_dir":false,"file_size":11},{"path":"model/model.xgb","is_dir":false,"file_size":4}])");
}

// ---- §5 artifact proxy ----

TEST_F(RegistryConformance, ArtifactProxyUploadListDownloadDelete) {
  const std::string root = "/api/2.0/mlflow-artifacts/artifacts";
  ASSERT_EQ(Raw("PUT", root + "/1/r/artifacts/notes.txt", "hello", "text/plain").status, 200);
  ASSERT_EQ(Raw("PUT", root + "/1/r/artifacts/sub/data.bin", std::string("\0\1\2", 3), "application/octet-stream").status, 200);
  ApiReply list = Raw("GET", root + "?path=1/r/artifacts");
  EXPECT_EQ(json::serialize(list["files"]),
            R"([{"path":"notes.txt","is_dir":false,"file_size":5},{"path":"sub","is_dir":true}])");
  EXPECT_EQ(Raw("GET", root + "?path=1/none").body, "{}");
  ApiReply file = Raw("GET", root + "/1/r/artifacts/notes.txt");
  EXPECT_EQ(file.status, 200);
  EXPECT_EQ(file.body, "hello");
  EXPECT_EQ(file.headers["content-type"].rfind("text/plain", 0), 0u);
  EXPECT_EQ(file.headers["content-disposition"], "attachment; filename=notes.txt");
  EXPECT_EQ(file.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(Raw("GET", root + "/1/r/artifacts/sub/data.bin").body, std::string("\0\1\2", 3));
  ASSERT_EQ(Raw("DELETE", root + "/1/r/artifacts/notes.txt").status, 200);
  EXPECT_EQ(Raw("GET", root + "/1/r/artifacts/notes.txt").status, 404);
  for (const char* bad : {"/1/../../x", "/%2e%2e/x", "/1/%2E%2E/%2E%2E/x", "//etc/passwd", "/1/./x"}) {
    ApiReply r = Raw("PUT", root + bad, "x", "text/plain");
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(r.Message(), "Invalid path") << bad;
  }
  EXPECT_EQ(Raw("GET", root + "?path=../").status, 400);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x"));
  // Issue 14: '+' in a path is a plus (only a query string's '+' is a space); %2B is one too.
  ASSERT_EQ(Raw("PUT", root + "/1/r/artifacts/a+b.txt", "plus", "text/plain").status, 200);
  EXPECT_EQ(Raw("GET", root + "/1/r/artifacts/a%2Bb.txt").body, "plus");
  EXPECT_EQ(json::serialize(Raw("GET", root + "?path=1/r/artifacts")["files"]).find("a b"), std::string::npos);
  EXPECT_NE(json::serialize(Raw("GET", root + "?path=1/r/artifacts")["files"]).find("\"a+b.txt\""), std::string::npos);
}

// ---- §4 registry ----

TEST_F(RegistryConformance, RegisteredModels) {
  ApiReply created = Api("POST", "registered-models/create", R"({"name":"m","tags":[{"key":"owner","value":"ab"}],"description":"d"})");
  ASSERT_EQ(created.status, 200);
  EXPECT_FALSE(created["registered_model"].as_object().contains("latest_versions"));
  ApiReply dup = Api("POST", "registered-models/create", R"({"name":"m"})");
  EXPECT_EQ(dup.status, 400);
  EXPECT_EQ(dup.Code(), "RESOURCE_ALREADY_EXISTS");
  ApiReply unknown = Api("GET", "registered-models/get?name=x");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.Message(), "Registered Model with name=x not found");
  ASSERT_EQ(Api("PATCH", "registered-models/update", R"({"name":"m","description":"new"})").status, 200);
  ASSERT_EQ(Api("POST", "registered-models/set-tag", R"({"name":"m","key":"k","value":"v"})").status, 200);
  ASSERT_EQ(Api("DELETE", "registered-models/delete-tag", R"({"name":"m","key":"owner"})").status, 200);
  ASSERT_EQ(Api("POST", "registered-models/rename", R"({"name":"m","new_name":"m2"})").status, 200);
  const auto m = Api("GET", "registered-models/get?name=m2")["registered_model"].as_object();
  EXPECT_EQ(S(m.at("description")), "new");
  EXPECT_EQ(json::serialize(m.at("tags")), R"([{"key":"k","value":"v"}])");
  CreateModelWithVersions("other", 0);
  ApiReply search = Api("GET", "registered-models/search?filter=name%20LIKE%20%27m%25%27");
  ASSERT_EQ(search["registered_models"].as_array().size(), 1u);
  ApiReply by_tag = Api("GET", "registered-models/search?filter=tags.k%20%3D%20%27v%27");
  ASSERT_EQ(by_tag["registered_models"].as_array().size(), 1u);
  ApiReply all = Api("GET", "registered-models/search?max_results=1");
  EXPECT_EQ(S(all["registered_models"].as_array()[0].as_object().at("name")), "m2");  // name ASC
  EXPECT_EQ(S(all["next_page_token"]), "eyJvZmZzZXQiOiAxfQ==");
  EXPECT_EQ(Api("GET", "registered-models/search?max_results=1001").status, 400);
  ASSERT_EQ(Api("DELETE", "registered-models/delete", R"({"name":"m2"})").status, 200);
  EXPECT_EQ(Api("GET", "registered-models/get?name=m2").status, 404);
  EXPECT_EQ(Api("DELETE", "registered-models/delete", R"({"name":"m2"})").status, 404);
}

TEST_F(RegistryConformance, ModelVersionsStagesAndLatest) {
  CreateModelWithVersions("m", 0);
  ApiReply v1 = Api("POST", "model-versions/create",
                    R"({"name":"m","source":"runs:/f81b/model","description":"champion","tags":[{"key":"k","value":"v"}]})");
  ASSERT_EQ(v1.status, 200) << v1.body;
  const auto& mv = v1["model_version"].as_object();
  EXPECT_EQ(S(mv.at("version")), "1");
  EXPECT_EQ(S(mv.at("current_stage")), "None");
  EXPECT_EQ(S(mv.at("status")), "READY");
  EXPECT_EQ(S(mv.at("run_link")), "");
  EXPECT_FALSE(mv.contains("user_id"));
  ASSERT_EQ(Api("POST", "model-versions/create", R"({"name":"m","source":"runs:/f81b/model"})").status, 200);
  EXPECT_EQ(Api("POST", "model-versions/create", R"({"name":"nope","source":"s"})").status, 404);
  EXPECT_EQ(Api("POST", "model-versions/create", R"({"name":"m","source":"runs:/x/../../etc"})").status, 400);
  EXPECT_EQ(Api("POST", "model-versions/create", R"({"name":"m","source":"/tmp/model"})").status, 400);
  ApiReply from_models = Api("POST", "model-versions/create", R"({"name":"m","source":"models:/m/1"})");
  EXPECT_EQ(S(from_models["model_version"].as_object().at("source")), "runs:/f81b/model");
  ASSERT_EQ(Api("POST", "model-versions/create", R"({"name":"m","source":"runs:/f81b/model"})").status, 200);  // 4

  EXPECT_EQ(Api("GET", "model-versions/get?name=m&version=abc").Message(), "Model version must be an integer, got 'abc'");
  EXPECT_EQ(Api("GET", "model-versions/get?name=m&version=abc").status, 400);
  ApiReply missing = Api("GET", "model-versions/get?name=m&version=99");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.Message(), "Model Version (name=m, version=99) not found");
  EXPECT_EQ(S(Api("GET", "model-versions/get-download-uri?name=m&version=1")["artifact_uri"]), "runs:/f81b/model");
  ASSERT_EQ(Api("PATCH", "model-versions/update", R"({"name":"m","version":"2","description":"challenger"})").status, 200);

  ApiReply staged = Api("POST", "model-versions/transition-stage", R"({"name":"m","version":"1","stage":"staging"})");
  EXPECT_EQ(S(staged["model_version"].as_object().at("current_stage")), "Staging");
  ASSERT_EQ(Api("POST", "model-versions/transition-stage", R"({"name":"m","version":"3","stage":"Production"})").status, 200);
  ApiReply prod = Api("POST", "model-versions/transition-stage",
                      R"({"name":"m","version":"2","stage":"production","archive_existing_versions":true})");
  ASSERT_EQ(prod.status, 200);
  EXPECT_EQ(S(prod["model_version"].as_object().at("current_stage")), "Production");
  EXPECT_EQ(S(prod["model_version"].as_object().at("description")), "challenger");
  EXPECT_EQ(S(Api("GET", "model-versions/get?name=m&version=3")["model_version"].as_object().at("current_stage")), "Archived");
  EXPECT_EQ(S(Api("GET", "model-versions/get?name=m&version=1")["model_version"].as_object().at("current_stage")), "Staging");
  ApiReply bad = Api("POST", "model-versions/transition-stage", R"({"name":"m","version":"1","stage":"Canary"})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.Message(), "Invalid Model Version stage: Canary. Value must be one of None, Staging, Production, Archived.");
  ApiReply archive_none = Api("POST", "model-versions/transition-stage",
                              R"({"name":"m","version":"1","stage":"Archived","archive_existing_versions":true})");
  EXPECT_EQ(archive_none.status, 500);
  EXPECT_EQ(archive_none.Code(), "INTERNAL_ERROR");

  ApiReply latest = Api("POST", "registered-models/get-latest-versions", R"({"name":"m"})");
  std::vector<std::string> got;
  for (const auto& v : latest["model_versions"].as_array()) {
    got.push_back(S(v.as_object().at("version")) + ":" + S(v.as_object().at("current_stage")));
  }
  EXPECT_EQ(got, (std::vector<std::string>{"1:Staging", "2:Production", "3:Archived", "4:None"}));
  ApiReply prod_only = Api("GET", "registered-models/get-latest-versions?name=m&stages=Production&stages=Staging");
  EXPECT_EQ(prod_only["model_versions"].as_array().size(), 2u);
  const auto model = Api("GET", "registered-models/get?name=m")["registered_model"].as_object();
  EXPECT_EQ(model.at("latest_versions").as_array().size(), 4u);

  ASSERT_EQ(Api("DELETE", "model-versions/delete", R"({"name":"m","version":"4"})").status, 200);
  EXPECT_EQ(Api("GET", "model-versions/get?name=m&version=4").status, 404);
  EXPECT_EQ(Api("DELETE", "model-versions/delete", R"({"name":"m","version":"4"})").status, 404);
  ApiReply v5 = Api("POST", "model-versions/create", R"({"name":"m","source":"runs:/f81b/model"})");
  EXPECT_EQ(S(v5["model_version"].as_object().at("version")), "5");  // never reused

  ASSERT_EQ(Api("POST", "model-versions/set-tag", R"({"name":"m","version":"2","key":"ab_test_candidate","value":"true"})").status, 200);
  EXPECT_EQ(Api("POST", "model-versions/set-tag", R"({"name":"m","version":"99","key":"a","value":"b"})").status, 404);
  ASSERT_EQ(Api("DELETE", "model-versions/delete-tag", R"({"name":"m","version":"2","key":"nope"})").status, 200);
  EXPECT_EQ(json::serialize(Api("GET", "model-versions/get?name=m&version=2")["model_version"].as_object().at("tags")),
            R"([{"key":"ab_test_candidate","value":"true"}])");
}

TEST_F(RegistryConformance, Aliases) {
  CreateModelWithVersions("m", 2);
  ASSERT_EQ(Api("POST", "registered-models/alias", R"({"name":"m","alias":"champion","version":"2"})").status, 200);
  ASSERT_EQ(Api("POST", "registered-models/alias", R"({"name":"m","alias":"challenger","version":"1"})").status, 200);
  ASSERT_EQ(Api("POST", "registered-models/alias", R"({"name":"m","alias":"best","version":"2"})").status, 200);
  ApiReply got = Api("GET", "registered-models/alias?name=m&alias=champion");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(S(got["model_version"].as_object().at("version")), "2");
  EXPECT_EQ(json::serialize(got["model_version"].as_object().at("aliases")), R"(["best","champion"])");
  ApiReply unknown = Api("GET", "registered-models/alias?name=m&alias=nope");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.Code(), "INVALID_PARAMETER_VALUE");
  EXPECT_EQ(unknown.Message(), "Registered model alias nope not found.");
  for (const char* bad : {"latest", "LATEST", "v1", "V12", "has space", "semi;colon"}) {
    EXPECT_EQ(Api("POST", "registered-models/alias", std::string(R"({"name":"m","alias":")") + bad + R"(","version":"1"})").status, 400)
        << bad;
  }
  EXPECT_EQ(Api("POST", "registered-models/alias", R"({"name":"m","alias":"x","version":"9"})").status, 404);
  // Moving an alias is a plain set.
  ASSERT_EQ(Api("POST", "registered-models/alias", R"({"name":"m","alias":"champion","version":"1"})").status, 200);
  const auto model = Api("GET", "registered-models/get?name=m")["registered_model"].as_object();
  EXPECT_EQ(json::serialize(model.at("aliases")),
            R"([{"alias":"best","version":"2"},{"alias":"challenger","version":"1"},{"alias":"champion","version":"1"}])");
  ASSERT_EQ(Api("DELETE", "registered-models/alias", R"({"name":"m","alias":"challenger"})").status, 200);
  ASSERT_EQ(Api("DELETE", "registered-models/alias", R"({"name":"m","alias":"challenger"})").status, 200);  // idempotent
}

TEST_F(RegistryConformance, SearchModelVersions) {
  const std::string exp = CreateExperiment("mv");
  const std::string run = S(CreateRun(exp, "r")["info"].as_object().at("run_id"));
  CreateModelWithVersions("a", 2);
  ASSERT_EQ(Api("POST", "model-versions/create", R"({"name":"a","source":"runs:/)" + run + R"(/model","run_id":")" + run + R"("})").status, 200);
  CreateModelWithVersions("b", 1);
  auto versions = [&](const std::string& query) {
    ApiReply r = Api("GET", "model-versions/search?" + query);
    EXPECT_EQ(r.status, 200) << query << " -> " << r.body;
    std::vector<std::string> out;
    if (r.json.is_object() && r.json.as_object().contains("model_versions")) {
      for (const auto& v : r["model_versions"].as_array()) {
        out.push_back(S(v.as_object().at("name")) + S(v.as_object().at("version")));
      }
    }
    return out;
  };
  EXPECT_EQ(versions("filter=run_id%20IN%20(%27" + run + "%27)"), (std::vector<std::string>{"a3"}));
  EXPECT_EQ(versions("filter=name%3D%27a%27%20AND%20version_number%20%3E%3D%202&order_by=version_number%20ASC"),
            (std::vector<std::string>{"a2", "a3"}));
  EXPECT_EQ(versions("filter=source_path%20LIKE%20%27runs%3A%2Fabc%25%27&order_by=name%20DESC&order_by=version_number%20DESC"),
            (std::vector<std::string>{"b1", "a2", "a1"}));
  ApiReply paged = Api("GET", "model-versions/search?max_results=1&order_by=name&order_by=version_number");
  EXPECT_EQ(S(paged["next_page_token"]), "eyJvZmZzZXQiOiAxfQ==");
  ApiReply stage = Api("GET", "model-versions/search?filter=current_stage%3D%27Production%27");
  EXPECT_EQ(stage.status, 400);
  EXPECT_EQ(stage.Message(),
            "Invalid attribute key 'current_stage' specified. Valid keys are '{'source_path', 'run_id', 'name', 'version_number'}'");
  EXPECT_EQ(Api("GET", "model-versions/search?max_results=200001").status, 400);
}

// ---- server behaviour ----

TEST_F(RegistryConformance, StatePersistsAcrossRestarts) {
  CreateModelWithVersions("m", 2);
  ASSERT_EQ(Api("POST", "registered-models/alias", R"({"name":"m","alias":"champion","version":"2"})").status, 200);
  const std::string exp = CreateExperiment("persist");
  Stop();
  Start();
  EXPECT_EQ(S(Api("GET", "registered-models/alias?name=m&alias=champion")["model_version"].as_object().at("version")), "2");
  EXPECT_EQ(S(Api("GET", "experiments/get-by-name?experiment_name=persist")["experiment"].as_object().at("experiment_id")), exp);
}

TEST_F(RegistryConformance, MutationsNeedCredentialsWhenConfigured) {
  Stop();
  Start({}, {"ABGATE_REGISTRY_USERNAME=ab", "ABGATE_REGISTRY_PASSWORD=secret", "ABGATE_REGISTRY_TOKEN=tok"});
  ApiReply anonymous = Api("POST", "registered-models/create", R"({"name":"m"})");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.Code(), "UNAUTHENTICATED");
  EXPECT_EQ(Api("POST", "registered-models/create", R"({"name":"m"})", "application/json",
                "Authorization: Bearer wrong\r\n").status,
            401);
  EXPECT_EQ(Api("POST", "registered-models/create", R"({"name":"m"})", "application/json", "Authorization: Bearer tok\r\n").status,
            200);
  // "ab:secret" in base64.
  EXPECT_EQ(Api("POST", "registered-models/create", R"({"name":"n"})", "application/json",
                "Authorization: Basic YWI6c2VjcmV0\r\n").status,
            200);
  EXPECT_EQ(Raw("PUT", "/api/2.0/mlflow-artifacts/artifacts/x/y", "z", "text/plain").status, 401);
  EXPECT_EQ(Api("GET", "registered-models/get?name=m").status, 200);  // reads stay open
}

TEST_F(RegistryConformance, OversizedBodiesAre413AndTheServerStaysUp) {
  Stop();
  Start({"--max-artifact-mb", "1"});
  ApiReply big = Raw("PUT", "/api/2.0/mlflow-artifacts/artifacts/a/b", std::string(2 << 20, 'x'), "application/octet-stream");
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(Api("GET", "experiments/get?experiment_id=0").status, 200);
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

// Malformed input on every route: random bytes, wrong JSON types, absurd numbers, odd query
// strings. Each must get an HTTP answer (never a dropped connection), never a 5xx except
// MLflow's own 500 for archiving into a non-active stage, and the server must keep serving.
TEST_F(RegistryConformance, GarbageOnEveryRouteGetsAnAnswer) {
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"POST", "experiments/create"}, {"GET", "experiments/get"}, {"GET", "experiments/get-by-name"},
      {"POST", "experiments/search"}, {"POST", "experiments/delete"}, {"POST", "experiments/update"},
      {"POST", "experiments/set-experiment-tag"}, {"POST", "runs/create"}, {"GET", "runs/get"},
      {"POST", "runs/update"}, {"POST", "runs/log-metric"}, {"POST", "runs/log-parameter"},
      {"POST", "runs/set-tag"}, {"POST", "runs/delete-tag"}, {"POST", "runs/log-batch"},
      {"POST", "runs/log-model"}, {"POST", "runs/search"}, {"GET", "metrics/get-history"},
      {"GET", "artifacts/list"}, {"POST", "registered-models/create"}, {"GET", "registered-models/get"},
      {"POST", "registered-models/rename"}, {"PATCH", "registered-models/update"},
      {"DELETE", "registered-models/delete"}, {"GET", "registered-models/search"},
      {"POST", "registered-models/set-tag"}, {"DELETE", "registered-models/delete-tag"},
      {"POST", "registered-models/get-latest-versions"}, {"POST", "registered-models/alias"},
      {"DELETE", "registered-models/alias"}, {"GET", "registered-models/alias"}, {"POST", "model-versions/create"},
      {"GET", "model-versions/get"}, {"PATCH", "model-versions/update"}, {"POST", "model-versions/transition-stage"},
      {"DELETE", "model-versions/delete"}, {"GET", "model-versions/search"}, {"GET", "model-versions/get-download-uri"},
      {"POST", "model-versions/set-tag"}, {"DELETE", "model-versions/delete-tag"}};
  CreateModelWithVersions("m", 1);
  const std::vector<std::string> bodies = {
      "", "null", "[]", "\"x\"", "{", "{\"name\": 1e999}", "{\"name\": {\"a\": [1,2]}, \"version\": -1}",
      "{\"name\": \"m\", \"version\": \"99999999999999999999999\"}", "{\"name\": \"m\", \"version\": \"1\", \"stage\": []}",
      "{\"name\": \"m\", \"alias\": \"\\u0000\", \"version\": \"1\"}", "{\"experiment_id\": -5, \"run_id\": 7}",
      "{\"run_id\": \"\", \"metrics\": [null, 1, \"x\"], \"params\": {}, \"tags\": [[]]}",
      "{\"max_results\": -1, \"page_token\": \"%%%\", \"order_by\": [1], \"filter\": \"((\"}",
      std::string(3000, '{'), "{\"name\": \"" + std::string(100000, 'a') + "\"}"};
  const std::vector<std::string> queries = {"", "?name", "?name=&version=", "?name=m&version=1%", "?%zz=1",
                                            "?max_results=abc&filter=%27", "?name=m&alias=%00"};
  common::Xoshiro256 rng(7);
  int answered = 0;
  for (const auto& [method, path] : routes) {
    for (const auto& body : bodies) {
      const std::string target = method == "GET" ? path + queries[rng() % queries.size()] : path;
      ApiReply r = Api(method, target, body);
      ASSERT_NE(r.status, 0) << method << " " << path << " with " << body.substr(0, 60) << ": no answer";
      const bool known_500 = path == "model-versions/transition-stage" && r.status == 500;
      EXPECT_TRUE(r.status < 500 || known_500) << method << " " << target << " " << body.substr(0, 60) << " -> "
                                               << r.status << " " << r.body.substr(0, 200);
      ++answered;
    }
  }
  // Random bytes with a JSON content type.
  for (int i = 0; i < 200; ++i) {
    std::string junk(rng() % 300, '\0');
    for (auto& c : junk) c = static_cast<char>(rng() & 0xFF);
    const auto& [method, path] = routes[rng() % routes.size()];
    ApiReply r = Api(method, path, junk);
    ASSERT_NE(r.status, 0);
    EXPECT_LT(r.status, 500) << path;
  }
  EXPECT_GT(answered, 500);
  // Still serving (some bodies above were valid deletions, so "m" may be gone legitimately).
  EXPECT_EQ(Api("GET", "experiments/get?experiment_id=0").status, 200);
  EXPECT_EQ(Api("POST", "registered-models/create", R"({"name":"after-garbage"})").status, 200);
}

}  // namespace
}  // namespace abgate::testing
