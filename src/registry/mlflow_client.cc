#include "registry/mlflow_client.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

#include "common/base64.h"
#include "common/random.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "http/blocking_client.h"
#include "registry/artifact_store.h"

namespace abgate::registry {
namespace json = boost::json;
namespace fs = std::filesystem;
namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string QueryEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Path segments are escaped one by one, keeping the slashes.
std::string PathEscape(std::string_view path) {
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (start > 0) out += '/';
    out += QueryEscape(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string ScalarText(const json::value& v) {
  if (v.is_string()) return std::string(v.as_string());
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  return config::ToJson(v);
}

absl::Status StatusFromMlflow(int http_status, std::string_view body) {
  std::string code = "INTERNAL_ERROR";
  std::string message(body.substr(0, 500));
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (auto* c = v.as_object().if_contains("error_code"); c && c->is_string()) code = std::string(c->as_string());
    if (auto* m = v.as_object().if_contains("message"); m && m->is_string()) message = std::string(m->as_string());
  } else if (http_status == 404) {
    code = "ENDPOINT_NOT_FOUND";
  }
  const std::string text = StrCat("MLflow ", code, " (HTTP ", http_status, "): ", message);
  if (code == "RESOURCE_DOES_NOT_EXIST" || code == "NOT_FOUND" || code == "ENDPOINT_NOT_FOUND") {
    return absl::NotFoundError(text);
  }
  if (code == "RESOURCE_ALREADY_EXISTS" || code == "ALREADY_EXISTS") return absl::AlreadyExistsError(text);
  if (code == "INVALID_PARAMETER_VALUE" || code == "BAD_REQUEST" || code == "MALFORMED_REQUEST") {
    return absl::InvalidArgumentError(text);
  }
  if (http_status == 401 || code == "UNAUTHENTICATED") return absl::UnauthenticatedError(text);
  if (http_status == 403 || code == "PERMISSION_DENIED") return absl::PermissionDeniedError(text);
  if (http_status == 429) return absl::ResourceExhaustedError(text);
  if (http_status == 501) return absl::UnimplementedError(text);
  if (http_status >= 500) return absl::UnavailableError(text);
  return absl::InvalidArgumentError(text);
}

bool Retryable(int http_status) {
  return http_status == 429 || http_status == 500 || http_status == 502 || http_status == 503 || http_status == 504;
}

std::string StringField(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t IntField(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (!v) return 0;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_string()) return std::atoll(std::string(v->as_string()).c_str());
  return 0;
}

}  // namespace

ModelVersion ModelVersionFromJson(const json::object& o) {
  ModelVersion v;
  v.name = StringField(o, "name");
  v.version = IntField(o, "version");
  v.creation_timestamp = IntField(o, "creation_timestamp");
  v.last_updated_timestamp = IntField(o, "last_updated_timestamp");
  if (o.contains("description")) v.description = StringField(o, "description");
  v.user_id = StringField(o, "user_id");
  v.current_stage = StringField(o, "current_stage");
  v.source = StringField(o, "source");
  v.run_id = StringField(o, "run_id");
  v.run_link = StringField(o, "run_link");
  v.status = StringField(o, "status");
  if (auto* tags = o.if_contains("tags"); tags && tags->is_array()) {
    for (const auto& t : tags->as_array()) {
      if (t.is_object()) v.tags[StringField(t.as_object(), "key")] = StringField(t.as_object(), "value");
    }
  }
  return v;
}

absl::StatusOr<ModelUri> ParseModelUri(std::string_view uri) {
  constexpr std::string_view kScheme = "models:/";
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return absl::InvalidArgumentError(StrCat("not a models:/ URI: '", uri, "'"));
  }
  std::string_view rest = uri.substr(kScheme.size());
  while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  ModelUri out;
  if (const size_t at = rest.rfind('@'); at != std::string_view::npos && rest.find('/') == std::string_view::npos) {
    out.name = std::string(rest.substr(0, at));
    out.alias = std::string(rest.substr(at + 1));
    if (out.name.empty() || out.alias.empty()) return absl::InvalidArgumentError(StrCat("bad model URI '", uri, "'"));
    return out;
  }
  const size_t slash = rest.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 >= rest.size()) {
    return absl::InvalidArgumentError(StrCat("bad model URI '", uri,
                                             "': expected models:/NAME/VERSION, models:/NAME/STAGE or models:/NAME@ALIAS"));
  }
  out.name = std::string(rest.substr(0, slash));
  const std::string_view tail = rest.substr(slash + 1);
  if (std::all_of(tail.begin(), tail.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    out.version = std::string(tail);
  } else {
    out.stage = std::string(tail);
  }
  return out;
}

