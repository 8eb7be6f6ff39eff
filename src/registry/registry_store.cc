#include "registry/registry_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <mutex>
#include <regex>
#include <unordered_map>
#include <variant>

#include "absl/container/flat_hash_set.h"
#include "common/random.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "sqlite/database.h"

namespace abgate::registry {
namespace {

// Schema version 1. Timestamps are integer milliseconds since the Unix epoch (MLflow's unit).
constexpr int kSchemaVersion = 1;
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS experiments (
  experiment_id     INTEGER PRIMARY KEY,
  name              TEXT    NOT NULL UNIQUE,
  artifact_location TEXT    NOT NULL,
  lifecycle_stage   TEXT    NOT NULL,
  creation_time     INTEGER NOT NULL,
  last_update_time  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS experiment_tags (
  experiment_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (experiment_id, key)
);
CREATE TABLE IF NOT EXISTS runs (
  run_uuid        TEXT    PRIMARY KEY,
  name            TEXT    NOT NULL,
  experiment_id   INTEGER NOT NULL,
  user_id         TEXT    NOT NULL,
  status          TEXT    NOT NULL,
  start_time      INTEGER NOT NULL,
  end_time        INTEGER,
  artifact_uri    TEXT    NOT NULL,
  lifecycle_stage TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS params (
  run_uuid TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_uuid, key)
);
CREATE TABLE IF NOT EXISTS tags (
  run_uuid TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_uuid, key)
);
CREATE TABLE IF NOT EXISTS metrics (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  run_uuid  TEXT    NOT NULL,
  key       TEXT    NOT NULL,
  value     REAL,
  is_nan    INTEGER NOT NULL,
  timestamp INTEGER NOT NULL,
  step      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_by_run_key ON metrics (run_uuid, key);
CREATE TABLE IF NOT EXISTS latest_metrics (
  run_uuid TEXT NOT NULL, key TEXT NOT NULL, value REAL, is_nan INTEGER NOT NULL,
  timestamp INTEGER NOT NULL, step INTEGER NOT NULL, PRIMARY KEY (run_uuid, key)
);
CREATE TABLE IF NOT EXISTS registered_models (
  name TEXT PRIMARY KEY, creation_time INTEGER NOT NULL, last_updated_time INTEGER NOT NULL, description TEXT
);
CREATE TABLE IF NOT EXISTS registered_model_tags (
  name TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name, key)
);
CREATE TABLE IF NOT EXISTS registered_model_aliases (
  name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (name, alias)
);
CREATE TABLE IF NOT EXISTS model_versions (
  name              TEXT    NOT NULL,
  version           INTEGER NOT NULL,
  creation_time     INTEGER NOT NULL,
  last_updated_time INTEGER NOT NULL,
  description       TEXT,
  user_id           TEXT    NOT NULL,
  current_stage     TEXT    NOT NULL,
  source            TEXT    NOT NULL,
  run_id            TEXT    NOT NULL,
  run_link          TEXT    NOT NULL,
  status            TEXT    NOT NULL,
  status_message    TEXT    NOT NULL,
  deleted           INTEGER NOT NULL,
  PRIMARY KEY (name, version)
);
CREATE TABLE IF NOT EXISTS model_version_tags (
  name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
  PRIMARY KEY (name, version, key)
);
)sql";

absl::Status Invalid(std::string_view m) { return absl::InvalidArgumentError(std::string(m)); }
absl::Status NotFound(std::string_view m) { return absl::NotFoundError(std::string(m)); }

constexpr const char* kStages[] = {"None", "Staging", "Production", "Archived"};

std::optional<std::string> CanonicalStage(std::string_view stage) {
  for (const char* s : kStages) {
    if (stage.size() == std::strlen(s) &&
        std::equal(stage.begin(), stage.end(), s, [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return std::string(s);
    }
  }
  return std::nullopt;
}

// Adjective-noun-number run names, as MLflow makes up when none is given.
std::string RandomRunName(common::Xoshiro256& rng) {
  static constexpr const char* kAdjectives[] = {"able", "bold", "calm", "clean", "crisp", "eager", "fair", "keen",
                                                "lucky", "merry", "neat", "quick", "sharp", "suave", "wise"};
  static constexpr const char* kNouns[] = {"ant", "bat", "cat", "doe", "eel", "fox", "foal", "gnu",
                                           "hen", "jay", "koi", "lark", "owl", "ram", "yak"};
  return StrCat(kAdjectives[rng() % std::size(kAdjectives)], "-", kNouns[rng() % std::size(kNouns)], "-",
                static_cast<int>(rng() % 1000));
}

std::string RandomRunId(common::Xoshiro256& rng) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  uint64_t a = rng(), b = rng();
  for (int i = 0; i < 16; ++i) id[i] = kHex[(a >> (4 * i)) & 15];
  for (int i = 0; i < 16; ++i) id[16 + i] = kHex[(b >> (4 * i)) & 15];
  return id;
}

// MLflow's rule for the latest value of a metric: the greatest (step, timestamp, value).
bool IsNewer(const Metric& m, const Metric& latest) {
  if (m.step != latest.step) return m.step > latest.step;
  if (m.timestamp != latest.timestamp) return m.timestamp > latest.timestamp;
  if (std::isnan(latest.value)) return !std::isnan(m.value);
  return m.value > latest.value;
}

int64_t Clamp(int64_t v, int64_t def) { return v <= 0 ? def : v; }

absl::Status CheckMaxResults(int64_t max_results, int64_t limit) {
  if (max_results > limit) {
    return Invalid(StrCat("Invalid value ", max_results, " for parameter 'max_results' supplied. It must be at most ",
                          limit, ", but got value ", max_results));
  }
  if (max_results < 0) {
    return Invalid(StrCat("Invalid value ", max_results, " for parameter 'max_results' supplied. It must be positive"));
  }
  return absl::OkStatus();
}

// Stable multi-key sort: each key compares two items as -1/0/+1, with "missing" sorting last.
template <typename T>
using Key = std::function<int(const T&, const T&)>;

template <typename T>
void SortBy(std::vector<T>& items, const std::vector<Key<T>>& keys) {
  std::stable_sort(items.begin(), items.end(), [&](const T& a, const T& b) {
    for (const auto& key : keys) {
      const int c = key(a, b);
      if (c != 0) return c < 0;
    }
    return false;
  });
}

template <typename V>
int Cmp(const V& a, const V& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Compares optional values: present before missing, whatever the direction.
template <typename V>
int CmpOpt(const std::optional<V>& a, const std::optional<V>& b, bool ascending) {
  if (!a && !b) return 0;
  if (!a) return 1;
  if (!b) return -1;
  const int c = Cmp(*a, *b);
  return ascending ? c : -c;
}

template <typename T>
Page<T> Paginate(std::vector<T> all, int64_t offset, int64_t max_results) {
  Page<T> page;
  if (offset >= static_cast<int64_t>(all.size())) return page;
  const int64_t end = std::min<int64_t>(all.size(), offset + max_results);
  page.items.assign(std::make_move_iterator(all.begin() + offset), std::make_move_iterator(all.begin() + end));
  if (end < static_cast<int64_t>(all.size())) page.next_page_token = EncodePageToken(end);
  return page;
}

bool ViewMatches(ViewType view, const std::string& lifecycle_stage) {
  switch (view) {
    case ViewType::kActiveOnly: return lifecycle_stage == "active";
    case ViewType::kDeletedOnly: return lifecycle_stage == "deleted";
    case ViewType::kAll: return true;
  }
  return true;
}

std::optional<std::string> FindTag(const TagMap& m, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

}  // namespace

absl::StatusOr<int64_t> ParseVersion(const std::string& version) {
  int64_t v = 0;
  const auto [ptr, ec] = std::from_chars(version.data(), version.data() + version.size(), v);
  if (version.empty() || ec != std::errc() || ptr != version.data() + version.size()) {
    return Invalid(StrCat("Model version must be an integer, got '", version, "'"));
  }
  return v;
}

namespace {
using Value = sqlite::Database::Value;

std::string Text(sqlite3_stmt* st, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, col));
  return p ? std::string(p, sqlite3_column_bytes(st, col)) : std::string();
}
std::optional<std::string> OptText(sqlite3_stmt* st, int col) {
  if (sqlite3_column_type(st, col) == SQLITE_NULL) return std::nullopt;
  return Text(st, col);
}
int64_t Int(sqlite3_stmt* st, int col) { return sqlite3_column_int64(st, col); }
double MetricValue(sqlite3_stmt* st, int value_col, int nan_col) {
  return Int(st, nan_col) ? std::nan("") : sqlite3_column_double(st, value_col);
}
Value Opt(const std::optional<std::string>& s) { return s ? Value(*s) : Value(nullptr); }
Value Double(double d) { return std::isnan(d) ? Value(0.0) : Value(d); }
}  // namespace

RegistryStore::RegistryStore(std::unique_ptr<sqlite::Database> db, const common::Clock& clock) : db_(std::move(db)), clock_(clock) {}
RegistryStore::~RegistryStore() = default;

int64_t RegistryStore::NowMs() const { return clock_.NowUs() / 1000; }

absl::StatusOr<std::unique_ptr<RegistryStore>> RegistryStore::Open(const std::string& path, const common::Clock& clock) {
  ABGATE_ASSIGN_OR_RETURN(auto db,
                          sqlite::Database::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "registry store"));
  ABGATE_RETURN_IF_ERROR(db->ExecScript("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"));
  ABGATE_RETURN_IF_ERROR(db->ExecScript(kSchema));
  int64_t version = -1;
  ABGATE_RETURN_IF_ERROR(db->Query("SELECT MAX(version) FROM schema_version", {}, [&](sqlite3_stmt* st) {
    if (sqlite3_column_type(st, 0) != SQLITE_NULL) version = Int(st, 0);
  }));
  if (version > kSchemaVersion) {
    return absl::FailedPreconditionError(StrCat("registry store ", path, " has schema version ", version,
                                                ", newer than this abgate (", kSchemaVersion, ")"));
  }
  // Migrations from older versions go here, one step per version.
  if (version < kSchemaVersion) {
    ABGATE_RETURN_IF_ERROR(db->Exec("DELETE FROM schema_version", {}));
    ABGATE_RETURN_IF_ERROR(db->Exec("INSERT INTO schema_version (version) VALUES (?)", {int64_t{kSchemaVersion}}));
  }
  std::unique_ptr<RegistryStore> store(new RegistryStore(std::move(db), clock));
  common::WriterMutexLock lock(store->mu_);  // no other thread has it yet; for the annotations
  ABGATE_RETURN_IF_ERROR(store->Load());
  if (store->experiments_.empty()) {
    // MLflow's Default experiment, id 0.
    const int64_t now = store->NowMs();
    ABGATE_RETURN_IF_ERROR(store->db_->Exec(
        "INSERT INTO experiments VALUES (0, 'Default', 'mlflow-artifacts:/0', 'active', ?, ?)", {now, now}));
    Experiment e{0, "Default", "mlflow-artifacts:/0", "active", now, now, {}};
    store->experiment_ids_by_name_["Default"] = 0;
    store->experiments_[0] = std::move(e);
  }
  return store;
}

