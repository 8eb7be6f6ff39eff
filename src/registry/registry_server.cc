#include "registry/registry_server.h"

#include <cmath>
#include <functional>
#include <map>
#include <optional>
#include <algorithm>
#include <cctype>
#include <string_view>

#include <boost/json.hpp>

#include "common/base64.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "config/json_format.h"
#include "http/server.h"
#include "http/service.h"

namespace abgate::registry {
namespace json = boost::json;
namespace {

using http::Request;
using http::Response;

constexpr std::string_view kMlflowVersion = "2.17.2";  // the API version these handlers follow
constexpr std::string_view kDocsHint = ". See the API docs for more information about request parameters.";

// ---------------------------------------------------------------------------------------------
// Errors

std::string_view ErrorCode(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument: return "INVALID_PARAMETER_VALUE";
    case absl::StatusCode::kAlreadyExists: return "RESOURCE_ALREADY_EXISTS";
    case absl::StatusCode::kNotFound: return "RESOURCE_DOES_NOT_EXIST";
    case absl::StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
    case absl::StatusCode::kPermissionDenied: return "PERMISSION_DENIED";
    case absl::StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kUnavailable: return "TEMPORARILY_UNAVAILABLE";
    default: return "INTERNAL_ERROR";
  }
}

int HttpStatus(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists: return 400;  // MLflow: RESOURCE_ALREADY_EXISTS is 400
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

Response ErrorReply(const absl::Status& s) {
  return http::ErrorResponse(HttpStatus(s), ErrorCode(s), ToStd(s.message()));
}

Response JsonReply(const json::object& o) { return Response::Json(200, config::ToJson(o)); }

absl::Status Invalid(std::string_view m) { return absl::InvalidArgumentError(std::string(m)); }
absl::Status Missing(std::string_view field) {
  return Invalid(StrCat("Missing value for required parameter '", field, "'", kDocsHint));
}

// ---------------------------------------------------------------------------------------------
// Request fields: a JSON object from the body, or from the query string for GET.

// `+` is a space in a query string only; in a path (artifact paths) it is itself, as in MLflow
// (werkzeug decodes the path without it).
std::string PercentDecode(std::string_view s, bool plus_is_space = true) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

json::object ParseQuery(std::string_view query) {
  json::object out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string key = PercentDecode(pair.substr(0, eq));
    const std::string value = eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
    if (auto* existing = out.if_contains(key)) {
      if (!existing->is_array()) *existing = json::array{*existing};
      existing->as_array().push_back(json::value(value));
    } else {
      out[key] = value;
    }
  }
  return out;
}

std::string_view TypeName(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string: return "str";
    case json::kind::int64:
    case json::kind::uint64: return "int";
    case json::kind::double_: return "float";
    case json::kind::bool_: return "bool";
    case json::kind::array: return "list";
    case json::kind::object: return "dict";
    case json::kind::null: return "NoneType";
  }
  return "?";
}

absl::Status WrongType(std::string_view field, const json::value& v, std::string_view expected) {
  return Invalid(StrCat("Invalid value ", config::ToJson(v), " for parameter '", field, "' supplied: Hint: Value was of type '",
                        TypeName(v), "'. Expected ", expected, kDocsHint));
}

// Typed access to request fields with MLflow's errors. `from_query` means every scalar arrived
// as a string and numbers or booleans are parsed from it.
class Fields {
 public:
  Fields(json::object o, bool from_query) : o_(std::move(o)), from_query_(from_query) {}

  const json::value* Find(std::string_view name) const {
    const json::value* v = o_.if_contains(name);
    return v && !v->is_null() ? v : nullptr;
  }

  absl::StatusOr<std::optional<std::string>> OptString(std::string_view name) const {
    const json::value* v = Find(name);
    if (!v) return std::optional<std::string>();
    if (v->is_array() && from_query_ && !v->as_array().empty()) v = &v->as_array().back();
    if (v->is_string()) return std::optional<std::string>(std::string(v->as_string()));
    return WrongType(name, *v, "a string");
  }
  absl::StatusOr<std::string> String(std::string_view name, std::string def = "") const {
    ABGATE_ASSIGN_OR_RETURN(auto s, OptString(name));
    return s ? *s : def;
  }
  absl::StatusOr<std::string> Required(std::string_view name) const {
    ABGATE_ASSIGN_OR_RETURN(auto s, OptString(name));
    if (!s || s->empty()) return Missing(name);
    return *s;
  }
  // experiment_id and friends: a string, or a JSON number converted to one (as MLflow does).
  absl::StatusOr<std::optional<std::string>> OptId(std::string_view name) const {
    const json::value* v = Find(name);
    if (v && (v->is_int64() || v->is_uint64())) return std::optional<std::string>(config::ToJson(*v));
    return OptString(name);
  }
  absl::StatusOr<std::optional<int64_t>> OptInt(std::string_view name) const {
    const json::value* v = Find(name);
    if (!v) return std::optional<int64_t>();
    if (v->is_int64()) return std::optional<int64_t>(v->as_int64());
    if (v->is_uint64() && v->as_uint64() <= uint64_t(INT64_MAX)) return std::optional<int64_t>(int64_t(v->as_uint64()));
    if (v->is_double() && std::trunc(v->as_double()) == v->as_double() && std::abs(v->as_double()) < 9e18) {
      return std::optional<int64_t>(static_cast<int64_t>(v->as_double()));
    }
    if (v->is_string() && from_query_) {
      const std::string_view s = v->as_string();
      int64_t out = 0;
      const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
      if (!s.empty() && ec == std::errc() && ptr == s.data() + s.size()) return std::optional<int64_t>(out);
    }
    return WrongType(name, *v, "an integer");
  }
  absl::StatusOr<std::optional<bool>> OptBool(std::string_view name) const {
    const json::value* v = Find(name);
    if (!v) return std::optional<bool>();
    if (v->is_bool()) return std::optional<bool>(v->as_bool());
    if (v->is_string()) {  // "true" arrives as a string from a query and from some clients
      const std::string_view s = v->as_string();
      if (s == "true" || s == "True") return std::optional<bool>(true);
      if (s == "false" || s == "False") return std::optional<bool>(false);
    }
    return WrongType(name, *v, "a boolean");
  }
  absl::StatusOr<std::vector<std::string>> StringList(std::string_view name) const {
    std::vector<std::string> out;
    const json::value* v = Find(name);
    if (!v) return out;
    if (v->is_string()) {
      out.emplace_back(v->as_string());
      return out;
    }
    if (!v->is_array()) return WrongType(name, *v, "a list of strings");
    for (const auto& item : v->as_array()) {
      if (item.is_string()) {
        out.emplace_back(item.as_string());
      } else if (item.is_int64() || item.is_uint64()) {
        out.push_back(config::ToJson(item));
      } else {
        return WrongType(name, *v, "a list of strings");
      }
    }
    return out;
  }
  // [{key, value}] with per-element paths in errors ("tags[1].key").
  absl::StatusOr<std::vector<std::pair<std::string, std::string>>> KeyValues(std::string_view name) const {
    std::vector<std::pair<std::string, std::string>> out;
    const json::value* v = Find(name);
    if (!v) return out;
    if (!v->is_array()) return WrongType(name, *v, "a list");
    const auto& arr = v->as_array();
    for (size_t i = 0; i < arr.size(); ++i) {
      const std::string path = StrCat(name, "[", static_cast<int64_t>(i), "]");
      if (!arr[i].is_object()) return WrongType(path, arr[i], "an object");
      Fields item(arr[i].as_object(), false);
      ABGATE_ASSIGN_OR_RETURN(auto key, item.OptString("key"));
      if (!key || key->empty()) return Missing(StrCat(path, ".key"));
      ABGATE_ASSIGN_OR_RETURN(std::string value, item.String("value"));
      out.emplace_back(std::move(*key), std::move(value));
    }
    return out;
  }
  const json::object& object() const { return o_; }

