// Position epochs and EV006 (src/core/epochs.cpp, docs/topologies.md "Failover").
#include "test_util.hpp"

using everest::EpochFacts;
using everest::LostRange;
using everest_test::ErrorOf;

namespace {
constexpr std::int64_t E1 = std::int64_t{1} << 40;
}

TEST(PlanEpoch, SameNodeDoesNothing) {
  EpochFacts f;
  f.have_latest = true;
  f.same_node = true;
  f.sequence_last = 500;
  auto p = everest::plan_epoch(f);
  EXPECT_FALSE(p.insert);
  EXPECT_EQ(p.sequence_to, 0);
}

TEST(PlanEpoch, FirstRowNoJump) {
  EpochFacts f;
  f.max_stored = 500;
  f.sequence_last = 510;
  auto p = everest::plan_epoch(f);
  EXPECT_TRUE(p.insert);
  EXPECT_EQ(p.epoch, 0);
  EXPECT_EQ(p.first_position, 1);
  EXPECT_FALSE(p.lost);
  EXPECT_EQ(p.sequence_to, 0);
}

TEST(PlanEpoch, FirstRowOnAMirrorMovesTheSequencePastWhatIsStored) {
  EpochFacts f;
  f.max_stored = 500;  // replicated events; the sequence is not replicated
  f.sequence_last = 0;
  auto p = everest::plan_epoch(f);
  EXPECT_EQ(p.sequence_to, 500);
  EXPECT_FALSE(p.lost);
}

TEST(PlanEpoch, PromotionStartsTheNextEpochAboveEverything) {
  EpochFacts f;
  f.have_latest = true;
  f.latest_epoch = 0;
  f.same_node = false;
  f.max_stored = 620;
  f.sequence_last = 627;  // WAL-logged ahead
  f.published_horizon = 595;
  auto p = everest::plan_epoch(f);
  EXPECT_TRUE(p.insert);
  EXPECT_EQ(p.epoch, 1);
  EXPECT_EQ(p.first_position, E1 + 1);
  EXPECT_EQ(p.sequence_to, E1);
  EXPECT_TRUE(p.lost);
  EXPECT_EQ(p.lost_after, 595);  // the last horizon this node received, not the sequence
}

TEST(PlanEpoch, AnUnbrokenRunOfStoredPositionsAboveTheHorizonIsNotLost) {
  EpochFacts f;
  f.have_latest = true;
  f.max_stored = 782;
  f.sequence_last = 800;
  f.published_horizon = 775;
  f.present_through = 782;  // 776..782 replicated (synchronous replication, acknowledged)
  auto p = everest::plan_epoch(f);
  EXPECT_EQ(p.lost_after, 782);
  f.present_through = 779;  // a hole at 780: what the old primary had there is unknown
  EXPECT_EQ(everest::plan_epoch(f).lost_after, 779);
}

TEST(PlanEpoch, ARolledBackSwitchIsReusedNotRepeated) {
  EpochFacts f;
  f.have_latest = true;
  f.latest_epoch = 0;
  f.max_stored = 620;
  f.sequence_last = E1 + 3;  // an earlier attempt moved the sequence, then rolled back
  f.published_horizon = 595;
  auto p = everest::plan_epoch(f);
  EXPECT_EQ(p.epoch, 1);
  EXPECT_EQ(p.sequence_to, 0);
  EXPECT_EQ(p.lost_after, 595);
}

TEST(PlanEpoch, AMirrorCutoverGoesAboveReplicatedEpochs) {
  EpochFacts f;
  f.have_latest = true;
  f.latest_epoch = 2;  // the publisher's
  f.max_stored = 2 * E1 + 40;
  f.sequence_last = 0;
  f.published_horizon = 2 * E1 + 38;
  auto p = everest::plan_epoch(f);
  EXPECT_EQ(p.epoch, 3);
  EXPECT_EQ(p.sequence_to, 3 * E1);
  EXPECT_EQ(p.lost_after, 2 * E1 + 38);
}

TEST(PlanEpoch, PositionsStayBelow2To53) {
  EpochFacts f;
  f.have_latest = true;
  f.latest_epoch = everest::kMaxEpochs - 1;
  f.max_stored = 5;
  auto e = ErrorOf([&] { everest::plan_epoch(f); });
  EXPECT_EQ(e.sqlstate, "55000");
  f.latest_epoch = everest::kMaxEpochs - 2;
  auto p = everest::plan_epoch(f);
  EXPECT_LT(p.first_position, std::int64_t{1} << 53);
}

TEST(CheckCompleted, LostRangeBoundaries) {
  LostRange r{595, E1 + 1};
  auto state = [&](std::int64_t c) {
    return ErrorOf([&] { everest::check_completed(c, &r, 1, false, 0); }).sqlstate;
  };
  EXPECT_EQ(state(0), "");
  EXPECT_EQ(state(595), "");       // everything up to the last horizon received is here
  EXPECT_EQ(state(596), "EV006");  // the reader may hold events this store lacks
  EXPECT_EQ(state(620), "EV006");
  EXPECT_EQ(state(E1 - 1), "EV006");
  EXPECT_EQ(state(E1), "");        // never assigned anywhere: a safe_position() of the new epoch
  EXPECT_EQ(state(E1 + 5), "");
  auto e = ErrorOf([&] { everest::check_completed(620, &r, 1, false, 0); });
  EXPECT_EQ(e.message, "position 620 is in a range this store never completed");
}

TEST(CheckCompleted, BeyondAssignedOnlyWhenKnown) {
  EXPECT_EQ(ErrorOf([] { everest::check_completed(101, nullptr, 0, true, 100); }).sqlstate, "EV006");
  EXPECT_EQ(ErrorOf([] { everest::check_completed(100, nullptr, 0, true, 100); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_completed(101, nullptr, 0, false, 100); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_completed(INT64_MAX, nullptr, 0, true, 100); }).sqlstate, "EV006");
}