struct MlflowClient::Impl {
  MlflowClientOptions options;
  http::Url url;  // the tracking URI: host, port and path prefix
  std::string authorization;
  std::unique_ptr<http::BlockingClient> client;  // made once the TLS options are known

  struct Reply {
    int status = 0;
    std::string body;
  };

  // One HTTP exchange with retries on transient failures.
  absl::StatusOr<Reply> Send(std::string_view method, std::string target, std::string_view content_type,
                             std::string body) {
    int64_t backoff_ms = options.initial_backoff_ms;
    absl::Status last;
    for (int attempt = 0;; ++attempt) {
      std::vector<http::Header> headers;
      if (!authorization.empty()) headers.push_back({"Authorization", authorization});
      absl::StatusOr<http::ClientResponse> r =
          client->Send(url, std::string(method), target, content_type, body, std::move(headers),
                      options.request_timeout_ms * 1000, /*max_response_bytes=*/4ull << 30);  // model files too
      if (r.ok() && !Retryable(r->status)) return Reply{r->status, std::move(r->body)};
      last = r.ok() ? StatusFromMlflow(r->status, r->body) : r.status();
      if (!r.ok() && r.status().code() != absl::StatusCode::kUnavailable &&
          r.status().code() != absl::StatusCode::kDeadlineExceeded) {
        return last;
      }
      if (attempt >= options.max_retries) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms));
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
    }
    return absl::Status(last.code(), StrCat(ToStd(last.message()), " (after ", options.max_retries, " retries)"));
  }

  absl::StatusOr<json::object> Call(std::string_view method, std::string_view path, const json::object& body) {
    std::string target = StrCat("/api/2.0/mlflow/", path);
    std::string payload;
    std::string_view content_type = "application/json";
    if (method == "GET") {
      char sep = '?';
      for (const auto& [k, v] : body) {
        if (v.is_array()) {
          for (const auto& item : v.as_array()) {
            StrAppend(&target, sep, QueryEscape(k), "=", QueryEscape(ScalarText(item)));
            sep = '&';
          }
        } else if (!v.is_null()) {
          StrAppend(&target, sep, QueryEscape(k), "=", QueryEscape(ScalarText(v)));
          sep = '&';
        }
      }
    } else {
      payload = config::ToJson(body);
    }
    ABGATE_ASSIGN_OR_RETURN(Reply reply, Send(method, std::move(target), content_type, std::move(payload)));
    if (reply.status != 200) return StatusFromMlflow(reply.status, reply.body);
    boost::system::error_code ec;
    json::value v = json::parse(reply.body, ec);
    if (ec || !v.is_object()) {
      return absl::UnavailableError(StrCat("MLflow ", path, ": the reply is not a JSON object"));
    }
    return std::move(v).as_object();
  }

  std::string ArtifactTarget(std::string_view relative) const {
    return StrCat("/api/2.0/mlflow-artifacts/artifacts/", PathEscape(relative));
  }

  // Lists files under `relative` (recursively), returning paths relative to it.
  absl::Status ListRecursive(const std::string& relative, const std::string& sub, std::vector<std::string>& out,
                             int depth) {
    if (depth > 32) return absl::InvalidArgumentError("artifact tree deeper than 32 levels");
    const std::string dir = sub.empty() ? relative : StrCat(relative, "/", sub);
    ABGATE_ASSIGN_OR_RETURN(Reply reply, Send("GET", StrCat("/api/2.0/mlflow-artifacts/artifacts?path=",
                                                            QueryEscape(dir)),
                                              "application/json", ""));
    if (reply.status != 200) return StatusFromMlflow(reply.status, reply.body);
    boost::system::error_code ec;
    json::value v = json::parse(reply.body, ec);
    if (ec || !v.is_object()) return absl::UnavailableError("artifact list: the reply is not a JSON object");
    auto* files = v.as_object().if_contains("files");
    if (!files || !files->is_array()) return absl::OkStatus();
    for (const auto& f : files->as_array()) {
      if (!f.is_object()) continue;
      std::string name = StringField(f.as_object(), "path");
      // Real MLflow lists names relative to the listed dir; tolerate full paths too.
      if (const size_t slash = name.rfind('/'); slash != std::string::npos) name = name.substr(slash + 1);
      if (name.empty() || name == "." || name == "..") continue;
      const std::string child = sub.empty() ? name : StrCat(sub, "/", name);
      auto* is_dir = f.as_object().if_contains("is_dir");
      if (is_dir && is_dir->is_bool() && is_dir->as_bool()) {
        ABGATE_RETURN_IF_ERROR(ListRecursive(relative, child, out, depth + 1));
      } else {
        out.push_back(child);
      }
    }
    return absl::OkStatus();
  }

  absl::Status DownloadProxied(const std::string& relative, const fs::path& dest) {
    std::vector<std::string> files;
    ABGATE_RETURN_IF_ERROR(ListRecursive(relative, "", files, 0));
    if (files.empty()) {
      return absl::NotFoundError(StrCat("no artifacts under mlflow-artifacts:/", relative));
    }
    for (const std::string& file : files) {
      ABGATE_ASSIGN_OR_RETURN(Reply reply, Send("GET", ArtifactTarget(StrCat(relative, "/", file)), "application/json", ""));
      if (reply.status != 200) return StatusFromMlflow(reply.status, reply.body);
      // The names came from the server: keep them inside dest all the same.
      auto local = ArtifactStore::Open(dest);
      if (!local.ok()) return local.status();
      ABGATE_RETURN_IF_ERROR(local->Write(file, reply.body));
    }
    return absl::OkStatus();
  }
};