absl::Status RegistryStore::Load() {
  sqlite::Database& db = *db_;
  ABGATE_RETURN_IF_ERROR(db.Query("SELECT experiment_id, name, artifact_location, lifecycle_stage, creation_time, "
                                  "last_update_time FROM experiments",
                                  {}, [&](sqlite3_stmt* st) {
                                    mu_.AssertHeld();  // the lambda runs within the caller's lock
                                    Experiment e{Int(st, 0), Text(st, 1), Text(st, 2), Text(st, 3),
                                                 Int(st, 4), Int(st, 5), {}};
                                    experiment_ids_by_name_[e.name] = e.id;
                                    experiments_[e.id] = std::move(e);
                                  }));
  ABGATE_RETURN_IF_ERROR(db.Query("SELECT experiment_id, key, value FROM experiment_tags", {}, [&](sqlite3_stmt* st) {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    if (auto it = experiments_.find(Int(st, 0)); it != experiments_.end()) it->second.tags[Text(st, 1)] = Text(st, 2);
  }));
  ABGATE_RETURN_IF_ERROR(db.Query("SELECT run_uuid, name, experiment_id, user_id, status, start_time, end_time, "
                                  "artifact_uri, lifecycle_stage FROM runs",
                                  {}, [&](sqlite3_stmt* st) {
                                    mu_.AssertHeld();  // the lambda runs within the caller's lock
                                    Run r;
                                    r.run_id = Text(st, 0);
                                    r.run_name = Text(st, 1);
                                    r.experiment_id = Int(st, 2);
                                    r.user_id = Text(st, 3);
                                    r.status = Text(st, 4);
                                    r.start_time = Int(st, 5);
                                    if (sqlite3_column_type(st, 6) != SQLITE_NULL) r.end_time = Int(st, 6);
                                    r.artifact_uri = Text(st, 7);
                                    r.lifecycle_stage = Text(st, 8);
                                    runs_[r.run_id] = std::move(r);
                                  }));
  for (const char* table : {"params", "tags"}) {
    const bool params = std::string_view(table) == "params";
    ABGATE_RETURN_IF_ERROR(db.Query(StrCat("SELECT run_uuid, key, value FROM ", table), {}, [&](sqlite3_stmt* st) {
      mu_.AssertHeld();  // the lambda runs within the caller's lock
      if (auto it = runs_.find(Text(st, 0)); it != runs_.end()) {
        (params ? it->second.params : it->second.tags)[Text(st, 1)] = Text(st, 2);
      }
    }));
  }
  ABGATE_RETURN_IF_ERROR(db.Query("SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics", {},
                                  [&](sqlite3_stmt* st) {
                                    mu_.AssertHeld();  // the lambda runs within the caller's lock
                                    if (auto it = runs_.find(Text(st, 0)); it != runs_.end()) {
                                      Metric m{Text(st, 1), MetricValue(st, 2, 3), Int(st, 4), Int(st, 5)};
                                      it->second.latest_metrics[m.key] = m;
                                    }
                                  }));
  ABGATE_RETURN_IF_ERROR(db.Query("SELECT name, creation_time, last_updated_time, description FROM registered_models", {},
                                  [&](sqlite3_stmt* st) {
                                    mu_.AssertHeld();  // the lambda runs within the caller's lock
                                    RegisteredModel m;
                                    m.name = Text(st, 0);
                                    m.creation_timestamp = Int(st, 1);
                                    m.last_updated_timestamp = Int(st, 2);
                                    m.description = OptText(st, 3);
                                    models_[m.name] = std::move(m);
                                  }));
  ABGATE_RETURN_IF_ERROR(db.Query("SELECT name, key, value FROM registered_model_tags", {}, [&](sqlite3_stmt* st) {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    if (auto it = models_.find(Text(st, 0)); it != models_.end()) it->second.tags[Text(st, 1)] = Text(st, 2);
  }));
  ABGATE_RETURN_IF_ERROR(db.Query("SELECT name, alias, version FROM registered_model_aliases", {}, [&](sqlite3_stmt* st) {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    if (auto it = models_.find(Text(st, 0)); it != models_.end()) it->second.aliases[Text(st, 1)] = Int(st, 2);
  }));
  ABGATE_RETURN_IF_ERROR(db.Query("SELECT name, version, creation_time, last_updated_time, description, user_id, "
                                  "current_stage, source, run_id, run_link, status, status_message, deleted "
                                  "FROM model_versions",
                                  {}, [&](sqlite3_stmt* st) {
                                    mu_.AssertHeld();  // the lambda runs within the caller's lock
                                    auto it = models_.find(Text(st, 0));
                                    if (it == models_.end()) return;
                                    ModelVersion v;
                                    v.name = it->first;
                                    v.version = Int(st, 1);
                                    v.creation_timestamp = Int(st, 2);
                                    v.last_updated_timestamp = Int(st, 3);
                                    v.description = OptText(st, 4);
                                    v.user_id = Text(st, 5);
                                    v.current_stage = Text(st, 6);
                                    v.source = Text(st, 7);
                                    v.run_id = Text(st, 8);
                                    v.run_link = Text(st, 9);
                                    v.status = Text(st, 10);
                                    v.status_message = Text(st, 11);
                                    v.deleted = Int(st, 12) != 0;
                                    it->second.versions[v.version] = std::move(v);
                                  }));
  return db.Query("SELECT name, version, key, value FROM model_version_tags", {}, [&](sqlite3_stmt* st) {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    if (auto it = models_.find(Text(st, 0)); it != models_.end()) {
      if (auto v = it->second.versions.find(Int(st, 1)); v != it->second.versions.end()) {
        v->second.tags[Text(st, 2)] = Text(st, 3);
      }
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Lookups (callers hold the lock).

absl::StatusOr<Experiment*> RegistryStore::FindExperiment(int64_t id) {
  auto it = experiments_.find(id);
  if (it == experiments_.end()) return NotFound(StrCat("No Experiment with id=", id, " exists"));
  return &it->second;
}

absl::StatusOr<Run*> RegistryStore::FindRun(const std::string& run_id) {
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return NotFound(StrCat("Run with id=", run_id, " not found"));
  return &it->second;
}

absl::StatusOr<RegisteredModel*> RegistryStore::FindModel(const std::string& name) {
  auto it = models_.find(name);
  if (it == models_.end()) return NotFound(StrCat("Registered Model with name=", name, " not found"));
  return &it->second;
}

absl::StatusOr<ModelVersion*> RegistryStore::FindVersion(const std::string& name, const std::string& version) {
  ABGATE_ASSIGN_OR_RETURN(int64_t v, ParseVersion(version));
  auto model = models_.find(name);
  if (model != models_.end()) {
    auto it = model->second.versions.find(v);
    if (it != model->second.versions.end() && !it->second.deleted) return &it->second;
  }
  return NotFound(StrCat("Model Version (name=", name, ", version=", version, ") not found"));
}

absl::Status RegistryStore::CheckRunActive(const Run& run) const {
  if (run.lifecycle_stage != "active") {
    return Invalid(StrCat("The run ", run.run_id, " must be in the 'active' state. Current state is ",
                          run.lifecycle_stage, "."));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Experiments

absl::StatusOr<int64_t> RegistryStore::CreateExperiment(const std::string& name, std::string artifact_location,
                                                        const TagMap& tags) {
  if (name.empty()) return Invalid("Invalid experiment name: ''. Experiment name must be a non-empty string.");
  if (artifact_location.find_first_of("?#") != std::string::npos) {
    return Invalid(StrCat("'artifact_location' URL can't include fragments or params: ", artifact_location));
  }
  common::WriterMutexLock lock(mu_);
  if (experiment_ids_by_name_.count(name)) {
    return absl::AlreadyExistsError(StrCat("Experiment(name=", name, ") already exists. Error: (UNIQUE constraint "
                                           "failed: experiments.name)"));
  }
  const int64_t id = experiments_.empty() ? 0 : experiments_.rbegin()->first + 1;
  if (artifact_location.empty()) artifact_location = StrCat("mlflow-artifacts:/", id);
  const int64_t now = NowMs();
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT INTO experiments VALUES (?, ?, ?, 'active', ?, ?)",
                                     {id, name, artifact_location, now, now}));
    for (const auto& [k, v] : tags) {
      ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)", {id, k, v}));
    }
    return absl::OkStatus();
  }));
  experiments_[id] = Experiment{id, name, artifact_location, "active", now, now, tags};
  experiment_ids_by_name_[name] = id;
  return id;
}