 private:
  json::object o_;
  bool from_query_;
};

absl::StatusOr<TagMap> TagsOf(const Fields& f) {
  ABGATE_ASSIGN_OR_RETURN(auto kvs, f.KeyValues("tags"));
  TagMap out;
  for (auto& [k, v] : kvs) out[k] = v;
  return out;
}

// A metric value: a number, or "NaN" / "Infinity" / "-Infinity" (also from a query string).
absl::StatusOr<double> MetricValueOf(const json::value& v, std::string_view field) {
  if (v.is_double()) return v.as_double();
  if (v.is_int64()) return static_cast<double>(v.as_int64());
  if (v.is_uint64()) return static_cast<double>(v.as_uint64());
  if (v.is_string()) {
    const std::string_view s = v.as_string();
    if (s == "NaN" || s == "nan") return std::nan("");
    if (s == "Infinity" || s == "inf") return HUGE_VAL;
    if (s == "-Infinity" || s == "-inf") return -HUGE_VAL;
    double d = 0;
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (!s.empty() && ec == std::errc() && ptr == s.data() + s.size()) return d;
  }
  return WrongType(field, v, "a number");
}

// MLflow's key rules for params, metrics and tags: a relative path of word characters.
absl::Status ValidateKey(std::string_view kind, const std::string& key) {
  if (key.size() > 250) return Invalid(StrCat("'", kind, "' name exceeds the maximum length of 250 characters"));
  const bool chars_ok = std::all_of(key.begin(), key.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '_' || c == '/' || c == '.' || c == '-' || c == ' ';
  });
  if (!chars_ok || key.find("..") != std::string::npos || (!key.empty() && key.front() == '/')) {
    return Invalid(StrCat("Invalid ", kind, " name: '", key, "'. Names may only contain alphanumerics, underscores (_), "
                          "dashes (-), periods (.), spaces ( ), and slashes (/)."));
  }
  return absl::OkStatus();
}

absl::StatusOr<ViewType> ViewTypeOf(const Fields& f, std::string_view name) {
  ABGATE_ASSIGN_OR_RETURN(auto v, f.OptString(name));
  if (!v || *v == "ACTIVE_ONLY" || v->empty() || *v == "1") return ViewType::kActiveOnly;
  if (*v == "DELETED_ONLY" || *v == "2") return ViewType::kDeletedOnly;
  if (*v == "ALL" || *v == "3") return ViewType::kAll;
  return Invalid(StrCat("Invalid value '", *v, "' for parameter '", name, "'", kDocsHint));
}

absl::StatusOr<SearchRequest> SearchOf(const Fields& f, std::string_view view_field) {
  SearchRequest req;
  ABGATE_ASSIGN_OR_RETURN(req.filter, f.String("filter"));
  ABGATE_ASSIGN_OR_RETURN(req.order_by, f.StringList("order_by"));
  ABGATE_ASSIGN_OR_RETURN(auto max, f.OptInt("max_results"));
  if (max) {
    if (*max <= 0) {
      return Invalid(StrCat("Invalid value ", *max, " for parameter 'max_results' supplied. It must be a positive integer"));
    }
    req.max_results = *max;
  }
  ABGATE_ASSIGN_OR_RETURN(req.page_token, f.String("page_token"));
  if (!view_field.empty()) {
    ABGATE_ASSIGN_OR_RETURN(req.view_type, ViewTypeOf(f, view_field));
  }
  return req;
}

absl::StatusOr<int64_t> ExperimentIdOf(const std::string& id) {
  int64_t out = 0;
  const auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), out);
  if (id.empty() || ec != std::errc() || ptr != id.data() + id.size()) {
    return absl::NotFoundError(StrCat("No Experiment with id=", id, " exists"));
  }
  return out;
}

absl::StatusOr<std::string> RunIdOf(const Fields& f) {
  ABGATE_ASSIGN_OR_RETURN(auto id, f.OptString("run_id"));
  if (!id || id->empty()) {
    ABGATE_ASSIGN_OR_RETURN(id, f.OptString("run_uuid"));
  }
  if (!id || id->empty()) return Missing("run_id");
  return *id;
}

template <typename T>
json::array JsonArray(const std::vector<T>& items) {
  json::array out;
  out.reserve(items.size());
  for (const auto& item : items) out.push_back(ToJson(item));
  return out;
}