MlflowClient::MlflowClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MlflowClient::~MlflowClient() = default;

absl::StatusOr<std::unique_ptr<MlflowClient>> MlflowClient::Create(MlflowClientOptions options) {
  auto impl = std::make_unique<Impl>();
  auto url = http::ParseHttpUrl(options.tracking_uri);
  if (!url.ok()) return absl::Status(url.status().code(), StrCat("tracking URI: ", ToStd(url.status().message())));
  impl->url = *std::move(url);
  if (options.tls_ca_file.empty()) options.tls_ca_file = Env("MLFLOW_TRACKING_SERVER_CERT_PATH");
  if (!options.tls_insecure) {
    const std::string insecure = Env("MLFLOW_TRACKING_INSECURE_TLS");
    options.tls_insecure = insecure == "true" || insecure == "True" || insecure == "1";
  }
  impl->client = std::make_unique<http::BlockingClient>(4, http::TlsOptions{options.tls_ca_file, !options.tls_insecure});
  if (options.username.empty()) options.username = Env("MLFLOW_TRACKING_USERNAME");
  if (options.password.empty()) options.password = Env("MLFLOW_TRACKING_PASSWORD");
  if (options.token.empty()) options.token = Env("MLFLOW_TRACKING_TOKEN");
  if (!options.username.empty()) {
    impl->authorization = StrCat("Basic ", common::Base64Encode(StrCat(options.username, ":", options.password)));
  } else if (!options.token.empty()) {
    impl->authorization = StrCat("Bearer ", options.token);
  }
  impl->options = std::move(options);
  return std::unique_ptr<MlflowClient>(new MlflowClient(std::move(impl)));
}

const std::string& MlflowClient::tracking_uri() const { return impl_->options.tracking_uri; }

absl::StatusOr<json::object> MlflowClient::Call(std::string_view method, std::string_view path,
                                                const json::object& body) {
  return impl_->Call(method, path, body);
}

// ---- registry ----