absl::StatusOr<Experiment> RegistryStore::GetExperiment(int64_t id) const {
  common::ReaderMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Experiment * e, const_cast<RegistryStore*>(this)->FindExperiment(id));
  return *e;
}

absl::StatusOr<Experiment> RegistryStore::GetExperimentByName(const std::string& name) const {
  common::ReaderMutexLock lock(mu_);
  auto it = experiment_ids_by_name_.find(name);
  if (it == experiment_ids_by_name_.end()) return NotFound(StrCat("Could not find experiment with name '", name, "'"));
  return experiments_.at(it->second);
}

absl::StatusOr<Page<Experiment>> RegistryStore::SearchExperiments(const SearchRequest& req) const {
  ABGATE_RETURN_IF_ERROR(CheckMaxResults(req.max_results, 50000));
  static const FilterRules rules{{"name"}, {"creation_time", "last_update_time"}, {}, false, {KeyType::kTag},
                                 "['name', 'creation_time', 'last_update_time']"};
  ABGATE_ASSIGN_OR_RETURN(auto clauses, ParseFilter(req.filter, rules));
  ABGATE_ASSIGN_OR_RETURN(auto order, ParseOrderBy(req.order_by, {"name", "experiment_id", "creation_time",
                                                                  "last_update_time"},
                                                   {KeyType::kTag}));
  ABGATE_ASSIGN_OR_RETURN(int64_t offset, DecodePageToken(req.page_token));
  std::vector<Experiment> all;
  {
    common::ReaderMutexLock lock(mu_);
    for (const auto& entry : experiments_) {
      const auto& e = entry.second;  // a named reference: clang 14 cannot capture a structured binding
      if (!ViewMatches(req.view_type, e.lifecycle_stage)) continue;
      const bool match = std::all_of(clauses.begin(), clauses.end(), [&](const Clause& c) {
        if (c.type == KeyType::kTag) {
          auto t = FindTag(e.tags, c.key);
          return t && MatchString(c, *t);
        }
        if (c.key == "name") return MatchString(c, e.name);
        return MatchNumber(c, static_cast<double>(c.key == "creation_time" ? e.creation_time : e.last_update_time));
      });
      if (match) all.push_back(e);
    }
  }
  std::vector<Key<Experiment>> keys;
  bool has_id = false;
  for (const OrderBy& o : order) {
    const bool asc = o.ascending;
    if (o.type == KeyType::kTag) {
      keys.push_back([o](const Experiment& a, const Experiment& b) {
        return CmpOpt(FindTag(a.tags, o.key), FindTag(b.tags, o.key), o.ascending);
      });
    } else if (o.key == "name") {
      keys.push_back([asc](const Experiment& a, const Experiment& b) { return asc ? Cmp(a.name, b.name) : Cmp(b.name, a.name); });
    } else if (o.key == "experiment_id") {
      has_id = true;
      keys.push_back([asc](const Experiment& a, const Experiment& b) { return asc ? Cmp(a.id, b.id) : Cmp(b.id, a.id); });
    } else if (o.key == "creation_time") {
      keys.push_back([asc](const Experiment& a, const Experiment& b) {
        return asc ? Cmp(a.creation_time, b.creation_time) : Cmp(b.creation_time, a.creation_time);
      });
    } else {
      keys.push_back([asc](const Experiment& a, const Experiment& b) {
        return asc ? Cmp(a.last_update_time, b.last_update_time) : Cmp(b.last_update_time, a.last_update_time);
      });
    }
  }
  if (order.empty()) {
    keys.push_back([](const Experiment& a, const Experiment& b) { return Cmp(b.creation_time, a.creation_time); });
  }
  if (!has_id) keys.push_back([](const Experiment& a, const Experiment& b) { return Cmp(a.id, b.id); });
  SortBy(all, keys);
  return Paginate(std::move(all), offset, Clamp(req.max_results, 1000));
}

