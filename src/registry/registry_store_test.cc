#include "registry/registry_store.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "registry/artifact_store.h"

namespace abgate::registry {
namespace {

class RegistryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("abgate-registry-" + std::to_string(::getpid()) + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::unique_ptr<RegistryStore> Reopen() {
    store_.reset();
    auto s = RegistryStore::Open((dir_ / "registry.db").string(), clock_);
    EXPECT_TRUE(s.ok()) << s.status();
    return *std::move(s);
  }

  std::filesystem::path dir_;
  common::FakeClock clock_{1'795'690'821'663'000};
  std::unique_ptr<RegistryStore> store_;
};

TEST_F(RegistryStoreTest, DefaultExperimentAndDuplicateNames) {
  auto def = store_->GetExperiment(0);
  ASSERT_TRUE(def.ok());
  EXPECT_EQ(def->name, "Default");
  auto id = store_->CreateExperiment("ab", "", {{"team", "ml"}});
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 1);
  EXPECT_EQ(store_->GetExperiment(1)->artifact_location, "mlflow-artifacts:/1");
  EXPECT_EQ(store_->CreateExperiment("ab", "", {}).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->GetExperiment(42).status().message(), "No Experiment with id=42 exists");
}

TEST_F(RegistryStoreTest, RunsParamsMetricsSurviveReopen) {
  auto run = store_->CreateRun(0, "alice", "arm-A", 1000, {{"ab_group", "A"}});
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->run_id.size(), 32u);
  EXPECT_EQ(run->tags.at("mlflow.runName"), "arm-A");
  ASSERT_TRUE(store_->LogBatch(run->run_id, {{"auc", 0.7, 10, 1}, {"auc", 0.6, 11, 0}, {"loss", std::nan(""), 5, 0}},
                               {{"arm", "A"}}, {}).ok());
  // Same param value again is fine, a different one is refused and changes nothing.
  EXPECT_TRUE(store_->LogBatch(run->run_id, {}, {{"arm", "A"}}, {}).ok());
  auto changed = store_->LogBatch(run->run_id, {{"auc", 0.99, 12, 5}}, {{"arm", "B"}}, {});
  EXPECT_EQ(changed.code(), absl::StatusCode::kInvalidArgument);
  store_ = Reopen();
  auto got = store_->GetRun(run->run_id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->params.at("arm"), "A");
  EXPECT_DOUBLE_EQ(got->latest_metrics.at("auc").value, 0.7);  // step 1 beats step 0
  EXPECT_TRUE(std::isnan(got->latest_metrics.at("loss").value));
  auto history = store_->GetMetricHistory(run->run_id, "auc");
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 2u);
  EXPECT_DOUBLE_EQ((*history)[1].value, 0.6);  // insertion order
}

TEST_F(RegistryStoreTest, SearchRunsFiltersOrdersAndPages) {
  for (int i = 0; i < 5; ++i) {
    auto run = store_->CreateRun(0, "", "r" + std::to_string(i), 100 + i, {{"ab_test", i % 2 ? "exp" : "other"}});
    ASSERT_TRUE(run.ok());
    ASSERT_TRUE(store_->LogBatch(run->run_id, {{"conv", 0.1 * i, 1, 0}}, {}, {}).ok());
  }
  SearchRequest req;
  req.filter = "tags.ab_test = 'exp'";
  req.order_by = {"metrics.conv DESC"};
  auto page = store_->SearchRuns({0}, req);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].run_name, "r3");
  req = SearchRequest{};
  req.max_results = 2;
  page = store_->SearchRuns({0}, req);
  EXPECT_EQ(page->items[0].run_name, "r4");  // start_time DESC by default
  EXPECT_FALSE(page->next_page_token.empty());
  req.page_token = page->next_page_token;
  page = store_->SearchRuns({0}, req);
  EXPECT_EQ(page->items[0].run_name, "r2");
}