absl::StatusOr<ModelVersion> MlflowClient::GetModelVersion(const std::string& name, const std::string& version) {
  ABGATE_ASSIGN_OR_RETURN(json::object r, Call("GET", "model-versions/get", {{"name", name}, {"version", version}}));
  auto* mv = r.if_contains("model_version");
  if (!mv || !mv->is_object()) return absl::UnavailableError("model-versions/get: no model_version in the reply");
  return ModelVersionFromJson(mv->as_object());
}

absl::StatusOr<ModelVersion> MlflowClient::GetModelVersionByAlias(const std::string& name, const std::string& alias) {
  ABGATE_ASSIGN_OR_RETURN(json::object r, Call("GET", "registered-models/alias", {{"name", name}, {"alias", alias}}));
  auto* mv = r.if_contains("model_version");
  if (!mv || !mv->is_object()) return absl::UnavailableError("registered-models/alias: no model_version in the reply");
  return ModelVersionFromJson(mv->as_object());
}

absl::StatusOr<std::vector<ModelVersion>> MlflowClient::GetLatestVersions(const std::string& name,
                                                                         const std::vector<std::string>& stages) {
  json::object body{{"name", name}};
  if (!stages.empty()) {
    json::array arr;
    for (const auto& s : stages) arr.push_back(json::value(s));
    body["stages"] = std::move(arr);
  }
  ABGATE_ASSIGN_OR_RETURN(json::object r, Call("POST", "registered-models/get-latest-versions", body));
  std::vector<ModelVersion> out;
  if (auto* mvs = r.if_contains("model_versions"); mvs && mvs->is_array()) {
    for (const auto& mv : mvs->as_array()) {
      if (mv.is_object()) out.push_back(ModelVersionFromJson(mv.as_object()));
    }
  }
  return out;
}

absl::StatusOr<ModelVersion> MlflowClient::ResolveModelUri(std::string_view uri) {
  ABGATE_ASSIGN_OR_RETURN(ModelUri parsed, ParseModelUri(uri));
  if (!parsed.version.empty()) return GetModelVersion(parsed.name, parsed.version);
  if (!parsed.alias.empty()) return GetModelVersionByAlias(parsed.name, parsed.alias);
  const bool latest = parsed.stage == "latest" || parsed.stage == "Latest";
  ABGATE_ASSIGN_OR_RETURN(auto versions,
                          GetLatestVersions(parsed.name, latest ? std::vector<std::string>{}
                                                                : std::vector<std::string>{parsed.stage}));
  if (versions.empty()) {
    return absl::NotFoundError(StrCat("no version of model '", parsed.name, "' is in stage '", parsed.stage, "'"));
  }
  return *std::max_element(versions.begin(), versions.end(),
                           [](const ModelVersion& a, const ModelVersion& b) { return a.version < b.version; });
}

absl::StatusOr<std::string> MlflowClient::GetDownloadUri(const std::string& name, const std::string& version) {
  ABGATE_ASSIGN_OR_RETURN(json::object r,
                          Call("GET", "model-versions/get-download-uri", {{"name", name}, {"version", version}}));
  std::string uri = StringField(r, "artifact_uri");
  if (uri.empty()) return absl::UnavailableError("get-download-uri: no artifact_uri in the reply");
  return uri;
}

absl::StatusOr<std::vector<ModelVersion>> MlflowClient::SearchModelVersions(const std::string& filter) {
  std::vector<ModelVersion> out;
  std::string token;
  for (int page = 0; page < 10000; ++page) {
    json::object body{{"filter", filter}, {"max_results", 1000}};
    if (!token.empty()) body["page_token"] = token;
    ABGATE_ASSIGN_OR_RETURN(json::object r, Call("GET", "model-versions/search", body));
    if (auto* mvs = r.if_contains("model_versions"); mvs && mvs->is_array()) {
      for (const auto& mv : mvs->as_array()) {
        if (mv.is_object()) out.push_back(ModelVersionFromJson(mv.as_object()));
      }
    }
    token = StringField(r, "next_page_token");
    if (token.empty()) break;
  }
  return out;
}