absl::Status RegistryStore::SetExperimentLifecycle(int64_t id, bool deleted) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Experiment * e, FindExperiment(id));
  if (deleted && id == 0) return Invalid("Cannot delete the default experiment '0'. This is an internally reserved experiment.");
  const std::string stage = deleted ? "deleted" : "active";
  if (!deleted && e->lifecycle_stage != "deleted") {
    return Invalid(StrCat("Cannot restore an experiment that is not deleted: ", id));
  }
  const int64_t now = NowMs();
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    ABGATE_RETURN_IF_ERROR(db_->Exec("UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? "
                                     "WHERE experiment_id = ?",
                                     {stage, now, id}));
    // MLflow deletes and restores the experiment's runs with it.
    return db_->Exec("UPDATE runs SET lifecycle_stage = ? WHERE experiment_id = ?", {stage, id});
  }));
  e->lifecycle_stage = stage;
  e->last_update_time = now;
  for (auto& [rid, run] : runs_) {
    if (run.experiment_id == id) run.lifecycle_stage = stage;
  }
  return absl::OkStatus();
}

absl::Status RegistryStore::RenameExperiment(int64_t id, const std::string& new_name) {
  if (new_name.empty()) return Invalid("Invalid experiment name: ''. Experiment name must be a non-empty string.");
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Experiment * e, FindExperiment(id));
  if (e->lifecycle_stage != "active") return Invalid("Cannot rename a non-active experiment.");
  if (auto it = experiment_ids_by_name_.find(new_name); it != experiment_ids_by_name_.end() && it->second != id) {
    return absl::AlreadyExistsError(StrCat("Experiment(name=", new_name, ") already exists."));
  }
  const int64_t now = NowMs();
  ABGATE_RETURN_IF_ERROR(db_->Exec("UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?",
                                   {new_name, now, id}));
  experiment_ids_by_name_.erase(e->name);
  experiment_ids_by_name_[new_name] = id;
  e->name = new_name;
  e->last_update_time = now;
  return absl::OkStatus();
}

absl::Status RegistryStore::SetExperimentTag(int64_t id, const std::string& key, const std::string& value) {
  if (key.empty()) return Invalid("Missing value for required parameter 'key'.");
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Experiment * e, FindExperiment(id));
  if (e->lifecycle_stage != "active") {
    return Invalid(StrCat("The experiment ", id, " must be in the 'active' state. Current state is ",
                          e->lifecycle_stage, "."));
  }
  ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO experiment_tags VALUES (?, ?, ?)", {id, key, value}));
  e->tags[key] = value;
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Runs

absl::StatusOr<Run> RegistryStore::CreateRun(int64_t experiment_id, const std::string& user_id, std::string run_name,
                                             std::optional<int64_t> start_time, const TagMap& tags) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Experiment * e, FindExperiment(experiment_id));
  if (e->lifecycle_stage != "active") {
    return Invalid(StrCat("The experiment ", experiment_id, " must be in the 'active' state. Current state is ",
                          e->lifecycle_stage, "."));
  }
  thread_local common::Xoshiro256 rng = common::Xoshiro256::FromEntropy();
  Run run;
  run.run_id = RandomRunId(rng);
  // A name given as the tag mlflow.runName counts as the run name, as in MLflow.
  if (run_name.empty()) {
    if (auto it = tags.find("mlflow.runName"); it != tags.end()) run_name = it->second;
  }
  run.run_name = run_name.empty() ? RandomRunName(rng) : run_name;
  run.experiment_id = experiment_id;
  run.user_id = user_id;
  run.start_time = start_time.value_or(NowMs());
  run.artifact_uri = StrCat(e->artifact_location, "/", run.run_id, "/artifacts");
  run.tags = tags;
  run.tags["mlflow.runName"] = run.run_name;
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, NULL, ?, 'active')",
                                     {run.run_id, run.run_name, experiment_id, run.user_id, run.status,
                                      run.start_time, run.artifact_uri}));
    for (const auto& [k, v] : run.tags) {
      ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", {run.run_id, k, v}));
    }
    return absl::OkStatus();
  }));
  runs_[run.run_id] = run;
  return run;
}

absl::StatusOr<Run> RegistryStore::GetRun(const std::string& run_id) const {
  common::ReaderMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Run * r, const_cast<RegistryStore*>(this)->FindRun(run_id));
  return *r;
}

absl::StatusOr<std::string> RegistryStore::RunArtifactUri(const std::string& run_id) const {
  ABGATE_ASSIGN_OR_RETURN(Run r, GetRun(run_id));
  return r.artifact_uri;
}

absl::StatusOr<Run> RegistryStore::UpdateRun(const std::string& run_id, std::optional<std::string> status,
                                             std::optional<int64_t> end_time, std::optional<std::string> run_name) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Run * r, FindRun(run_id));
  ABGATE_RETURN_IF_ERROR(CheckRunActive(*r));
  Run next = *r;
  if (status) next.status = *status;
  if (end_time) next.end_time = *end_time;
  if (run_name && !run_name->empty()) {
    next.run_name = *run_name;
    next.tags["mlflow.runName"] = *run_name;
  }
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    ABGATE_RETURN_IF_ERROR(db_->Exec("UPDATE runs SET status = ?, end_time = ?, name = ? WHERE run_uuid = ?",
                                     {next.status, next.end_time ? Value(*next.end_time) : Value(nullptr),
                                      next.run_name, run_id}));
    return db_->Exec("INSERT OR REPLACE INTO tags VALUES (?, 'mlflow.runName', ?)", {run_id, next.run_name});
  }));
  *r = std::move(next);
  return *r;
}