TEST_F(RegistryStoreTest, StagesAliasesAndDeletedVersions) {
  ASSERT_TRUE(store_->CreateRegisteredModel("m", {}, std::nullopt).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->CreateModelVersion("m", "mlflow-artifacts:/x", "", {}, "", {}).ok());
  ASSERT_TRUE(store_->TransitionStage("m", "1", "production", false).ok());
  auto v2 = store_->TransitionStage("m", "2", "Production", true);
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->current_stage, "Production");
  EXPECT_EQ(store_->GetModelVersion("m", "1")->first.current_stage, "Archived");
  EXPECT_EQ(store_->TransitionStage("m", "3", "Archived", true).status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(store_->TransitionStage("m", "3", "Canary", false).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store_->SetAlias("m", "champion", "2").ok());
  EXPECT_FALSE(store_->SetAlias("m", "latest", "2").ok());
  EXPECT_FALSE(store_->SetAlias("m", "v3", "2").ok());
  EXPECT_EQ(store_->SetAlias("m", "x", "9").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetVersionByAlias("m", "nope").status().code(), absl::StatusCode::kInvalidArgument);
  store_ = Reopen();
  auto by_alias = store_->GetVersionByAlias("m", "champion");
  ASSERT_TRUE(by_alias.ok());
  EXPECT_EQ(by_alias->first.version, 2);
  ASSERT_TRUE(store_->DeleteModelVersion("m", "3").ok());
  EXPECT_EQ(store_->DeleteModelVersion("m", "3").code(), absl::StatusCode::kNotFound);
  auto v4 = store_->CreateModelVersion("m", "mlflow-artifacts:/y", "", {}, "", {});
  EXPECT_EQ(v4->version, 4);  // numbers are never reused
  auto latest = store_->GetLatestVersions("m", {});
  ASSERT_TRUE(latest.ok());
  ASSERT_EQ(latest->size(), 3u);  // Archived 1, Production 2, None 4
  EXPECT_EQ(store_->GetModelVersion("m", "abc").status().message(), "Model version must be an integer, got 'abc'");
}

TEST_F(RegistryStoreTest, RenameCarriesVersionsTagsAndAliases) {
  ASSERT_TRUE(store_->CreateRegisteredModel("old", {{"owner", "ab"}}, "d").ok());
  ASSERT_TRUE(store_->CreateModelVersion("old", "s", "", {{"k", "v"}}, "", {}).ok());
  ASSERT_TRUE(store_->SetAlias("old", "champion", "1").ok());
  ASSERT_TRUE(store_->RenameRegisteredModel("old", "new").ok());
  store_ = Reopen();
  auto m = store_->GetRegisteredModel("new");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->tags.at("owner"), "ab");
  EXPECT_EQ(m->aliases.at("champion"), 1);
  EXPECT_EQ(m->versions.at(1).tags.at("k"), "v");
  EXPECT_EQ(store_->GetRegisteredModel("old").status().code(), absl::StatusCode::kNotFound);
}

TEST(ArtifactStore, RefusesEscapes) {
  const auto root = std::filesystem::temp_directory_path() / ("abgate-art-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  auto store = ArtifactStore::Open(root);
  ASSERT_TRUE(store.ok());
  std::filesystem::create_directories(root.parent_path() / "outside-abgate");
  std::filesystem::create_directory_symlink(root.parent_path() / "outside-abgate", root / "link");
  for (const char* bad : {"../x", "a/../../x", "/etc/passwd", "a//b", "./a", "link/x", "a\\..\\b"}) {
    EXPECT_FALSE(store->Write(bad, "x").ok()) << bad;
    EXPECT_FALSE(store->Read(bad).ok()) << bad;
  }
  ASSERT_TRUE(store->Write("1/run/artifacts/model/MLmodel", "flavors: {}").ok());
  EXPECT_EQ(*store->Read("1/run/artifacts/model/MLmodel"), "flavors: {}");
  auto files = store->ListRecursive("1/run/artifacts");
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_EQ((*files)[0].path, "model/MLmodel");
  std::filesystem::remove_all(root);
  std::filesystem::remove_all(root.parent_path() / "outside-abgate");
}

}  // namespace
}  // namespace abgate::registry