absl::Status MlflowClient::EnsureRegisteredModel(const std::string& name) {
  auto r = Call("POST", "registered-models/create", {{"name", name}});
  if (r.ok() || r.status().code() == absl::StatusCode::kAlreadyExists) return absl::OkStatus();
  return r.status();
}

absl::StatusOr<ModelVersion> MlflowClient::CreateModelVersion(const std::string& name, const std::string& source,
                                                              const std::string& run_id, const TagMap& tags) {
  json::object body{{"name", name}, {"source", source}};
  if (!run_id.empty()) body["run_id"] = run_id;
  if (!tags.empty()) {
    json::array arr;
    for (const auto& [k, v] : tags) arr.push_back(json::object{{"key", k}, {"value", v}});
    body["tags"] = std::move(arr);
  }
  ABGATE_ASSIGN_OR_RETURN(json::object r, Call("POST", "model-versions/create", body));
  auto* mv = r.if_contains("model_version");
  if (!mv || !mv->is_object()) return absl::UnavailableError("model-versions/create: no model_version in the reply");
  return ModelVersionFromJson(mv->as_object());
}

absl::StatusOr<ModelVersion> MlflowClient::TransitionStage(const std::string& name, const std::string& version,
                                                           const std::string& stage, bool archive_existing_versions) {
  ABGATE_ASSIGN_OR_RETURN(json::object r, Call("POST", "model-versions/transition-stage",
                                               {{"name", name},
                                                {"version", version},
                                                {"stage", stage},
                                                {"archive_existing_versions", archive_existing_versions}}));
  auto* mv = r.if_contains("model_version");
  if (!mv || !mv->is_object()) return absl::UnavailableError("transition-stage: no model_version in the reply");
  return ModelVersionFromJson(mv->as_object());
}

absl::Status MlflowClient::SetAlias(const std::string& name, const std::string& alias, const std::string& version) {
  return Call("POST", "registered-models/alias", {{"name", name}, {"alias", alias}, {"version", version}}).status();
}

absl::Status MlflowClient::DeleteAlias(const std::string& name, const std::string& alias) {
  return Call("DELETE", "registered-models/alias", {{"name", name}, {"alias", alias}}).status();
}

absl::Status MlflowClient::SetModelVersionTag(const std::string& name, const std::string& version,
                                              const std::string& key, const std::string& value) {
  return Call("POST", "model-versions/set-tag", {{"name", name}, {"version", version}, {"key", key}, {"value", value}})
      .status();
}

absl::Status MlflowClient::DeleteModelVersionTag(const std::string& name, const std::string& version,
                                                 const std::string& key) {
  return Call("DELETE", "model-versions/delete-tag", {{"name", name}, {"version", version}, {"key", key}}).status();
}

absl::Status MlflowClient::SetRegisteredModelTag(const std::string& name, const std::string& key,
                                                 const std::string& value) {
  return Call("POST", "registered-models/set-tag", {{"name", name}, {"key", key}, {"value", value}}).status();
}

// ---- artifacts ----