absl::Status RegistryStore::SetRunLifecycle(const std::string& run_id, bool deleted) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Run * r, FindRun(run_id));
  const std::string stage = deleted ? "deleted" : "active";
  ABGATE_RETURN_IF_ERROR(db_->Exec("UPDATE runs SET lifecycle_stage = ? WHERE run_uuid = ?", {stage, run_id}));
  r->lifecycle_stage = stage;
  return absl::OkStatus();
}

absl::Status RegistryStore::LogBatch(const std::string& run_id, const std::vector<Metric>& metrics,
                                     const std::vector<std::pair<std::string, std::string>>& params,
                                     const std::vector<std::pair<std::string, std::string>>& tags) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Run * r, FindRun(run_id));
  ABGATE_RETURN_IF_ERROR(CheckRunActive(*r));
  // Validate everything before writing anything.
  TagMap new_params;
  for (const auto& [k, v] : params) {
    const auto old = r->params.find(k);
    const auto pending = new_params.find(k);
    const std::string* prev = old != r->params.end() ? &old->second : (pending != new_params.end() ? &pending->second : nullptr);
    if (prev && *prev != v) {
      return Invalid(StrCat("Changing param values is not allowed. Param with key='", k, "' was already logged with value='",
                            *prev, "' for run ID='", run_id, "'. Attempted logging new value '", v, "'."));
    }
    if (!prev) new_params[k] = v;
  }
  std::map<std::string, Metric> latest;
  for (const Metric& m : metrics) {
    auto it = latest.find(m.key);
    const Metric* current = it != latest.end() ? &it->second : nullptr;
    if (!current) {
      auto old = r->latest_metrics.find(m.key);
      if (old != r->latest_metrics.end()) current = &old->second;
    }
    if (!current || IsNewer(m, *current)) latest[m.key] = m;
  }
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    for (const auto& [k, v] : new_params) {
      ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT INTO params VALUES (?, ?, ?)", {run_id, k, v}));
    }
    for (const auto& [k, v] : tags) {
      ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO tags VALUES (?, ?, ?)", {run_id, k, v}));
    }
    for (const Metric& m : metrics) {
      ABGATE_RETURN_IF_ERROR(db_->Exec(
          "INSERT INTO metrics (run_uuid, key, value, is_nan, timestamp, step) VALUES (?, ?, ?, ?, ?, ?)",
          {run_id, m.key, Double(m.value), int64_t{std::isnan(m.value)}, m.timestamp, m.step}));
    }
    for (const auto& [k, m] : latest) {
      ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO latest_metrics VALUES (?, ?, ?, ?, ?, ?)",
                                       {run_id, k, Double(m.value), int64_t{std::isnan(m.value)}, m.timestamp, m.step}));
    }
    return absl::OkStatus();
  }));
  for (auto& [k, v] : new_params) r->params[k] = v;
  for (const auto& [k, v] : tags) {
    r->tags[k] = v;
    if (k == "mlflow.runName") r->run_name = v;
  }
  for (auto& [k, m] : latest) r->latest_metrics[k] = m;
  return absl::OkStatus();
}

absl::Status RegistryStore::DeleteRunTag(const std::string& run_id, const std::string& key) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(Run * r, FindRun(run_id));
  ABGATE_RETURN_IF_ERROR(CheckRunActive(*r));
  if (!r->tags.count(key)) {
    return NotFound(StrCat("No tag with name: ", key, " in run with id ", run_id));
  }
  ABGATE_RETURN_IF_ERROR(db_->Exec("DELETE FROM tags WHERE run_uuid = ? AND key = ?", {run_id, key}));
  r->tags.erase(key);
  return absl::OkStatus();
}

absl::StatusOr<Page<Run>> RegistryStore::SearchRuns(const std::vector<int64_t>& experiment_ids,
                                                    const SearchRequest& req) const {
  ABGATE_RETURN_IF_ERROR(CheckMaxResults(req.max_results, 50000));
  static const FilterRules rules{
      {"run_id", "run_name", "status", "user_id", "artifact_uri", "lifecycle_stage"},
      {"start_time", "end_time"},
      {"run_id"},
      true,
      {KeyType::kMetric, KeyType::kParam, KeyType::kTag, KeyType::kDataset},
      "['run_id', 'run_name', 'status', 'user_id', 'artifact_uri', 'start_time', 'end_time', 'created']"};
  ABGATE_ASSIGN_OR_RETURN(auto clauses, ParseFilter(req.filter, rules));
  ABGATE_ASSIGN_OR_RETURN(auto order,
                          ParseOrderBy(req.order_by, {"run_id", "run_name", "status", "user_id", "artifact_uri",
                                                      "start_time", "end_time", "experiment_id"},
                                       {KeyType::kMetric, KeyType::kParam, KeyType::kTag}));
  ABGATE_ASSIGN_OR_RETURN(int64_t offset, DecodePageToken(req.page_token));
  auto attribute = [](const Run& r, const std::string& key) -> std::string {
    if (key == "run_id") return r.run_id;
    if (key == "run_name") return r.run_name;
    if (key == "status") return r.status;
    if (key == "user_id") return r.user_id;
    if (key == "lifecycle_stage") return r.lifecycle_stage;
    return r.artifact_uri;
  };
  // A hash set, not a scan of the request's list per run (runs x ids was quadratic).
  const absl::flat_hash_set<int64_t> in_experiments(experiment_ids.begin(), experiment_ids.end());
  std::vector<Run> all;
  {
    common::ReaderMutexLock lock(mu_);
    for (const auto& entry : runs_) {
      const auto& r = entry.second;  // a named reference: clang 14 cannot capture a structured binding
      if (!in_experiments.contains(r.experiment_id)) continue;
      if (!ViewMatches(req.view_type, r.lifecycle_stage)) continue;
      const bool match = std::all_of(clauses.begin(), clauses.end(), [&](const Clause& c) {
        switch (c.type) {
          case KeyType::kMetric: {
            auto m = r.latest_metrics.find(c.key);
            return m != r.latest_metrics.end() && MatchNumber(c, m->second.value);
          }
          case KeyType::kParam: {
            auto p = FindTag(r.params, c.key);
            return p && MatchString(c, *p);
          }
          case KeyType::kTag: {
            auto t = FindTag(r.tags, c.key);
            return t && MatchString(c, *t);
          }
          case KeyType::kDataset:
            return false;  // dataset inputs are not stored: no run has any
          case KeyType::kAttribute:
            if (c.key == "start_time") return MatchNumber(c, static_cast<double>(r.start_time));
            if (c.key == "end_time") return r.end_time && MatchNumber(c, static_cast<double>(*r.end_time));
            return MatchString(c, attribute(r, c.key));
        }
        return false;
      });
      if (match) all.push_back(r);
    }
  }
  std::vector<Key<Run>> keys;
  bool has_start = false;
  for (const OrderBy& o : order) {
    switch (o.type) {
      case KeyType::kMetric:
        keys.push_back([o](const Run& a, const Run& b) {
          auto get = [&](const Run& r) -> std::optional<double> {
            auto it = r.latest_metrics.find(o.key);
            if (it == r.latest_metrics.end()) return std::nullopt;
            return it->second.value;
          };
          return CmpOpt(get(a), get(b), o.ascending);
        });
        break;
      case KeyType::kParam:
        keys.push_back([o](const Run& a, const Run& b) {
          return CmpOpt(FindTag(a.params, o.key), FindTag(b.params, o.key), o.ascending);
        });
        break;
      case KeyType::kTag:
        keys.push_back([o](const Run& a, const Run& b) {
          return CmpOpt(FindTag(a.tags, o.key), FindTag(b.tags, o.key), o.ascending);
        });
        break;
      default:
        if (o.key == "start_time") has_start = true;
        keys.push_back([o, attribute](const Run& a, const Run& b) {
          if (o.key == "start_time") return o.ascending ? Cmp(a.start_time, b.start_time) : Cmp(b.start_time, a.start_time);
          if (o.key == "end_time") return CmpOpt(a.end_time, b.end_time, o.ascending);
          if (o.key == "experiment_id") {
            return o.ascending ? Cmp(a.experiment_id, b.experiment_id) : Cmp(b.experiment_id, a.experiment_id);
          }
          const int c = Cmp(attribute(a, o.key), attribute(b, o.key));
          return o.ascending ? c : -c;
        });
    }
  }
  if (!has_start) keys.push_back([](const Run& a, const Run& b) { return Cmp(b.start_time, a.start_time); });
  keys.push_back([](const Run& a, const Run& b) { return Cmp(a.run_id, b.run_id); });
  SortBy(all, keys);
  return Paginate(std::move(all), offset, Clamp(req.max_results, 1000));
}