std::string_view GuessContentType(std::string_view path) {
  auto ends = [&](std::string_view s) { return path.size() >= s.size() && path.substr(path.size() - s.size()) == s; };
  if (ends(".json")) return "application/json";
  if (ends(".html") || ends(".htm")) return "text/html";
  if (ends(".png")) return "image/png";
  if (ends(".jpg") || ends(".jpeg")) return "image/jpeg";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".csv")) return "text/csv";
  if (ends(".txt") || ends(".yaml") || ends(".yml") || ends(".log") || ends(".py") || ends("MLmodel") ||
      ends(".md")) {
    return "text/plain";
  }
  return "application/octet-stream";
}

bool IsLocalPath(std::string_view source) {
  return source.rfind("/", 0) == 0 || source.rfind("file:", 0) == 0 || source.rfind("./", 0) == 0;
}

// `..` anywhere in a source is refused; see CheckSource.
bool HasDotDotSegment(std::string_view source) {
  size_t start = 0;
  while (start <= source.size()) {
    size_t end = source.find('/', start);
    if (end == std::string_view::npos) end = source.size();
    if (source.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return source.find("%2e%2e") != std::string_view::npos || source.find("%2E%2E") != std::string_view::npos;
}

// MLflow's source rules: no `..`; a local path only inside the given run's artifact folder.
absl::Status CheckSourceImpl(const RegistryStore& store, const ArtifactStore& artifacts, const std::string& source,
                             const std::string& run_id) {
  if (HasDotDotSegment(source)) {
    return Invalid(StrCat("Invalid model version source: '", source, "'. Sources may not contain '..' path segments."));
  }
  if (!IsLocalPath(source)) return absl::OkStatus();
  const absl::Status refused = Invalid(
      "To use a local path as a model version source, the run_id request parameter has to be specified and the local "
      "path has to be contained within the artifact directory of the run specified by the run_id.");
  if (run_id.empty()) return refused;
  ABGATE_ASSIGN_OR_RETURN(std::string uri, store.RunArtifactUri(run_id));
  auto rel = MlflowArtifactsPath(uri);
  if (!rel.ok()) return refused;
  auto run_dir = artifacts.Resolve(*rel);
  if (!run_dir.ok()) return refused;
  std::string path = source.rfind("file://", 0) == 0 ? source.substr(7) : source.rfind("file:", 0) == 0 ? source.substr(5) : source;
  const std::string dir = run_dir->string();
  if (path.rfind(dir, 0) != 0 || (path.size() > dir.size() && path[dir.size()] != '/')) return refused;
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct RegistryServer::Impl {
  using ApiHandler = std::function<absl::StatusOr<json::object>(const Fields&)>;
  struct Route {
    ApiHandler handler;
    bool mutates = true;
  };

  RegistryStore& store;
  ArtifactStore artifacts;
  RegistryServerOptions options;
  std::unique_ptr<http::Service> service;
  // path after the API prefix → method → route
  std::map<std::string, std::map<std::string, Route>, std::less<>> routes;

  Impl(RegistryStore& s, ArtifactStore a, RegistryServerOptions o)
      : store(s), artifacts(std::move(a)), options(std::move(o)) {
    AddRoutes();
  }

  void Add(std::string method, std::string path, ApiHandler h, bool mutates = true) {
    routes[path][method] = Route{std::move(h), mutates};
  }

  bool Authorized(const Request& req) const {
    if (options.username.empty() && options.password.empty() && options.token.empty()) return true;
    const std::string_view auth = req.FindHeader("Authorization");
    // Constant time whatever the given length: walks the whole expected value, no early return.
    auto equal = [](std::string_view given, std::string_view expected) {
      size_t diff = given.size() ^ expected.size();
      for (size_t i = 0; i < expected.size(); ++i) {
        diff |= static_cast<unsigned char>((i < given.size() ? given[i] : 0) ^ expected[i]);
      }
      return diff == 0;
    };
    if (!options.token.empty() && auth.rfind("Bearer ", 0) == 0) return equal(auth.substr(7), options.token);
    if (!options.username.empty() && auth.rfind("Basic ", 0) == 0) {
      const auto decoded = common::Base64Decode(auth.substr(6));
      return decoded && equal(*decoded, StrCat(options.username, ":", options.password));
    }
    return false;
  }

  static Response Unauthenticated() {
    Response r = http::ErrorResponse(401, "UNAUTHENTICATED",
                                     "You are not authenticated. Please see the documentation on how to authenticate.");
    r.headers.push_back({"WWW-Authenticate", "Basic realm=\"mlflow\""});
    return r;
  }

  // The prefix-less API path of `path` ("model-versions/create"), or nullopt.
  static std::optional<std::string_view> ApiPath(std::string_view path) {
    for (std::string_view prefix : {"/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"}) {
      if (path.substr(0, prefix.size()) == prefix) return path.substr(prefix.size());
    }
    return std::nullopt;
  }
  // The artifact path after the proxy prefix ("" or "/a/b"), or nullopt.
  static std::optional<std::string_view> ArtifactRest(std::string_view path) {
    for (std::string_view prefix : {"/api/2.0/mlflow-artifacts/artifacts", "/ajax-api/2.0/mlflow-artifacts/artifacts"}) {
      if (path.substr(0, prefix.size()) == prefix && (path.size() == prefix.size() || path[prefix.size()] == '/')) {
        return path.substr(prefix.size());
      }
    }
    return std::nullopt;
  }

  // Streams an artifact upload's body into its temporary file.
  struct UploadSink : http::BodySink {
    explicit UploadSink(std::unique_ptr<ArtifactUpload> u) : upload(std::move(u)) {}
    absl::Status Write(std::string_view bytes) override { return upload->Write(bytes); }
    std::unique_ptr<ArtifactUpload> upload;
  };

  // Runs once a request's header is in, before its body is read (issue 14: four anonymous
  // 200 MB PUTs used to be read whole, 793 MB of RSS, before their 401). Changes without
  // credentials are refused here; an artifact PUT gets the upload limit and a file to stream
  // into; everything else gets the small REST limit.
  http::HeadDecision Head(const Request& req) {
    http::HeadDecision d;
    d.max_body_bytes = options.max_body_bytes;
    if (auto rest = ArtifactRest(req.path)) {
      if (req.method != "GET" && !Authorized(req)) {
        d.reject = Unauthenticated();
      } else if (req.method == "PUT" && rest->size() > 1) {
        auto upload = artifacts.BeginUpload(PercentDecode(rest->substr(1), /*plus_is_space=*/false));
        if (!upload.ok()) {
          d.reject = ErrorReply(upload.status());
        } else {
          d.sink = std::make_shared<UploadSink>(*std::move(upload));
          d.max_body_bytes = options.max_artifact_bytes;
          d.read_timeout_us = options.upload_timeout_us;
        }
      }
    } else if (auto api = ApiPath(req.path)) {
      auto it = routes.find(*api);
      if (it != routes.end()) {
        auto route = it->second.find(std::string(req.method));
        if (route != it->second.end() && route->second.mutates && !Authorized(req)) d.reject = Unauthenticated();
      }
    }
    if (d.reject) d.reject->close = true;
    return d;
  }

  Response Handle(Request& req) {
    std::string_view path = req.path;
    if (path == "/health") return Response::Text(200, "OK", "text/html; charset=utf-8");
    if (path == "/version") return Response::Text(200, std::string(kMlflowVersion), "text/html; charset=utf-8");
    for (std::string_view prefix : {"/api/2.0/mlflow-artifacts/artifacts", "/ajax-api/2.0/mlflow-artifacts/artifacts"}) {
      if (path.substr(0, prefix.size()) == prefix && (path.size() == prefix.size() || path[prefix.size()] == '/')) {
        return HandleArtifact(req, path.substr(prefix.size()));
      }
    }
    if (path == "/get-artifact" || path == "/model-versions/get-artifact") return HandleUiArtifact(req, path);
    for (std::string_view prefix : {"/api/2.0/mlflow/", "/ajax-api/2.0/mlflow/"}) {
      if (path.substr(0, prefix.size()) != prefix) continue;
      auto it = routes.find(path.substr(prefix.size()));
      if (it == routes.end()) break;
      auto route = it->second.find(std::string(req.method));
      if (route == it->second.end()) {
        Response r = http::ErrorResponse(405, "METHOD_NOT_ALLOWED",
                                         StrCat("The method ", req.method, " is not allowed for ", path));
        std::string allow;
        for (const auto& [m, _] : it->second) allow += allow.empty() ? m : StrCat(", ", m);
        r.headers.push_back({"Allow", allow});
        return r;
      }
      if (route->second.mutates && !Authorized(req)) return Unauthenticated();
      if (req.method == "POST" || req.method == "PUT") {
        const std::string_view ct = req.FindHeader("Content-Type");
        if (ct.empty()) {
          return ErrorReply(Invalid("Bad Request. Content-Type header is missing."));
        }
        const std::string_view media = ct.substr(0, ct.find(';'));
        if (!http::EqualsIgnoreCase(media, "application/json")) {
          return ErrorReply(Invalid("Bad Request. Content-Type must be one of ['application/json']."));
        }
      }
      auto result = route->second.handler(FieldsOf(req));
      if (!result.ok()) return ErrorReply(result.status());
      return JsonReply(*result);
    }
    return http::ErrorResponse(404, "ENDPOINT_NOT_FOUND", StrCat("No API endpoint at ", path));
  }

  static Fields FieldsOf(const Request& req) {
    if (req.method == "GET" && !req.query.empty()) return Fields(ParseQuery(req.query), true);
    // Malformed JSON is an empty body, as in MLflow: the first required field is reported.
    boost::system::error_code ec;
    json::value v = json::parse(req.body, ec);
    if (ec || !v.is_object()) return Fields(json::object(), false);
    return Fields(std::move(v).as_object(), false);
  }

  // --- the artifact proxy ---
  Response HandleArtifact(const Request& req, std::string_view rest) {
    const bool is_read = req.method == "GET";
    if (!is_read && !Authorized(req)) return Unauthenticated();
    if (rest.empty() || rest == "/") {
      if (req.method != "GET") return http::ErrorResponse(405, "METHOD_NOT_ALLOWED", "List artifacts with GET");
      const Fields f(ParseQuery(req.query), true);
      auto dir = f.String("path");
      if (!dir.ok()) return ErrorReply(dir.status());
      auto files = artifacts.List(*dir);
      if (!files.ok()) return ErrorReply(files.status());
      json::object out;
      if (!files->empty()) {
        json::array arr;
        for (const FileInfo& fi : *files) {
          json::object o{{"path", fi.path}, {"is_dir", fi.is_dir}};
          if (!fi.is_dir) o["file_size"] = fi.file_size;
          arr.push_back(std::move(o));
        }
        out["files"] = std::move(arr);
      }
      return JsonReply(out);
    }
    const std::string relative = PercentDecode(rest.substr(1), /*plus_is_space=*/false);
    if (req.method == "GET") return Download(relative);
    if (req.method == "PUT") {
      // Head() opened the upload and the server streamed the body into it.
      auto* sink = dynamic_cast<UploadSink*>(req.body_sink.get());
      absl::Status s = sink ? sink->upload->Commit() : artifacts.Write(relative, req.body);
      return s.ok() ? JsonReply({}) : ErrorReply(s);
    }
    if (req.method == "DELETE") {
      absl::Status s = artifacts.Delete(relative);
      return s.ok() ? JsonReply({}) : ErrorReply(s);
    }
    return http::ErrorResponse(405, "METHOD_NOT_ALLOWED", StrCat("The method ", req.method, " is not allowed"));
  }

  Response Download(const std::string& relative) {
    auto bytes = artifacts.Read(relative);
    if (!bytes.ok()) return ErrorReply(bytes.status());
    Response r = Response::Text(200, *std::move(bytes), std::string(GuessContentType(relative)));
    const size_t slash = relative.rfind('/');
    r.headers.push_back({"Content-Disposition", StrCat("attachment; filename=",
                                                       slash == std::string::npos ? relative : relative.substr(slash + 1))});
    r.headers.push_back({"X-Content-Type-Options", "nosniff"});
    return r;
  }

  // Local artifact path of an mlflow-artifacts URI plus a relative path under it.
  absl::StatusOr<std::string> ArtifactPathOf(const std::string& uri, std::string_view sub) const {
    ABGATE_ASSIGN_OR_RETURN(std::string base, MlflowArtifactsPath(uri));
    if (sub.empty()) return base;
    return base.empty() ? std::string(sub) : StrCat(base, "/", sub);
  }

  Response HandleUiArtifact(const Request& req, std::string_view path) {
    if (req.method != "GET") return http::ErrorResponse(405, "METHOD_NOT_ALLOWED", "GET only");
    const Fields f(ParseQuery(req.query), true);
    auto rel = f.Required("path");
    if (!rel.ok()) return ErrorReply(rel.status());
    std::string root;
    if (path == "/get-artifact") {
      auto run_id = RunIdOf(f);
      if (!run_id.ok()) return ErrorReply(run_id.status());
      auto uri = store.RunArtifactUri(*run_id);
      if (!uri.ok()) return ErrorReply(uri.status());
      root = *uri;
    } else {
      auto name = f.Required("name");
      auto version = f.Required("version");
      if (!name.ok()) return ErrorReply(name.status());
      if (!version.ok()) return ErrorReply(version.status());
      auto mv = store.GetModelVersion(*name, *version);
      if (!mv.ok()) return ErrorReply(mv.status());
      root = mv->first.source;
    }
    auto local = ArtifactPathOf(root, *rel);
    if (!local.ok()) return ErrorReply(local.status());
    return Download(*local);
  }

  absl::Status CheckSource(const std::string& source, const std::string& run_id) const {
    return CheckSourceImpl(store, artifacts, source, run_id);
  }

  void AddRoutes();
};

void RegistryServer::Impl::AddRoutes() {
  RegistryStore& s = store;

  // ---- experiments ----
  Add("POST", "experiments/create", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string location, f.String("artifact_location"));
    ABGATE_ASSIGN_OR_RETURN(TagMap tags, TagsOf(f));
    ABGATE_ASSIGN_OR_RETURN(int64_t id, s.CreateExperiment(name, location, tags));
    return json::object{{"experiment_id", std::to_string(id)}};
  });
  Add("GET", "experiments/get", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(auto id_text, f.OptId("experiment_id"));
    if (!id_text || id_text->empty()) return Missing("experiment_id");
    ABGATE_ASSIGN_OR_RETURN(int64_t id, ExperimentIdOf(*id_text));
    ABGATE_ASSIGN_OR_RETURN(Experiment e, s.GetExperiment(id));
    return json::object{{"experiment", ToJson(e)}};
  }, false);
  Add("GET", "experiments/get-by-name", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("experiment_name"));
    ABGATE_ASSIGN_OR_RETURN(Experiment e, s.GetExperimentByName(name));
    return json::object{{"experiment", ToJson(e)}};
  }, false);
  auto search_experiments = [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(SearchRequest req, SearchOf(f, "view_type"));
    ABGATE_ASSIGN_OR_RETURN(auto page, s.SearchExperiments(req));
    json::object out;
    if (!page.items.empty()) out["experiments"] = JsonArray(page.items);
    if (!page.next_page_token.empty()) out["next_page_token"] = page.next_page_token;
    return out;
  };
  Add("POST", "experiments/search", search_experiments, false);
  Add("GET", "experiments/search", search_experiments, false);
  for (const auto& [path, deleted] : {std::pair{"experiments/delete", true}, std::pair{"experiments/restore", false}}) {
    Add("POST", path, [&s, deleted = deleted](const Fields& f) -> absl::StatusOr<json::object> {
      ABGATE_ASSIGN_OR_RETURN(auto id_text, f.OptId("experiment_id"));
      if (!id_text || id_text->empty()) return Missing("experiment_id");
      ABGATE_ASSIGN_OR_RETURN(int64_t id, ExperimentIdOf(*id_text));
      ABGATE_RETURN_IF_ERROR(s.SetExperimentLifecycle(id, deleted));
      return json::object{};
    });
  }
  Add("POST", "experiments/update", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(auto id_text, f.OptId("experiment_id"));
    if (!id_text || id_text->empty()) return Missing("experiment_id");
    ABGATE_ASSIGN_OR_RETURN(std::string new_name, f.Required("new_name"));
    ABGATE_ASSIGN_OR_RETURN(int64_t id, ExperimentIdOf(*id_text));
    ABGATE_RETURN_IF_ERROR(s.RenameExperiment(id, new_name));
    return json::object{};
  });
  Add("POST", "experiments/set-experiment-tag", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(auto id_text, f.OptId("experiment_id"));
    if (!id_text || id_text->empty()) return Missing("experiment_id");
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("key"));
    ABGATE_ASSIGN_OR_RETURN(std::string value, f.String("value"));
    ABGATE_RETURN_IF_ERROR(ValidateKey("tag", key));
    ABGATE_ASSIGN_OR_RETURN(int64_t id, ExperimentIdOf(*id_text));
    ABGATE_RETURN_IF_ERROR(s.SetExperimentTag(id, key, value));
    return json::object{};
  });

  // ---- runs ----
  Add("POST", "runs/create", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(auto id_text, f.OptId("experiment_id"));
    ABGATE_ASSIGN_OR_RETURN(int64_t id, ExperimentIdOf(id_text && !id_text->empty() ? *id_text : "0"));
    ABGATE_ASSIGN_OR_RETURN(std::string user, f.String("user_id"));
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.String("run_name"));
    ABGATE_ASSIGN_OR_RETURN(auto start, f.OptInt("start_time"));
    ABGATE_ASSIGN_OR_RETURN(TagMap tags, TagsOf(f));
    for (const auto& [k, v] : tags) ABGATE_RETURN_IF_ERROR(ValidateKey("tag", k));
    ABGATE_ASSIGN_OR_RETURN(Run run, s.CreateRun(id, user, name, start, tags));
    return json::object{{"run", ToJson(run)}};
  });
  Add("GET", "runs/get", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    ABGATE_ASSIGN_OR_RETURN(Run run, s.GetRun(run_id));
    return json::object{{"run", ToJson(run)}};
  }, false);
  Add("POST", "runs/update", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    ABGATE_ASSIGN_OR_RETURN(auto status, f.OptString("status"));
    // An unknown status name is dropped, as MLflow's proto parser drops unknown enum names.
    static const std::vector<std::string> kStatuses = {"RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"};
    if (status && std::find(kStatuses.begin(), kStatuses.end(), *status) == kStatuses.end()) status.reset();
    ABGATE_ASSIGN_OR_RETURN(auto end_time, f.OptInt("end_time"));
    ABGATE_ASSIGN_OR_RETURN(auto name, f.OptString("run_name"));
    ABGATE_ASSIGN_OR_RETURN(Run run, s.UpdateRun(run_id, status, end_time, name));
    return json::object{{"run_info", RunInfoJson(run)}};
  });
  for (const auto& [path, deleted] : {std::pair{"runs/delete", true}, std::pair{"runs/restore", false}}) {
    Add("POST", path, [&s, deleted = deleted](const Fields& f) -> absl::StatusOr<json::object> {
      ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
      ABGATE_RETURN_IF_ERROR(s.SetRunLifecycle(run_id, deleted));
      return json::object{};
    });
  }
  Add("POST", "runs/log-metric", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("key"));
    const json::value* value = f.Find("value");
    if (!value) return Missing("value");
    ABGATE_ASSIGN_OR_RETURN(double v, MetricValueOf(*value, "value"));
    ABGATE_ASSIGN_OR_RETURN(auto ts, f.OptInt("timestamp"));
    if (!ts) return Missing("timestamp");
    ABGATE_ASSIGN_OR_RETURN(auto step, f.OptInt("step"));
    ABGATE_RETURN_IF_ERROR(ValidateKey("metric", key));
    ABGATE_RETURN_IF_ERROR(s.LogBatch(run_id, {Metric{key, v, *ts, step.value_or(0)}}, {}, {}));
    return json::object{};
  });
  Add("POST", "runs/log-parameter", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("key"));
    ABGATE_ASSIGN_OR_RETURN(std::string value, f.String("value"));
    ABGATE_RETURN_IF_ERROR(ValidateKey("param", key));
    if (value.size() > 6000) return Invalid(StrCat("Param value for key '", key, "' exceeds the maximum length of 6000"));
    ABGATE_RETURN_IF_ERROR(s.LogBatch(run_id, {}, {{key, value}}, {}));
    return json::object{};
  });
  Add("POST", "runs/set-tag", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("key"));
    ABGATE_ASSIGN_OR_RETURN(std::string value, f.String("value"));
    ABGATE_RETURN_IF_ERROR(ValidateKey("tag", key));
    ABGATE_RETURN_IF_ERROR(s.LogBatch(run_id, {}, {}, {{key, value}}));
    return json::object{};
  });
  Add("POST", "runs/delete-tag", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("key"));
    ABGATE_RETURN_IF_ERROR(s.DeleteRunTag(run_id, key));
    return json::object{};
  });
  Add("POST", "runs/log-batch", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    std::vector<Metric> metrics;
    if (const json::value* mv = f.Find("metrics")) {
      if (!mv->is_array()) return WrongType("metrics", *mv, "a list");
      const auto& arr = mv->as_array();
      if (arr.size() > 1000) {
        return Invalid(StrCat("A batch logging request can contain at most 1000 metrics. Got ",
                              static_cast<int64_t>(arr.size()), " metrics. Please split up metrics across multiple "
                              "requests and try again."));
      }
      for (size_t i = 0; i < arr.size(); ++i) {
        const std::string path = StrCat("metrics[", static_cast<int64_t>(i), "]");
        if (!arr[i].is_object()) return WrongType(path, arr[i], "an object");
        const Fields m(arr[i].as_object(), false);
        ABGATE_ASSIGN_OR_RETURN(auto key, m.OptString("key"));
        if (!key || key->empty()) return Missing(StrCat(path, ".key"));
        const json::value* value = m.Find("value");
        if (!value) return Missing(StrCat(path, ".value"));
        ABGATE_ASSIGN_OR_RETURN(double v, MetricValueOf(*value, StrCat(path, ".value")));
        auto ts = m.OptInt("timestamp");
        if (!ts.ok()) return WrongType(StrCat(path, ".timestamp"), *m.Find("timestamp"), "an integer");
        if (!*ts) return Missing(StrCat(path, ".timestamp"));
        auto step = m.OptInt("step");
        if (!step.ok()) return WrongType(StrCat(path, ".step"), *m.Find("step"), "an integer");
        ABGATE_RETURN_IF_ERROR(ValidateKey("metric", *key));
        metrics.push_back(Metric{*key, v, **ts, step->value_or(0)});
      }
    }
    ABGATE_ASSIGN_OR_RETURN(auto params, f.KeyValues("params"));
    ABGATE_ASSIGN_OR_RETURN(auto tags, f.KeyValues("tags"));
    if (params.size() > 100) {
      return Invalid(StrCat("A batch logging request can contain at most 100 params. Got ",
                            static_cast<int64_t>(params.size()), " params. Please split up params across multiple "
                            "requests and try again."));
    }
    if (tags.size() > 100) {
      return Invalid(StrCat("A batch logging request can contain at most 100 tags. Got ",
                            static_cast<int64_t>(tags.size()), " tags. Please split up tags across multiple "
                            "requests and try again."));
    }
    if (metrics.size() + params.size() + tags.size() > 1000) {
      return Invalid("A batch logging request can contain at most 1000 total entities (metrics, params and tags).");
    }
    for (const auto& [k, v] : params) {
      ABGATE_RETURN_IF_ERROR(ValidateKey("param", k));
      if (v.size() > 6000) return Invalid(StrCat("Param value for key '", k, "' exceeds the maximum length of 6000"));
    }
    for (const auto& [k, v] : tags) ABGATE_RETURN_IF_ERROR(ValidateKey("tag", k));
    ABGATE_RETURN_IF_ERROR(s.LogBatch(run_id, metrics, params, tags));
    return json::object{};
  });
  Add("POST", "runs/log-model", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    ABGATE_ASSIGN_OR_RETURN(std::string model_json, f.Required("model_json"));
    boost::system::error_code ec;
    json::value model = json::parse(model_json, ec);
    if (ec || !model.is_object()) return Invalid(StrCat("Malformed model info. \n ", model_json, "\n is not a valid JSON."));
    for (const char* key : {"artifact_path", "flavors", "utc_time_created", "run_id"}) {
      if (!model.as_object().contains(key)) {
        return Invalid(StrCat("Model json is missing mandatory fields: ['", key, "']"));
      }
    }
    ABGATE_ASSIGN_OR_RETURN(Run run, s.GetRun(run_id));
    json::array history;
    if (auto it = run.tags.find("mlflow.log-model.history"); it != run.tags.end()) {
      json::value old = json::parse(it->second, ec);
      if (!ec && old.is_array()) history = std::move(old).as_array();
    }
    history.push_back(std::move(model));
    ABGATE_RETURN_IF_ERROR(s.LogBatch(run_id, {}, {}, {{"mlflow.log-model.history", config::ToJson(history)}}));
    return json::object{};
  });
  Add("POST", "runs/search", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(auto ids_text, f.StringList("experiment_ids"));
    std::vector<int64_t> ids;
    for (const auto& t : ids_text) {
      auto id = ExperimentIdOf(t);
      if (id.ok()) ids.push_back(*id);  // an unknown id matches nothing
    }
    ABGATE_ASSIGN_OR_RETURN(SearchRequest req, SearchOf(f, "run_view_type"));
    ABGATE_ASSIGN_OR_RETURN(auto page, s.SearchRuns(ids, req));
    json::object out;
    if (!page.items.empty()) out["runs"] = JsonArray(page.items);
    if (!page.next_page_token.empty()) out["next_page_token"] = page.next_page_token;
    return out;
  }, false);
  Add("GET", "metrics/get-history", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("metric_key"));
    ABGATE_ASSIGN_OR_RETURN(auto history, s.GetMetricHistory(run_id, key));
    json::object out;
    if (!history.empty()) out["metrics"] = JsonArray(history);
    return out;
  }, false);
  Add("GET", "artifacts/list", [this](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, RunIdOf(f));
    ABGATE_ASSIGN_OR_RETURN(std::string sub, f.String("path"));
    ABGATE_ASSIGN_OR_RETURN(std::string root_uri, store.RunArtifactUri(run_id));
    json::object out{{"root_uri", root_uri}};
    auto local = ArtifactPathOf(root_uri, sub);
    if (!local.ok()) return out;  // not a proxied location: nothing this server can list
    ABGATE_ASSIGN_OR_RETURN(auto files, artifacts.List(*local));
    if (!files.empty()) {
      json::array arr;
      for (const FileInfo& fi : files) {
        json::object o{{"path", sub.empty() ? fi.path : StrCat(sub, "/", fi.path)}, {"is_dir", fi.is_dir}};
        if (!fi.is_dir) o["file_size"] = fi.file_size;
        arr.push_back(std::move(o));
      }
      out["files"] = std::move(arr);
    }
    return out;
  }, false);

  // ---- registered models ----
  Add("POST", "registered-models/create", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(TagMap tags, TagsOf(f));
    ABGATE_ASSIGN_OR_RETURN(auto description, f.OptString("description"));
    ABGATE_ASSIGN_OR_RETURN(RegisteredModel m, s.CreateRegisteredModel(name, tags, description));
    return json::object{{"registered_model", ToJson(m, false)}};
  });
  Add("GET", "registered-models/get", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(RegisteredModel m, s.GetRegisteredModel(name));
    return json::object{{"registered_model", ToJson(m, true)}};
  }, false);
  Add("POST", "registered-models/rename", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string new_name, f.Required("new_name"));
    ABGATE_ASSIGN_OR_RETURN(RegisteredModel m, s.RenameRegisteredModel(name, new_name));
    return json::object{{"registered_model", ToJson(m, false)}};
  });
  Add("PATCH", "registered-models/update", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(auto description, f.OptString("description"));
    ABGATE_ASSIGN_OR_RETURN(RegisteredModel m, s.UpdateRegisteredModel(name, description));
    return json::object{{"registered_model", ToJson(m, false)}};
  });
  Add("DELETE", "registered-models/delete", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_RETURN_IF_ERROR(s.DeleteRegisteredModel(name));
    return json::object{};
  });
  Add("GET", "registered-models/search", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(SearchRequest req, SearchOf(f, ""));
    ABGATE_ASSIGN_OR_RETURN(auto page, s.SearchRegisteredModels(req));
    json::object out;
    if (!page.items.empty()) {
      json::array arr;
      for (const auto& m : page.items) arr.push_back(ToJson(m, true));
      out["registered_models"] = std::move(arr);
    }
    if (!page.next_page_token.empty()) out["next_page_token"] = page.next_page_token;
    return out;
  }, false);
  Add("POST", "registered-models/set-tag", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("key"));
    ABGATE_ASSIGN_OR_RETURN(std::string value, f.String("value"));
    ABGATE_RETURN_IF_ERROR(ValidateKey("tag", key));
    ABGATE_RETURN_IF_ERROR(s.SetRegisteredModelTag(name, key, value));
    return json::object{};
  });
  Add("DELETE", "registered-models/delete-tag", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("key"));
    ABGATE_RETURN_IF_ERROR(s.DeleteRegisteredModelTag(name, key));
    return json::object{};
  });
  auto latest = [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(auto stages, f.StringList("stages"));
    ABGATE_ASSIGN_OR_RETURN(auto versions, s.GetLatestVersions(name, stages));
    json::object out;
    if (!versions.empty()) {
      json::array arr;
      for (const auto& v : versions) arr.push_back(ToJson(v, {}));
      out["model_versions"] = std::move(arr);
    }
    return out;
  };
  Add("POST", "registered-models/get-latest-versions", latest, false);
  Add("GET", "registered-models/get-latest-versions", latest, false);
  Add("POST", "registered-models/alias", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string alias, f.Required("alias"));
    ABGATE_ASSIGN_OR_RETURN(std::string version, f.Required("version"));
    ABGATE_RETURN_IF_ERROR(s.SetAlias(name, alias, version));
    return json::object{};
  });
  Add("DELETE", "registered-models/alias", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string alias, f.Required("alias"));
    ABGATE_RETURN_IF_ERROR(s.DeleteAlias(name, alias));
    return json::object{};
  });
  Add("GET", "registered-models/alias", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string alias, f.Required("alias"));
    ABGATE_ASSIGN_OR_RETURN(auto mv, s.GetVersionByAlias(name, alias));
    return json::object{{"model_version", ToJson(mv.first, mv.second)}};
  }, false);

  // ---- model versions ----
  Add("POST", "model-versions/create", [this](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string source, f.Required("source"));
    ABGATE_ASSIGN_OR_RETURN(std::string run_id, f.String("run_id"));
    ABGATE_ASSIGN_OR_RETURN(TagMap tags, TagsOf(f));
    ABGATE_ASSIGN_OR_RETURN(std::string run_link, f.String("run_link"));
    ABGATE_ASSIGN_OR_RETURN(auto description, f.OptString("description"));
    ABGATE_RETURN_IF_ERROR(CheckSource(source, run_id));
    ABGATE_ASSIGN_OR_RETURN(ModelVersion v,
                            store.CreateModelVersion(name, source, run_id, tags, run_link, description));
    return json::object{{"model_version", ToJson(v, {})}};
  });
  Add("GET", "model-versions/get", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string version, f.Required("version"));
    ABGATE_ASSIGN_OR_RETURN(auto mv, s.GetModelVersion(name, version));
    return json::object{{"model_version", ToJson(mv.first, mv.second)}};
  }, false);
  Add("PATCH", "model-versions/update", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string version, f.Required("version"));
    ABGATE_ASSIGN_OR_RETURN(auto description, f.OptString("description"));
    ABGATE_ASSIGN_OR_RETURN(ModelVersion v, s.UpdateModelVersion(name, version, description));
    return json::object{{"model_version", ToJson(v, {})}};
  });
  Add("POST", "model-versions/transition-stage", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string version, f.Required("version"));
    ABGATE_ASSIGN_OR_RETURN(std::string stage, f.Required("stage"));
    ABGATE_ASSIGN_OR_RETURN(auto archive, f.OptBool("archive_existing_versions"));
    ABGATE_ASSIGN_OR_RETURN(ModelVersion v, s.TransitionStage(name, version, stage, archive.value_or(false)));
    return json::object{{"model_version", ToJson(v, {})}};
  });
  Add("DELETE", "model-versions/delete", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string version, f.Required("version"));
    ABGATE_RETURN_IF_ERROR(s.DeleteModelVersion(name, version));
    return json::object{};
  });
  Add("GET", "model-versions/search", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(SearchRequest req, SearchOf(f, ""));
    ABGATE_ASSIGN_OR_RETURN(auto page, s.SearchModelVersions(req));
    json::object out;
    if (!page.items.empty()) {
      json::array arr;
      for (const auto& [v, aliases] : page.items) arr.push_back(ToJson(v, aliases));
      out["model_versions"] = std::move(arr);
    }
    if (!page.next_page_token.empty()) out["next_page_token"] = page.next_page_token;
    return out;
  }, false);
  Add("GET", "model-versions/get-download-uri", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string version, f.Required("version"));
    ABGATE_ASSIGN_OR_RETURN(auto mv, s.GetModelVersion(name, version));
    return json::object{{"artifact_uri", mv.first.source}};
  }, false);
  Add("POST", "model-versions/set-tag", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string version, f.Required("version"));
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("key"));
    ABGATE_ASSIGN_OR_RETURN(std::string value, f.String("value"));
    ABGATE_RETURN_IF_ERROR(ValidateKey("tag", key));
    ABGATE_RETURN_IF_ERROR(s.SetModelVersionTag(name, version, key, value));
    return json::object{};
  });
  Add("DELETE", "model-versions/delete-tag", [&s](const Fields& f) -> absl::StatusOr<json::object> {
    ABGATE_ASSIGN_OR_RETURN(std::string name, f.Required("name"));
    ABGATE_ASSIGN_OR_RETURN(std::string version, f.Required("version"));
    ABGATE_ASSIGN_OR_RETURN(std::string key, f.Required("key"));
    ABGATE_RETURN_IF_ERROR(s.DeleteModelVersionTag(name, version, key));
    return json::object{};
  });
}