absl::Status MlflowClient::DownloadArtifacts(const std::string& uri, const fs::path& dest) {
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) return absl::UnavailableError(StrCat("cannot create ", dest.string(), ": ", ec.message()));
  if (uri.rfind("mlflow-artifacts:", 0) == 0) {
    ABGATE_ASSIGN_OR_RETURN(std::string relative, MlflowArtifactsPath(uri));
    return impl_->DownloadProxied(relative, dest);
  }
  if (uri.rfind("runs:/", 0) == 0) {
    std::string_view rest = std::string_view(uri).substr(6);
    while (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
    const size_t slash = rest.find('/');
    const std::string run_id(rest.substr(0, slash));
    const std::string sub = slash == std::string_view::npos ? "" : std::string(rest.substr(slash + 1));
    ABGATE_ASSIGN_OR_RETURN(json::object r, Call("GET", "runs/get", {{"run_id", run_id}}));
    std::string root;
    if (auto* run = r.if_contains("run"); run && run->is_object()) {
      if (auto* info = run->as_object().if_contains("info"); info && info->is_object()) {
        root = StringField(info->as_object(), "artifact_uri");
      }
    }
    if (root.empty()) return absl::UnavailableError(StrCat("runs/get ", run_id, ": no artifact_uri"));
    return DownloadArtifacts(sub.empty() ? root : StrCat(root, "/", sub), dest);
  }
  if (uri.rfind("models:/", 0) == 0) {
    // MLflow 3 stores logged models as `models:/m-<id>`; this client speaks the 2.x API.
    return absl::UnimplementedError(StrCat("source '", uri, "' is an MLflow 3 logged model; abgate resolves "
                                           "mlflow-artifacts:/, runs:/ and local sources"));
  }
  std::string local = uri;
  if (local.rfind("file://", 0) == 0) {
    local = local.substr(7);
  } else if (local.rfind("file:", 0) == 0) {
    local = local.substr(5);
  }
  if (local.find("://") != std::string::npos) {
    return absl::UnimplementedError(StrCat("cannot download '", uri, "': abgate reads mlflow-artifacts:/, runs:/ "
                                           "and local sources (serve artifacts through the MLflow server's proxy)"));
  }
  if (!fs::is_directory(local, ec)) return absl::NotFoundError(StrCat("model folder ", local, " does not exist"));
  fs::copy(local, dest, fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec) return absl::UnavailableError(StrCat("cannot copy ", local, ": ", ec.message()));
  return absl::OkStatus();
}

absl::StatusOr<fs::path> MlflowClient::DownloadModelVersion(const std::string& name, const std::string& version,
                                                            const fs::path& cache_root) {
  if (name.find('/') != std::string::npos || name == "." || name == ".." || name.empty()) {
    return absl::InvalidArgumentError(StrCat("model name '", name, "' cannot name a cache folder"));
  }
  const fs::path final_dir = cache_root / name / version;
  std::error_code ec;
  if (fs::is_directory(final_dir, ec)) return final_dir;
  ABGATE_ASSIGN_OR_RETURN(std::string uri, GetDownloadUri(name, version));
  fs::create_directories(final_dir.parent_path(), ec);
  thread_local common::Xoshiro256 rng = common::Xoshiro256::FromEntropy();
  const fs::path tmp = final_dir.parent_path() / StrCat(".download-", version, "-", getpid(), "-", rng() % 1000000000);
  absl::Status s = DownloadArtifacts(uri, tmp);
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  fs::rename(tmp, final_dir, ec);
  if (ec) {
    // Another loader finished first: theirs is complete, use it.
    fs::remove_all(tmp, ec);
    if (!fs::is_directory(final_dir, ec)) return absl::UnavailableError(StrCat("cannot place ", final_dir.string()));
  }
  return final_dir;
}

absl::Status MlflowClient::UploadArtifact(const std::string& artifact_uri, const std::string& relative,
                                          std::string_view bytes) {
  ABGATE_ASSIGN_OR_RETURN(std::string base, MlflowArtifactsPath(artifact_uri));
  ABGATE_ASSIGN_OR_RETURN(Impl::Reply reply, impl_->Send("PUT", impl_->ArtifactTarget(StrCat(base, "/", relative)),
                                                         "application/octet-stream", std::string(bytes)));
  if (reply.status != 200) return StatusFromMlflow(reply.status, reply.body);
  return absl::OkStatus();
}

// ---- tracking ----

absl::StatusOr<std::string> MlflowClient::GetOrCreateExperiment(const std::string& name) {
  auto got = Call("GET", "experiments/get-by-name", {{"experiment_name", name}});
  if (got.ok()) {
    auto* e = got->if_contains("experiment");
    if (e && e->is_object()) return StringField(e->as_object(), "experiment_id");
  } else if (got.status().code() != absl::StatusCode::kNotFound) {
    return got.status();
  }
  auto created = Call("POST", "experiments/create", {{"name", name}});
  if (created.ok()) return StringField(*created, "experiment_id");
  if (created.status().code() == absl::StatusCode::kAlreadyExists) return GetOrCreateExperiment(name);  // a race
  return created.status();
}