absl::StatusOr<std::vector<Metric>> RegistryStore::GetMetricHistory(const std::string& run_id,
                                                                    const std::string& key) const {
  common::WriterMutexLock lock(mu_);  // the Database's statement cache is not shareable
  ABGATE_RETURN_IF_ERROR(const_cast<RegistryStore*>(this)->FindRun(run_id).status());
  std::vector<Metric> out;
  ABGATE_RETURN_IF_ERROR(db_->Query("SELECT value, is_nan, timestamp, step FROM metrics WHERE run_uuid = ? AND key = ? "
                                    "ORDER BY id",
                                    {run_id, key}, [&](sqlite3_stmt* st) {
                                      out.push_back(Metric{key, MetricValue(st, 0, 1), Int(st, 2), Int(st, 3)});
                                    }));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Registered models

absl::StatusOr<RegisteredModel> RegistryStore::CreateRegisteredModel(const std::string& name, const TagMap& tags,
                                                                     std::optional<std::string> description) {
  if (name.empty()) return Invalid("Registered model name cannot be empty.");
  common::WriterMutexLock lock(mu_);
  if (models_.count(name)) return absl::AlreadyExistsError(StrCat("Registered Model (name=", name, ") already exists."));
  const int64_t now = NowMs();
  RegisteredModel m;
  m.name = name;
  m.creation_timestamp = m.last_updated_timestamp = now;
  m.description = std::move(description);
  m.tags = tags;
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT INTO registered_models VALUES (?, ?, ?, ?)", {name, now, now, Opt(m.description)}));
    for (const auto& [k, v] : tags) {
      ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO registered_model_tags VALUES (?, ?, ?)", {name, k, v}));
    }
    return absl::OkStatus();
  }));
  models_[name] = m;
  return m;
}

absl::StatusOr<RegisteredModel> RegistryStore::GetRegisteredModel(const std::string& name) const {
  common::ReaderMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(RegisteredModel * m, const_cast<RegistryStore*>(this)->FindModel(name));
  return *m;
}

absl::StatusOr<RegisteredModel> RegistryStore::RenameRegisteredModel(const std::string& name, const std::string& new_name) {
  if (new_name.empty()) return Invalid("Registered model name cannot be empty.");
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(RegisteredModel * m, FindModel(name));
  if (new_name != name && models_.count(new_name)) {
    return absl::AlreadyExistsError(StrCat("Registered Model (name=", new_name, ") already exists."));
  }
  const int64_t now = NowMs();
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    for (const char* table : {"registered_model_tags", "registered_model_aliases", "model_versions", "model_version_tags"}) {
      ABGATE_RETURN_IF_ERROR(db_->Exec(StrCat("UPDATE ", table, " SET name = ? WHERE name = ?"), {new_name, name}));
    }
    return db_->Exec("UPDATE registered_models SET name = ?, last_updated_time = ? WHERE name = ?", {new_name, now, name});
  }));
  RegisteredModel moved = std::move(*m);
  models_.erase(name);
  moved.name = new_name;
  moved.last_updated_timestamp = now;
  for (auto& [n, v] : moved.versions) v.name = new_name;
  auto& slot = models_[new_name];
  slot = std::move(moved);
  return slot;
}

absl::StatusOr<RegisteredModel> RegistryStore::UpdateRegisteredModel(const std::string& name,
                                                                     std::optional<std::string> description) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(RegisteredModel * m, FindModel(name));
  const int64_t now = NowMs();
  ABGATE_RETURN_IF_ERROR(db_->Exec("UPDATE registered_models SET description = ?, last_updated_time = ? WHERE name = ?",
                                   {Opt(description), now, name}));
  m->description = std::move(description);
  m->last_updated_timestamp = now;
  return *m;
}

absl::Status RegistryStore::DeleteRegisteredModel(const std::string& name) {
  common::WriterMutexLock lock(mu_);
  ABGATE_RETURN_IF_ERROR(FindModel(name).status());
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    for (const char* table : {"registered_models", "registered_model_tags", "registered_model_aliases",
                              "model_versions", "model_version_tags"}) {
      ABGATE_RETURN_IF_ERROR(db_->Exec(StrCat("DELETE FROM ", table, " WHERE name = ?"), {name}));
    }
    return absl::OkStatus();
  }));
  models_.erase(name);
  return absl::OkStatus();
}

absl::StatusOr<Page<RegisteredModel>> RegistryStore::SearchRegisteredModels(const SearchRequest& req) const {
  ABGATE_RETURN_IF_ERROR(CheckMaxResults(req.max_results, 1000));
  static const FilterRules rules{{"name"}, {}, {}, false, {KeyType::kTag}, "['name']"};
  ABGATE_ASSIGN_OR_RETURN(auto clauses, ParseFilter(req.filter, rules));
  ABGATE_ASSIGN_OR_RETURN(auto order, ParseOrderBy(req.order_by, {"name", "timestamp", "creation_timestamp",
                                                                  "last_updated_timestamp"},
                                                   {}));
  ABGATE_ASSIGN_OR_RETURN(int64_t offset, DecodePageToken(req.page_token));
  std::vector<RegisteredModel> all;
  {
    common::ReaderMutexLock lock(mu_);
    for (const auto& entry : models_) {
      const auto& m = entry.second;  // a named reference: clang 14 cannot capture a structured binding
      const bool match = std::all_of(clauses.begin(), clauses.end(), [&](const Clause& c) {
        if (c.type == KeyType::kTag) {
          auto t = FindTag(m.tags, c.key);
          return t && MatchString(c, *t);
        }
        return MatchString(c, m.name);
      });
      if (match) all.push_back(m);
    }
  }
  std::vector<Key<RegisteredModel>> keys;
  for (const OrderBy& o : order) {
    keys.push_back([o](const RegisteredModel& a, const RegisteredModel& b) {
      int c = 0;
      if (o.key == "name") c = Cmp(a.name, b.name);
      else if (o.key == "last_updated_timestamp") c = Cmp(a.last_updated_timestamp, b.last_updated_timestamp);
      else c = Cmp(a.creation_timestamp, b.creation_timestamp);
      return o.ascending ? c : -c;
    });
  }
  keys.push_back([](const RegisteredModel& a, const RegisteredModel& b) { return Cmp(a.name, b.name); });
  SortBy(all, keys);
  return Paginate(std::move(all), offset, Clamp(req.max_results, 100));
}