RegistryServer::RegistryServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RegistryServer::~RegistryServer() { Shutdown(); }

absl::StatusOr<std::unique_ptr<RegistryServer>> RegistryServer::Create(RegistryStore& store, ArtifactStore artifacts,
                                                                       RegistryServerOptions options) {
  auto impl = std::make_unique<Impl>(store, std::move(artifacts), options);
  http::ServerOptions server_options;
  server_options.host = options.host;
  server_options.port = options.port;
  server_options.max_body_bytes = options.max_body_bytes;
  server_options.read_timeout_us = options.read_timeout_us;
  server_options.max_connections = options.max_connections;
  Impl* raw = impl.get();
  server_options.head_handler = [raw](const http::Request& head) { return raw->Head(head); };
  ABGATE_ASSIGN_OR_RETURN(impl->service, http::Service::Create(options.threads, server_options,
                                                               [raw](http::Request& req, http::Respond respond) {
                                                                 std::move(respond)(raw->Handle(req));
                                                               }));
  return std::unique_ptr<RegistryServer>(new RegistryServer(std::move(impl)));
}

uint16_t RegistryServer::port() const { return impl_->service->port(); }

void RegistryServer::Start() { impl_->service->Start(); }

void RegistryServer::Shutdown() {
  if (impl_ && impl_->service) impl_->service->Shutdown();
}

}  // namespace abgate::registry
