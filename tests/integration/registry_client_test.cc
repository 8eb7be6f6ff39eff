// The registry client (src/registry/mlflow_client) against a real `abgate registry` process:
// model URIs, downloads through the artifact proxy into the cache, registry changes, tracking
// in batches, error mapping and retries.

#include <fstream>
#include <sstream>
#include <thread>

#include "registry/mlflow_client.h"
#include "registry_fixture.h"
#include "testing/tls_proxy.h"

namespace abgate::testing {
namespace {

namespace json = boost::json;
using registry::MlflowClient;
using registry::MlflowClientOptions;

class RegistryClientTest : public RegistryFixture {
 protected:
  std::unique_ptr<MlflowClient> Client(int max_retries = 2) {
    MlflowClientOptions o;
    o.tracking_uri = uri();
    o.max_retries = max_retries;
    o.initial_backoff_ms = 20;
    auto c = MlflowClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  // Logs a two-file "model" to a run through the proxy and registers it: the flow `abgate train`
  // and mlflow.<flavor>.log_model(registered_model_name=...) follow.
  registry::ModelVersion RegisterModel(MlflowClient& c, const std::string& name, const std::string& payload,
                                       bool runs_uri) {
    auto exp = c.GetOrCreateExperiment("training");
    EXPECT_TRUE(exp.ok()) << exp.status();
    auto run = c.CreateRun(*exp, "train", {{"purpose", "test"}});
    EXPECT_TRUE(run.ok()) << run.status();
    EXPECT_TRUE(c.UploadArtifact(run->artifact_uri, "model/MLmodel", "flavors:\n  xgboost: {data: model.xgb}\n").ok());
    EXPECT_TRUE(c.UploadArtifact(run->artifact_uri, "model/sub dir/model.xgb", payload).ok());
    EXPECT_TRUE(c.EnsureRegisteredModel(name).ok());
    const std::string source = runs_uri ? "runs:/" + run->run_id + "/model" : run->artifact_uri + "/model";
    auto v = c.CreateModelVersion(name, source, run->run_id, {{"ab_test_candidate", "true"}});
    EXPECT_TRUE(v.ok()) << v.status();
    return *v;
  }

  static std::string ReadFile(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
};

TEST(ModelUri, ParsesEveryForm) {
  auto v = registry::ParseModelUri("models:/hyatt_booking_model/7");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->name, "hyatt_booking_model");
  EXPECT_EQ(v->version, "7");
  auto a = registry::ParseModelUri("models:/hyatt_booking_model@champion");
  EXPECT_EQ(a->alias, "champion");
  auto s = registry::ParseModelUri("models:/hyatt_booking_model/Production");
  EXPECT_EQ(s->stage, "Production");
  for (const char* bad : {"runs:/x/model", "models:/", "models:/name", "models:/@x", "models:/n@"}) {
    EXPECT_FALSE(registry::ParseModelUri(bad).ok()) << bad;
  }
}

TEST_F(RegistryClientTest, ResolvesVersionsAliasesAndStages) {
  auto c = Client();
  RegisterModel(*c, "hyatt_booking_model", "v1", false);
  RegisterModel(*c, "hyatt_booking_model", "v2", true);
  ASSERT_TRUE(c->TransitionStage("hyatt_booking_model", "1", "Production", true).ok());
  ASSERT_TRUE(c->SetAlias("hyatt_booking_model", "champion", "1").ok());
  ASSERT_TRUE(c->SetAlias("hyatt_booking_model", "challenger", "2").ok());
  EXPECT_EQ(c->ResolveModelUri("models:/hyatt_booking_model/2")->version, 2);
  EXPECT_EQ(c->ResolveModelUri("models:/hyatt_booking_model@champion")->version, 1);
  EXPECT_EQ(c->ResolveModelUri("models:/hyatt_booking_model/Production")->version, 1);
  EXPECT_EQ(c->ResolveModelUri("models:/hyatt_booking_model/latest")->version, 2);
  EXPECT_EQ(c->ResolveModelUri("models:/hyatt_booking_model/Staging").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c->ResolveModelUri("models:/hyatt_booking_model/99").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c->ResolveModelUri("models:/hyatt_booking_model@nope").status().code(), absl::StatusCode::kInvalidArgument);
  auto candidates = c->SearchModelVersions("name = 'hyatt_booking_model' AND tags.ab_test_candidate = 'true'");
  ASSERT_TRUE(candidates.ok()) << candidates.status();
  EXPECT_EQ(candidates->size(), 2u);
  ASSERT_TRUE(c->DeleteModelVersionTag("hyatt_booking_model", "1", "ab_test_candidate").ok());
  ASSERT_TRUE(c->SetModelVersionTag("hyatt_booking_model", "2", "ab_test.p_value", "0.01").ok());
  EXPECT_EQ(c->SearchModelVersions("tags.ab_test_candidate = 'true'")->size(), 1u);
  ASSERT_TRUE(c->DeleteAlias("hyatt_booking_model", "challenger").ok());
  EXPECT_EQ(c->GetModelVersionByAlias("hyatt_booking_model", "challenger").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RegistryClientTest, DownloadsRunsAndProxySourcesIntoTheCache) {
  auto c = Client();
  const std::string payload(300000, 'b');  // larger than one read buffer
  RegisterModel(*c, "m", payload, true);        // runs:/ source
  RegisterModel(*c, "m", "second", false);      // mlflow-artifacts:/ source
  const auto cache = dir_ / "cache";
  auto v1 = c->DownloadModelVersion("m", "1", cache);
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(*v1, cache / "m" / "1");
  EXPECT_EQ(ReadFile(*v1 / "sub dir" / "model.xgb"), payload);
  EXPECT_NE(ReadFile(*v1 / "MLmodel").find("xgboost"), std::string::npos);
  auto v2 = c->DownloadModelVersion("m", "2", cache);
  ASSERT_TRUE(v2.ok()) << v2.status();
  EXPECT_EQ(ReadFile(*v2 / "sub dir" / "model.xgb"), "second");
  // A local folder source works too.
  const auto local = dir_ / "local-model";
  std::filesystem::create_directories(local);
  std::ofstream(local / "MLmodel") << "flavors: {}\n";
  ASSERT_TRUE(c->DownloadArtifacts(local.string(), dir_ / "copy").ok());
  EXPECT_TRUE(std::filesystem::exists(dir_ / "copy" / "MLmodel"));
  EXPECT_EQ(c->DownloadArtifacts("s3://bucket/model", dir_ / "s3").code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(c->DownloadModelVersion("m", "9", cache).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RegistryClientTest, DownloadsModelFilesLargerThanTheGatewaysReplyCap) {
  auto c = Client();
  const std::string big(70u << 20, 'x');  // past the 64 MB cap the gateway keeps for model replies
  RegisterModel(*c, "big", big, false);
  auto folder = c->DownloadModelVersion("big", "1", dir_ / "cache");
  ASSERT_TRUE(folder.ok()) << folder.status();
  EXPECT_EQ(std::filesystem::file_size(*folder / "sub dir" / "model.xgb"), big.size());
}

TEST_F(RegistryClientTest, ConcurrentDownloadsShareOneCompleteFolder) {
  auto c = Client();
  RegisterModel(*c, "m", std::string(200000, 'z'), false);
  const auto cache = dir_ / "cache";
  std::vector<std::thread> threads;
  std::vector<absl::StatusOr<std::filesystem::path>> results(6, absl::UnknownError("not run"));
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] { results[i] = c->DownloadModelVersion("m", "1", cache); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, cache / "m" / "1");
  }
  EXPECT_EQ(ReadFile(cache / "m" / "1" / "sub dir" / "model.xgb").size(), 200000u);
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(cache / "m")) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1);  // no temporary folders left behind
}

TEST_F(RegistryClientTest, TrackingInBatchesAndSearch) {
  auto c = Client();
  auto exp = c->GetOrCreateExperiment("hyatt_booking_ab");
  ASSERT_TRUE(exp.ok());
  EXPECT_EQ(*c->GetOrCreateExperiment("hyatt_booking_ab"), *exp);
  auto run = c->CreateRun(*exp, "arm-B", {{"ab_test", "hyatt_booking_ab"}});
  ASSERT_TRUE(run.ok());
  std::vector<registry::Metric> metrics;
  for (int i = 0; i < 2500; ++i) metrics.push_back({"units", double(i), 1795690821663 + i, i});
  metrics.push_back({"auc", std::nan(""), 1, 0});
  registry::TagMap params;
  for (int i = 0; i < 150; ++i) params["p" + std::to_string(i)] = "v";
  ASSERT_TRUE(c->LogBatch(run->run_id, metrics, params, {{"arm", "B"}}).ok());
  auto history = c->Call("GET", "metrics/get-history", {{"run_id", run->run_id}, {"metric_key", "units"}});
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->at("metrics").as_array().size(), 2500u);
  ASSERT_TRUE(c->SetTerminated(run->run_id, "FINISHED").ok());
  auto found = c->SearchRuns({*exp}, "tags.ab_test = 'hyatt_booking_ab'");
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ(found->at(0).at("info").as_object().at("status").as_string(), "FINISHED");
  EXPECT_EQ(found->at(0).at("data").as_object().at("params").as_array().size(), 150u);
}

TEST_F(RegistryClientTest, ErrorsCarryMlflowCodes) {
  auto c = Client();
  auto missing = c->GetModelVersion("nope", "1");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("RESOURCE_DOES_NOT_EXIST"), std::string::npos);
  EXPECT_EQ(c->Call("POST", "experiments/create", {{"name", "x"}}).status().code(), absl::StatusCode::kOk);
  EXPECT_EQ(c->Call("POST", "experiments/create", {{"name", "x"}}).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(c->Call("GET", "model-versions/search", {{"filter", "name = 'x' OR 1=1"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(MlflowClient::Create(registry::MlflowClientOptions::ForUri("ftp://x")).ok());
  EXPECT_FALSE(MlflowClient::Create(registry::MlflowClientOptions::ForUri("https://")).ok());  // no host
}

TEST_F(RegistryClientTest, ServerErrorsAreRetriedThenReported) {
  // MLflow answers this request with 500 INTERNAL_ERROR (MLFLOW.md §4); the client retries 5xx
  // like MLflow's Python client, then reports the last error with its code.
  auto c = Client(/*max_retries=*/2);
  ASSERT_TRUE(c->EnsureRegisteredModel("m").ok());
  ASSERT_TRUE(c->CreateModelVersion("m", "runs:/x/model", "", {}).ok());
  const auto start = std::chrono::steady_clock::now();
  auto r = c->TransitionStage("m", "1", "Archived", true);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("INTERNAL_ERROR"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("after 2 retries"), std::string::npos) << r.status();
  EXPECT_GE(took, std::chrono::milliseconds(20 + 40));  // two backoffs: 20 ms, then 40 ms
}

TEST_F(RegistryClientTest, CredentialsFromOptions) {
  Stop();
  Start({}, {"ABGATE_REGISTRY_TOKEN=tok"});
  auto anonymous = Client();
  EXPECT_EQ(anonymous->EnsureRegisteredModel("m").code(), absl::StatusCode::kUnauthenticated);
  MlflowClientOptions o;
  o.tracking_uri = uri();
  o.token = "tok";
  auto c = MlflowClient::Create(o);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)->EnsureRegisteredModel("m").ok());
}

TEST_F(RegistryClientTest, RetriesUntilTheServerIsUp) {
  // A port nobody listens on yet: the client retries with backoff while the registry starts.
  Stop();
  const int port = FreeLoopbackPort();
  MlflowClientOptions o;
  o.tracking_uri = "http://127.0.0.1:" + std::to_string(port);
  o.max_retries = 8;
  o.initial_backoff_ms = 50;
  auto c = MlflowClient::Create(o);
  ASSERT_TRUE(c.ok());
  absl::Status result = absl::UnknownError("not run");
  std::thread caller([&] { result = (*c)->EnsureRegisteredModel("late"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Start({"--port", std::to_string(port)});
  caller.join();
  EXPECT_TRUE(result.ok()) << result;

  MlflowClientOptions down;
  down.tracking_uri = "http://127.0.0.1:1";
  down.max_retries = 2;
  down.initial_backoff_ms = 10;
  auto d = MlflowClient::Create(down);
  auto r = (*d)->GetModelVersion("m", "1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("after 2 retries"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace abgate::testing

namespace abgate::testing {
namespace {

// https: the registry behind nginx terminating TLS with a certificate signed by a test CA, as
// a real MLflow server behind a load balancer is. MLflow's own settings pick the CA or turn
// checking off.
TEST_F(RegistryClientTest, HttpsThroughATlsProxyWithMlflowsCertificateSettings) {
  const std::string d = dir_.string();
  TlsProxy proxy(d, port_);
  ASSERT_TRUE(proxy.ok()) << proxy.error();
  const std::string https = "https://127.0.0.1:" + std::to_string(proxy.port());

  MlflowClientOptions trusted;
  trusted.tracking_uri = https;
  trusted.tls_ca_file = proxy.ca_file();
  trusted.max_retries = 0;
  auto c = MlflowClient::Create(trusted);
  ASSERT_TRUE(c.ok()) << c.status();
  for (int i = 0; i < 3; ++i) {  // the kept-alive TLS connection is reused
    ASSERT_TRUE((*c)->EnsureRegisteredModel("over-tls").ok());
  }
  auto created = (*c)->Call("POST", "experiments/create", {{"name", "tls"}});
  ASSERT_TRUE(created.ok()) << created.status();
  auto got = (*c)->Call("GET", "experiments/get-by-name", {{"experiment_name", "tls"}});
  ASSERT_TRUE(got.ok()) << got.status();
  // The call really went through the registry behind the proxy.
  EXPECT_EQ(Api("GET", "registered-models/get?name=over-tls").status, 200);

  // Not trusted: the handshake fails and says why.
  MlflowClientOptions untrusted = trusted;
  untrusted.tls_ca_file.clear();
  auto u = MlflowClient::Create(untrusted);
  ASSERT_TRUE(u.ok());
  auto refused = (*u)->EnsureRegisteredModel("nope");
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_NE(refused.message().find("certificate verify failed"), std::string::npos) << refused;

  // MLflow's environment variables do the same as the options.
  ::setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", proxy.ca_file().c_str(), 1);
  auto by_env = MlflowClient::Create(untrusted);
  ::unsetenv("MLFLOW_TRACKING_SERVER_CERT_PATH");
  ASSERT_TRUE(by_env.ok());
  EXPECT_TRUE((*by_env)->EnsureRegisteredModel("by-env").ok());
  ::setenv("MLFLOW_TRACKING_INSECURE_TLS", "true", 1);
  auto insecure = MlflowClient::Create(untrusted);
  ::unsetenv("MLFLOW_TRACKING_INSECURE_TLS");
  ASSERT_TRUE(insecure.ok());
  EXPECT_TRUE((*insecure)->EnsureRegisteredModel("insecure").ok());
  // A CA file that is not there is a clear error, not a hang.
  MlflowClientOptions missing = trusted;
  missing.tls_ca_file = d + "/no-such-ca.pem";
  auto m = MlflowClient::Create(missing);
  ASSERT_TRUE(m.ok());
  auto no_ca = (*m)->EnsureRegisteredModel("x");
  EXPECT_EQ(no_ca.code(), absl::StatusCode::kFailedPrecondition) << no_ca;
}

}  // namespace
}  // namespace abgate::testing