absl::Status RegistryStore::SetRegisteredModelTag(const std::string& name, const std::string& key, const std::string& value) {
  if (key.empty()) return Invalid("Missing value for required parameter 'key'.");
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(RegisteredModel * m, FindModel(name));
  ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO registered_model_tags VALUES (?, ?, ?)", {name, key, value}));
  m->tags[key] = value;
  return absl::OkStatus();
}

absl::Status RegistryStore::DeleteRegisteredModelTag(const std::string& name, const std::string& key) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(RegisteredModel * m, FindModel(name));
  ABGATE_RETURN_IF_ERROR(db_->Exec("DELETE FROM registered_model_tags WHERE name = ? AND key = ?", {name, key}));
  m->tags.erase(key);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ModelVersion>> RegistryStore::GetLatestVersions(const std::string& name,
                                                                          const std::vector<std::string>& stages) const {
  std::vector<std::string> wanted;
  for (const auto& s : stages) {
    auto canonical = CanonicalStage(s);
    if (!canonical) {
      return Invalid(StrCat("Invalid Model Version stage: ", s, ". Value must be one of None, Staging, Production, Archived."));
    }
    wanted.push_back(*canonical);
  }
  common::ReaderMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(RegisteredModel * m, const_cast<RegistryStore*>(this)->FindModel(name));
  std::map<std::string, const ModelVersion*> latest;
  for (const auto& [n, v] : m->versions) {
    if (v.deleted) continue;
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), v.current_stage) == wanted.end()) continue;
    latest[v.current_stage] = &v;
  }
  std::vector<ModelVersion> out;
  for (const auto& [stage, v] : latest) out.push_back(*v);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.version < b.version; });
  return out;
}

absl::Status RegistryStore::SetAlias(const std::string& name, const std::string& alias, const std::string& version) {
  static const std::regex kAliasPattern(R"(^[\w\-]*$)");
  static const std::regex kVersionLike(R"(^[vV]\d+$)");
  if (alias.size() > 255 || !std::regex_match(alias, kAliasPattern)) {
    return Invalid(StrCat("Invalid alias name: '", alias, "'. Names may only contain alphanumerics, underscores (_), "
                          "and dashes (-), and must be at most 255 characters."));
  }
  std::string lower = alias;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "latest" || std::regex_match(alias, kVersionLike)) {
    return Invalid(StrCat("'", alias, "' alias name (case insensitive) is reserved."));
  }
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(ModelVersion * v, FindVersion(name, version));
  ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO registered_model_aliases VALUES (?, ?, ?)",
                                   {name, alias, v->version}));
  models_[name].aliases[alias] = v->version;
  return absl::OkStatus();
}

absl::Status RegistryStore::DeleteAlias(const std::string& name, const std::string& alias) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(RegisteredModel * m, FindModel(name));
  ABGATE_RETURN_IF_ERROR(db_->Exec("DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?", {name, alias}));
  m->aliases.erase(alias);
  return absl::OkStatus();
}

absl::StatusOr<std::pair<ModelVersion, std::vector<std::string>>> RegistryStore::GetVersionByAlias(
    const std::string& name, const std::string& alias) const {
  common::ReaderMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(RegisteredModel * m, const_cast<RegistryStore*>(this)->FindModel(name));
  auto it = m->aliases.find(alias);
  if (it == m->aliases.end()) return Invalid(StrCat("Registered model alias ", alias, " not found."));
  auto v = m->versions.find(it->second);
  if (v == m->versions.end() || v->second.deleted) {
    return NotFound(StrCat("Model Version (name=", name, ", version=", it->second, ") not found"));
  }
  return std::pair{v->second, AliasesOf(*m, it->second)};
}

// ---------------------------------------------------------------------------------------------
// Model versions

absl::StatusOr<ModelVersion> RegistryStore::CreateModelVersion(const std::string& name, std::string source,
                                                               const std::string& run_id, const TagMap& tags,
                                                               const std::string& run_link,
                                                               std::optional<std::string> description) {
  if (source.empty()) return Invalid("Missing value for required parameter 'source'.");
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(RegisteredModel * m, FindModel(name));
  if (source.rfind("models:/", 0) == 0) {
    // A models:/name/version source is resolved to that version's storage location.
    const std::string rest = source.substr(8);
    const size_t slash = rest.find('/');
    if (slash == std::string::npos) return Invalid(StrCat("Invalid model version source: '", source, "'"));
    ABGATE_ASSIGN_OR_RETURN(ModelVersion * src, FindVersion(rest.substr(0, slash), rest.substr(slash + 1)));
    source = src->source;
  }
  if (!run_id.empty()) ABGATE_RETURN_IF_ERROR(FindRun(run_id).status());
  const int64_t version = m->versions.empty() ? 1 : m->versions.rbegin()->first + 1;
  const int64_t now = NowMs();
  ModelVersion v;
  v.name = name;
  v.version = version;
  v.creation_timestamp = v.last_updated_timestamp = now;
  v.description = std::move(description);
  v.source = std::move(source);
  v.run_id = run_id;
  v.run_link = run_link;
  v.tags = tags;
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT INTO model_versions VALUES (?, ?, ?, ?, ?, '', 'None', ?, ?, ?, 'READY', '', 0)",
                                     {name, version, now, now, Opt(v.description), v.source, run_id, run_link}));
    for (const auto& [k, val] : tags) {
      ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO model_version_tags VALUES (?, ?, ?, ?)", {name, version, k, val}));
    }
    return db_->Exec("UPDATE registered_models SET last_updated_time = ? WHERE name = ?", {now, name});
  }));
  m->last_updated_timestamp = now;
  m->versions[version] = v;
  return v;
}

absl::StatusOr<std::pair<ModelVersion, std::vector<std::string>>> RegistryStore::GetModelVersion(
    const std::string& name, const std::string& version) const {
  common::ReaderMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(ModelVersion * v, const_cast<RegistryStore*>(this)->FindVersion(name, version));
  return std::pair{*v, AliasesOf(models_.at(name), v->version)};
}

absl::StatusOr<ModelVersion> RegistryStore::UpdateModelVersion(const std::string& name, const std::string& version,
                                                               std::optional<std::string> description) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(ModelVersion * v, FindVersion(name, version));
  const int64_t now = NowMs();
  ABGATE_RETURN_IF_ERROR(db_->Exec("UPDATE model_versions SET description = ?, last_updated_time = ? "
                                   "WHERE name = ? AND version = ?",
                                   {Opt(description), now, name, v->version}));
  v->description = std::move(description);
  v->last_updated_timestamp = now;
  return *v;
}