absl::StatusOr<RunHandle> MlflowClient::CreateRun(const std::string& experiment_id, const std::string& run_name,
                                                  const TagMap& tags) {
  json::object body{{"experiment_id", experiment_id},
                    {"start_time", std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count()}};
  if (!run_name.empty()) body["run_name"] = run_name;
  json::array arr;
  for (const auto& [k, v] : tags) arr.push_back(json::object{{"key", k}, {"value", v}});
  if (!arr.empty()) body["tags"] = std::move(arr);
  ABGATE_ASSIGN_OR_RETURN(json::object r, Call("POST", "runs/create", body));
  auto* run = r.if_contains("run");
  auto* info = run && run->is_object() ? run->as_object().if_contains("info") : nullptr;
  if (!info || !info->is_object()) return absl::UnavailableError("runs/create: no run.info in the reply");
  return RunHandle{StringField(info->as_object(), "run_id"), experiment_id, StringField(info->as_object(), "artifact_uri")};
}

absl::Status MlflowClient::LogBatch(const std::string& run_id, const std::vector<Metric>& metrics, const TagMap& params,
                                    const TagMap& tags) {
  auto kv = [](const auto& it) { return json::object{{"key", it.first}, {"value", it.second}}; };
  auto m_it = metrics.begin();
  auto p_it = params.begin();
  auto t_it = tags.begin();
  while (m_it != metrics.end() || p_it != params.end() || t_it != tags.end()) {
    json::array ms, ps, ts;
    for (; m_it != metrics.end() && ms.size() < 1000; ++m_it) {
      json::object o{{"key", m_it->key}, {"timestamp", m_it->timestamp}, {"step", m_it->step}};
      if (std::isnan(m_it->value)) {
        o["value"] = "NaN";
      } else if (std::isinf(m_it->value)) {
        o["value"] = m_it->value > 0 ? "Infinity" : "-Infinity";
      } else {
        o["value"] = m_it->value;
      }
      ms.push_back(std::move(o));
    }
    for (; p_it != params.end() && ps.size() < 100 && ms.size() + ps.size() < 1000; ++p_it) ps.push_back(kv(*p_it));
    for (; t_it != tags.end() && ts.size() < 100 && ms.size() + ps.size() + ts.size() < 1000; ++t_it) {
      ts.push_back(kv(*t_it));
    }
    json::object body{{"run_id", run_id}};
    if (!ms.empty()) body["metrics"] = std::move(ms);
    if (!ps.empty()) body["params"] = std::move(ps);
    if (!ts.empty()) body["tags"] = std::move(ts);
    ABGATE_RETURN_IF_ERROR(Call("POST", "runs/log-batch", body).status());
  }
  return absl::OkStatus();
}

absl::Status MlflowClient::SetTerminated(const std::string& run_id, const std::string& status) {
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return Call("POST", "runs/update", {{"run_id", run_id}, {"status", status}, {"end_time", now}}).status();
}

absl::Status MlflowClient::LogModel(const std::string& run_id, const json::object& mlmodel) {
  return Call("POST", "runs/log-model", {{"run_id", run_id}, {"model_json", config::ToJson(mlmodel)}}).status();
}

absl::StatusOr<std::vector<json::object>> MlflowClient::SearchRuns(const std::vector<std::string>& experiment_ids,
                                                                   const std::string& filter) {
  std::vector<json::object> out;
  std::string token;
  json::array ids;
  for (const auto& id : experiment_ids) ids.push_back(json::value(id));
  for (int page = 0; page < 10000; ++page) {
    json::object body{{"experiment_ids", ids}, {"filter", filter}, {"max_results", 1000}};
    if (!token.empty()) body["page_token"] = token;
    ABGATE_ASSIGN_OR_RETURN(json::object r, Call("POST", "runs/search", body));
    if (auto* runs = r.if_contains("runs"); runs && runs->is_array()) {
      for (const auto& run : runs->as_array()) {
        if (run.is_object()) out.push_back(run.as_object());
      }
    }
    token = StringField(r, "next_page_token");
    if (token.empty()) break;
  }
  return out;
}

}  // namespace abgate::registry
