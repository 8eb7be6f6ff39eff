#include "events/event_blocks.h"

#include <cmath>

#include "common/hash64.h"
#include "gtest/gtest.h"

namespace abgate::events {
namespace {

TEST(Hash64Test, IsPinnedBecauseStoredBlocksDependOnIt) {
  // Blocks written by one abgate are read by later ones: these values must never change.
  // Cross-checked with a Python transcription of Appleby's reference MurmurHash64A.
  EXPECT_EQ(common::Hash64(""), 0xa5ff6c186755e257ULL);
  EXPECT_EQ(common::Hash64("u1"), 0xdfc1dda59f1e7e32ULL);
  EXPECT_EQ(common::Hash64("0123456789abcdef0123456789abcdef"), 0xea14c46b1fdf3643ULL);
  EXPECT_EQ(common::Hash64("user1234567"), 0xed1bf60f5dedbe79ULL);
  EXPECT_NE(common::Hash64("user1"), common::Hash64("user2"));
}

// Issue 14: `Parse(b.Finish())` viewed a destroyed string (ASan: heap-use-after-free). A block
// views its blob, so Parse refuses a temporary string at compile time.
template <typename Block>
concept ParsesTemporaryString = requires { Block::Parse(std::string()); };
template <typename Block>
concept ParsesView = requires(const std::string& s) { Block::Parse(s); };
static_assert(!ParsesTemporaryString<ExposureBlock> && !ParsesTemporaryString<OutcomeBlock>);
static_assert(ParsesView<ExposureBlock> && ParsesView<OutcomeBlock>);

TEST(EventBlocksTest, ExposuresRoundTrip) {
  ExposureBlockBuilder b;
  ASSERT_TRUE(b.Add("r1", "u1", "A", "7", 100, 0.25));
  ASSERT_TRUE(b.Add("r2", "", "B", "8", 50, std::nullopt));
  ASSERT_TRUE(b.Add("r3", "u1", "A", "9", 300, 1.0));  // A served by another version: its own entry
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b.min_ts(), 50);
  EXPECT_EQ(b.max_ts(), 300);
  const std::string blob = b.Finish();
  EXPECT_EQ(b.size(), 0u);
  auto block = ExposureBlock::Parse(blob);
  ASSERT_TRUE(block.ok()) << block.status();
  ASSERT_EQ(block->size(), 3u);
  ASSERT_EQ(block->arms().size(), 3u);
  EXPECT_EQ(block->arms()[0].name, "A");
  EXPECT_EQ(block->arms()[0].model_version, "7");
  EXPECT_EQ(block->arms()[1].name, "B");
  EXPECT_EQ(block->arms()[2].name, "A");
  EXPECT_EQ(block->arms()[2].model_version, "9");
  EXPECT_EQ(block->unit_key(0), common::Hash64("u1"));
  EXPECT_EQ(block->request_key(1), common::Hash64("r2"));
  EXPECT_TRUE(block->has_unit(0));
  EXPECT_FALSE(block->has_unit(1));
  EXPECT_TRUE(block->scored(0));
  EXPECT_FALSE(block->scored(1));
  EXPECT_EQ(block->score(0), 0.25);
  EXPECT_EQ(block->ts(2), 300);
  EXPECT_EQ(block->arm(1), 1);
  EXPECT_EQ(block->arm(2), 2);
}

TEST(EventBlocksTest, Issue18BanditProbabilitiesRideInVersion2BlocksOnly) {
  // A block without assignment probabilities stays version 1, readable by older abgates.
  ExposureBlockBuilder plain;
  ASSERT_TRUE(plain.Add("r1", "u1", "A", "7", 100, 0.25));
  const std::string v1 = plain.Finish();
  EXPECT_EQ(v1[0], 1);
  auto block = ExposureBlock::Parse(v1);
  ASSERT_TRUE(block.ok()) << block.status();
  EXPECT_EQ(block->probability(0), 0.0f);
  // A bandit's exposures carry theirs (0 for one drawn otherwise, e.g. an override).
  ExposureBlockBuilder bandit;
  ASSERT_TRUE(bandit.Add("r1", "", "A", "7", 100, std::nullopt, 0.1));
  ASSERT_TRUE(bandit.Add("r2", "", "B", "8", 200, 0.5, 0.9));
  ASSERT_TRUE(bandit.Add("r3", "u3", "A", "7", 300, std::nullopt));
  const std::string v2 = bandit.Finish();
  EXPECT_EQ(v2[0], 2);
  block = ExposureBlock::Parse(v2);
  ASSERT_TRUE(block.ok()) << block.status();
  ASSERT_EQ(block->size(), 3u);
  EXPECT_EQ(block->probability(0), 0.1f);
  EXPECT_EQ(block->probability(1), 0.9f);
  EXPECT_EQ(block->probability(2), 0.0f);
  EXPECT_EQ(block->score(1), 0.5);
  // Cut short: refused.
  EXPECT_FALSE(ExposureBlock::Parse(std::string_view(v2).substr(0, v2.size() - 1)).ok());
}

TEST(EventBlocksTest, OutcomesRoundTripKeyedByRequestElseUnit) {
  OutcomeBlockBuilder b;
  ASSERT_TRUE(b.Add("r1", "u1", "booked", 1, 10));
  ASSERT_TRUE(b.Add("", "u2", "revenue", 12.5, 20));
  const std::string blob = b.Finish();  // the block views it: Parse(b.Finish()) does not compile
  auto block = OutcomeBlock::Parse(blob);
  ASSERT_TRUE(block.ok()) << block.status();
  ASSERT_EQ(block->size(), 2u);
  EXPECT_EQ(block->metrics().size(), 2u);
  EXPECT_TRUE(block->by_request(0));
  EXPECT_EQ(block->key(0), common::Hash64("r1"));
  EXPECT_FALSE(block->by_request(1));
  EXPECT_EQ(block->key(1), common::Hash64("u2"));
  EXPECT_EQ(block->metrics()[block->metric(1)], "revenue");
  EXPECT_EQ(block->value(1), 12.5);
  EXPECT_EQ(block->ts(1), 20);
}

TEST(EventBlocksTest, AFullDictionaryRefusesANewNameOnly) {
  ExposureBlockBuilder b;
  for (size_t i = 0; i < kMaxBlockNames; ++i) ASSERT_TRUE(b.Add("r", "u", "arm" + std::to_string(i), "", 1, 0.5));
  EXPECT_FALSE(b.Add("r", "u", "one-too-many", "", 1, 0.5));
  EXPECT_TRUE(b.Add("r", "u", "arm3", "", 1, 0.5));
  EXPECT_EQ(b.size(), kMaxBlockNames + 1);
  const std::string blob = b.Finish();
  auto block = ExposureBlock::Parse(blob);
  ASSERT_TRUE(block.ok());
  EXPECT_EQ(block->arms().size(), kMaxBlockNames);
}

TEST(EventBlocksTest, DamagedBlobsAreRefusedNotRead) {
  ExposureBlockBuilder e;
  e.Add("r1", "u1", "A", "7", 100, 0.25);
  const std::string exposures = e.Finish();
  OutcomeBlockBuilder o;
  o.Add("r1", "", "booked", 1, 10);
  const std::string outcomes = o.Finish();
  // Every truncation, one byte too many, a wrong version, and an arm index out of range.
  for (size_t n = 0; n < exposures.size(); ++n) {
    EXPECT_FALSE(ExposureBlock::Parse(std::string_view(exposures).substr(0, n)).ok()) << n;
  }
  for (size_t n = 0; n < outcomes.size(); ++n) EXPECT_FALSE(OutcomeBlock::Parse(std::string_view(outcomes).substr(0, n)).ok()) << n;
  const std::string longer = exposures + "x";
  EXPECT_FALSE(ExposureBlock::Parse(longer).ok());
  std::string bad_version = exposures;
  bad_version[0] = 2;
  EXPECT_FALSE(ExposureBlock::Parse(bad_version).ok());
  std::string bad_arm = exposures;
  bad_arm[bad_arm.size() - 2] = 5;  // the arm column of the one event
  EXPECT_FALSE(ExposureBlock::Parse(bad_arm).ok());
  std::string huge_count = outcomes;
  huge_count[1] = huge_count[2] = huge_count[3] = huge_count[4] = '\xff';
  EXPECT_FALSE(OutcomeBlock::Parse(huge_count).ok());
  EXPECT_EQ(ExposureBlock::Parse(std::string_view()).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace abgate::events

namespace abgate::events {
namespace {

TEST(BlockSetTest, GroupsByExperimentAndCountsTheRowsEachBlockStandsFor) {
  BlockSet set;
  set.AddExposure("e1", "r1", "u1", "A", "7", 10, 0.5);
  set.AddExposure("e2", "r2", "u2", "A", "7", 20, 0.5);
  set.AddExposure("e1", "r3", "u3", "B", "8", 30, std::nullopt, /*in_experiment=*/false);
  set.AddExposure("e3", "r4", "u4", "A", "7", 40, 0.5, /*in_experiment=*/false);  // nothing to analyse
  set.AddOutcome("e1", "r1", "", "booked", 1, 50);
  set.AddOutcome("e1", "", "", "booked", 1, 60);  // names nobody: counted, not kept
  auto blocks = set.Finish();
  ASSERT_EQ(blocks.size(), 3u);  // e1 and e2 exposures, e1 outcomes; no empty e3 block
  EXPECT_FALSE(blocks[0].outcomes);
  EXPECT_EQ(blocks[0].experiment, "e1");
  EXPECT_EQ(blocks[0].rows, 1);
  EXPECT_EQ(blocks[0].source_rows, 2);
  EXPECT_EQ(blocks[1].experiment, "e2");
  EXPECT_TRUE(blocks[2].outcomes);
  EXPECT_EQ(blocks[2].rows, 1);
  EXPECT_EQ(blocks[2].source_rows, 2);
  EXPECT_TRUE(set.Finish().empty());

  set.AddExposure("e3", "r4", "u4", "A", "7", 40, 0.5, /*in_experiment=*/false);
  blocks = set.Finish(/*keep_empty=*/true);
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].rows, 0);
  EXPECT_EQ(blocks[0].source_rows, 1);
  EXPECT_TRUE(ExposureBlock::Parse(blocks[0].data).ok());
}

TEST(BlockSetTest, AFullDictionaryStartsANewBlockAndNoRowIsCountedTwice) {
  BlockSet set;
  for (size_t i = 0; i <= kMaxBlockNames; ++i) set.AddExposure("e", "r", "u", "arm" + std::to_string(i), "", 1, 0.5);
  const auto blocks = set.Finish();
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].rows + blocks[1].rows, static_cast<int64_t>(kMaxBlockNames + 1));
  EXPECT_EQ(blocks[0].source_rows + blocks[1].source_rows, static_cast<int64_t>(kMaxBlockNames + 1));
  EXPECT_EQ(blocks[1].rows, 1);
}

}  // namespace
}  // namespace abgate::events