absl::StatusOr<ModelVersion> RegistryStore::TransitionStage(const std::string& name, const std::string& version,
                                                            const std::string& stage, bool archive_existing_versions) {
  const auto canonical = CanonicalStage(stage);
  if (!canonical) {
    return Invalid(StrCat("Invalid Model Version stage: ", stage, ". Value must be one of None, Staging, Production, Archived."));
  }
  if (archive_existing_versions && *canonical != "Staging" && *canonical != "Production") {
    return absl::InternalError(StrCat("Model version transition cannot archive existing model versions because '",
                                      *canonical, "' is not an Active stage. Valid stages are Staging, Production"));
  }
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(ModelVersion * v, FindVersion(name, version));
  RegisteredModel& m = models_.at(name);
  const int64_t now = NowMs();
  std::vector<ModelVersion*> archived;
  if (archive_existing_versions) {
    for (auto& [n, other] : m.versions) {
      if (n != v->version && !other.deleted && other.current_stage == *canonical) archived.push_back(&other);
    }
  }
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    for (ModelVersion* other : archived) {
      ABGATE_RETURN_IF_ERROR(db_->Exec("UPDATE model_versions SET current_stage = 'Archived', last_updated_time = ? "
                                       "WHERE name = ? AND version = ?",
                                       {now, name, other->version}));
    }
    ABGATE_RETURN_IF_ERROR(db_->Exec("UPDATE model_versions SET current_stage = ?, last_updated_time = ? "
                                     "WHERE name = ? AND version = ?",
                                     {*canonical, now, name, v->version}));
    return db_->Exec("UPDATE registered_models SET last_updated_time = ? WHERE name = ?", {now, name});
  }));
  for (ModelVersion* other : archived) {
    other->current_stage = "Archived";
    other->last_updated_timestamp = now;
  }
  v->current_stage = *canonical;
  v->last_updated_timestamp = now;
  m.last_updated_timestamp = now;
  return *v;
}

absl::Status RegistryStore::DeleteModelVersion(const std::string& name, const std::string& version) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(ModelVersion * v, FindVersion(name, version));
  RegisteredModel& m = models_.at(name);
  const int64_t now = NowMs();
  // MLflow 2.17 means to drop the aliases of a deleted version (its REST path misses them, see
  // src/README.md); abgate drops them, so an alias never resolves to a deleted version.
  ABGATE_RETURN_IF_ERROR(db_->Transaction([&]() -> absl::Status {
    mu_.AssertHeld();  // the lambda runs within the caller's lock
    ABGATE_RETURN_IF_ERROR(db_->Exec("UPDATE model_versions SET deleted = 1, current_stage = 'Deleted_Internal', "
                                     "last_updated_time = ? WHERE name = ? AND version = ?",
                                     {now, name, v->version}));
    ABGATE_RETURN_IF_ERROR(db_->Exec("DELETE FROM model_version_tags WHERE name = ? AND version = ?", {name, v->version}));
    return db_->Exec("DELETE FROM registered_model_aliases WHERE name = ? AND version = ?", {name, v->version});
  }));
  v->deleted = true;
  v->current_stage = "Deleted_Internal";
  v->tags.clear();
  for (auto it = m.aliases.begin(); it != m.aliases.end();) {
    it = it->second == v->version ? m.aliases.erase(it) : std::next(it);
  }
  return absl::OkStatus();
}

absl::StatusOr<Page<std::pair<ModelVersion, std::vector<std::string>>>> RegistryStore::SearchModelVersions(
    const SearchRequest& req) const {
  ABGATE_RETURN_IF_ERROR(CheckMaxResults(req.max_results, 200000));
  static const FilterRules rules{{"name", "run_id", "source_path"}, {"version_number"}, {"run_id"}, false,
                                 {KeyType::kTag}, "{'source_path', 'run_id', 'name', 'version_number'}"};
  ABGATE_ASSIGN_OR_RETURN(auto clauses, ParseFilter(req.filter, rules));
  ABGATE_ASSIGN_OR_RETURN(auto order, ParseOrderBy(req.order_by, {"name", "version_number", "creation_timestamp",
                                                                  "last_updated_timestamp"},
                                                   {}));
  ABGATE_ASSIGN_OR_RETURN(int64_t offset, DecodePageToken(req.page_token));
  using Item = std::pair<ModelVersion, std::vector<std::string>>;
  std::vector<Item> all;
  {
    common::ReaderMutexLock lock(mu_);
    for (const auto& [name, m] : models_) {
      for (const auto& version : m.versions) {
        const auto& v = version.second;  // a named reference: clang 14 cannot capture a structured binding
        if (v.deleted) continue;
        const bool match = std::all_of(clauses.begin(), clauses.end(), [&](const Clause& c) {
          if (c.type == KeyType::kTag) {
            auto t = FindTag(v.tags, c.key);
            return t && MatchString(c, *t);
          }
          if (c.key == "version_number") return MatchNumber(c, static_cast<double>(v.version));
          if (c.key == "run_id") return MatchString(c, v.run_id);
          if (c.key == "source_path") return MatchString(c, v.source);
          return MatchString(c, v.name);
        });
        if (match) all.emplace_back(v, AliasesOf(m, v.version));
      }
    }
  }
  std::vector<Key<Item>> keys;
  for (const OrderBy& o : order) {
    keys.push_back([o](const Item& a, const Item& b) {
      int c = 0;
      if (o.key == "name") c = Cmp(a.first.name, b.first.name);
      else if (o.key == "version_number") c = Cmp(a.first.version, b.first.version);
      else if (o.key == "creation_timestamp") c = Cmp(a.first.creation_timestamp, b.first.creation_timestamp);
      else c = Cmp(a.first.last_updated_timestamp, b.first.last_updated_timestamp);
      return o.ascending ? c : -c;
    });
  }
  if (order.empty()) {
    keys.push_back([](const Item& a, const Item& b) {
      return Cmp(b.first.last_updated_timestamp, a.first.last_updated_timestamp);
    });
  }
  keys.push_back([](const Item& a, const Item& b) { return Cmp(a.first.name, b.first.name); });
  keys.push_back([](const Item& a, const Item& b) { return Cmp(b.first.version, a.first.version); });
  SortBy(all, keys);
  return Paginate(std::move(all), offset, Clamp(req.max_results, 10000));
}

absl::Status RegistryStore::SetModelVersionTag(const std::string& name, const std::string& version,
                                               const std::string& key, const std::string& value) {
  if (key.empty()) return Invalid("Missing value for required parameter 'key'.");
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(ModelVersion * v, FindVersion(name, version));
  ABGATE_RETURN_IF_ERROR(db_->Exec("INSERT OR REPLACE INTO model_version_tags VALUES (?, ?, ?, ?)",
                                   {name, v->version, key, value}));
  v->tags[key] = value;
  return absl::OkStatus();
}

absl::Status RegistryStore::DeleteModelVersionTag(const std::string& name, const std::string& version,
                                                  const std::string& key) {
  common::WriterMutexLock lock(mu_);
  ABGATE_ASSIGN_OR_RETURN(ModelVersion * v, FindVersion(name, version));
  ABGATE_RETURN_IF_ERROR(db_->Exec("DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?",
                                   {name, v->version, key}));
  v->tags.erase(key);
  return absl::OkStatus();
}

}  // namespace abgate::registry
