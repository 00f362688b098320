// The rules of handler saves, leases and waits (src/core/handlers.cpp, docs/topologies.md).
#include "test_util.hpp"

using everest::SaveFacts;
using everest_test::Contains;
using everest_test::ErrorOf;

namespace {

SaveFacts Plain(std::int64_t position, std::int64_t stored) {
  SaveFacts f;
  f.handler = "proj";
  f.position = position;
  f.stored = stored;
  return f;
}

std::string StateOf(const SaveFacts& f) { return ErrorOf([&] { everest::check_save(f); }).sqlstate; }

}  // namespace

TEST(CheckSave, MovingForwardWithoutLeaseOrReadPasses) {
  EXPECT_EQ(StateOf(Plain(5, 4)), "");
  EXPECT_EQ(StateOf(Plain(1, 0)), "");
}

TEST(CheckSave, NotMovingForwardIsEV004) {
  EXPECT_EQ(StateOf(Plain(4, 4)), "EV004");
  EXPECT_EQ(StateOf(Plain(3, 4)), "EV004");
  EXPECT_EQ(StateOf(Plain(0, 0)), "EV004");
  auto e = ErrorOf([] { everest::check_save(Plain(4, 4)); });
  EXPECT_EQ(e.message, "handler \"proj\" position 4 does not move forward from 4");
  EXPECT_TRUE(Contains(e.hint, "reset_handler"));
}

TEST(CheckSave, MovedSinceReadIsEV004EvenWhenAhead) {
  SaveFacts f = Plain(20, 15);
  f.read_in_transaction = true;
  f.moved_since_read = true;
  auto e = ErrorOf([&] { everest::check_save(f); });
  EXPECT_EQ(e.sqlstate, "EV004");
  EXPECT_EQ(e.message, "handler \"proj\" checkpoint moved since this transaction read from it");
  f.moved_since_read = false;
  EXPECT_EQ(StateOf(f), "");
}

TEST(CheckSave, ExpectedPositionMustBeTheCheckpoint) {
  SaveFacts f = Plain(20, 15);
  f.expected_given = true;
  f.expected = 10;
  auto e = ErrorOf([&] { everest::check_save(f); });
  EXPECT_EQ(e.sqlstate, "EV004");
  EXPECT_EQ(e.message, "handler \"proj\" checkpoint is 15, not the expected 10");
  f.expected = 15;
  EXPECT_EQ(StateOf(f), "");
  f.position = 15;
  EXPECT_EQ(StateOf(f), "EV004");  // still must move forward
}

TEST(CheckSave, LeaseRules) {
  SaveFacts f = Plain(5, 4);
  f.lease_live = true;  // someone holds the member
  auto e = ErrorOf([&] { everest::check_save(f); });
  EXPECT_EQ(e.sqlstate, "EV005");
  EXPECT_EQ(e.message, "handler \"proj\" member 0 is leased; a save must name the lease");

  f.lease_given = true;  // a token that is not the row's
  e = ErrorOf([&] { everest::check_save(f); });
  EXPECT_EQ(e.sqlstate, "EV005");
  EXPECT_TRUE(Contains(e.detail, "Another runner"));

  f.lease_row_matches = true;  // the holder's own live lease
  EXPECT_EQ(StateOf(f), "");

  f.lease_live = false;  // ... expired
  e = ErrorOf([&] { everest::check_save(f); });
  EXPECT_EQ(e.sqlstate, "EV005");
  EXPECT_EQ(e.detail, "The lease expired.");

  f.lease_given = false;  // no lease named, none live: the plain rules
  f.lease_row_matches = false;
  EXPECT_EQ(StateOf(f), "");
}

TEST(CheckSave, FencingComesBeforeEverythingElse) {
  SaveFacts f = Plain(3, 4);  // would be EV004
  f.lease_given = true;       // but the lease is lost
  EXPECT_EQ(StateOf(f), "EV005");
}

TEST(CheckMember, WithinTheGroup) {
  EXPECT_EQ(ErrorOf([] { everest::check_member("h", 0, 1); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_member("h", 1, 1); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::check_member("h", -1, 4); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::check_member("h", 3, 4); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_member("h", 4, 4); }).message, "member 4 is out of range for handler \"h\"");
  SaveFacts f = Plain(5, 4);
  f.member = 2;
  EXPECT_EQ(StateOf(f), "22023");
  f.members = 3;
  EXPECT_EQ(StateOf(f), "");
}

TEST(PlanResize, StartsAtTheLowestAndKeepsFloorsWhenTheyDiffer) {
  const std::int64_t same[] = {7, 7, 7, 7};
  auto p = everest::plan_resize("h", 4, 2, same, 4);
  EXPECT_TRUE(p.change);
  EXPECT_EQ(p.start, 7);
  EXPECT_FALSE(p.floors);
  const std::int64_t differ[] = {9, 4, 12, 6};
  p = everest::plan_resize("h", 4, 6, differ, 4);
  EXPECT_EQ(p.start, 4);
  EXPECT_TRUE(p.floors);
  EXPECT_FALSE(everest::plan_resize("h", 4, 4, differ, 4).change);
  // a group of one that never saved has no row: it is at 0
  p = everest::plan_resize("h", 1, 3, nullptr, 0);
  EXPECT_TRUE(p.change);
  EXPECT_EQ(p.start, 0);
  EXPECT_FALSE(p.floors);
  const std::int64_t some[] = {5, 8};
  p = everest::plan_resize("h", 3, 2, some, 2);  // member 2 has no row
  EXPECT_EQ(p.start, 0);
  EXPECT_TRUE(p.floors);
  EXPECT_EQ(ErrorOf([] { everest::plan_resize("h", 1, 0, nullptr, 0); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::plan_resize("h", 1, 1025, nullptr, 0); }).sqlstate, "22023");
}

TEST(CheckLeaseTtl, PositiveAndAtMostADay) {
  EXPECT_EQ(ErrorOf([] { everest::check_lease_ttl(1, false); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_lease_ttl(86'400'000'000LL, false); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_lease_ttl(86'400'000'001LL, false); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::check_lease_ttl(0, false); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::check_lease_ttl(-5, false); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::check_lease_ttl(1000, true); }).sqlstate, "22023");
}

TEST(CheckWait, TimeoutAndOwnAppend) {
  EXPECT_EQ(ErrorOf([] { everest::check_wait(10, 0, 0); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_wait(10, -1, 0); }).sqlstate, "22023");
  // Own append in flight at 12: safe_position() cannot pass 11.
  EXPECT_EQ(ErrorOf([] { everest::check_wait(10, 100, 12); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_wait(11, 100, 12); }).sqlstate, "55000");
  EXPECT_EQ(ErrorOf([] { everest::check_wait(50, 100, 12); }).sqlstate, "55000");
}

TEST(CheckHandlerRead, AfterAndTypes) {
  EXPECT_EQ(ErrorOf([] { everest::check_handler_read(false, -7, false, 0, false); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_handler_read(true, 0, false, 0, false); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_handler_read(true, -1, false, 0, false); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::check_handler_read(false, 0, true, 1, false); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_handler_read(false, 0, true, 0, false); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::check_handler_read(false, 0, true, 3, true); }).sqlstate, "22004");
  // types not given: its count and NULLs are not looked at
  EXPECT_EQ(ErrorOf([] { everest::check_handler_read(false, 0, false, 0, true); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { everest::check_handler_read(true, -1, true, 0, true); }).message,
            "after must be >= 0, got -1");
}

TEST(ReadWindow, ForwardBackwardAndTheHorizon) {
  // forward: from the start up to the horizon; empty past it
  auto w = everest::read_window(true, 5, 10);
  EXPECT_EQ(w.upto, 10);
  EXPECT_FALSE(w.empty);
  EXPECT_FALSE(everest::read_window(true, 10, 10).empty);
  EXPECT_TRUE(everest::read_window(true, 11, 10).empty);
  // backward: from `from` down, never above the horizon; -1 from the horizon
  EXPECT_EQ(everest::read_window(false, 5, 10).upto, 5);
  EXPECT_EQ(everest::read_window(false, 50, 10).upto, 10);
  EXPECT_EQ(everest::read_window(false, -1, 10).upto, 10);
  EXPECT_FALSE(everest::read_window(false, 50, 10).empty);
}

TEST(NotifierStep, CoalescesAndLeavesWhenIdle) {
  everest::NotifierFacts f;
  f.moved = true;
  f.min_interval_ms = 10;
  auto s = everest::notifier_step(f);
  EXPECT_TRUE(s.worked);
  EXPECT_FALSE(s.leave);
  EXPECT_EQ(s.pause_ms, 10);  // after a move: pause, so that the next commits come together
  f.min_interval_ms = 0;
  EXPECT_EQ(everest::notifier_step(f).pause_ms, 0);
  f = {};
  f.woken = true;  // woken without a move (an abort): work, no pause
  s = everest::notifier_step(f);
  EXPECT_TRUE(s.worked);
  EXPECT_EQ(s.pause_ms, 0);
  f = {};
  f.ms_since_work = everest::kNotifierIdleMs - 1;
  EXPECT_FALSE(everest::notifier_step(f).leave);
  f.ms_since_work = everest::kNotifierIdleMs;
  EXPECT_TRUE(everest::notifier_step(f).leave);
  // sessions hold the horizon: stay to publish their commit, however late (and to enforce
  // everest.horizon_idle_timeout when it is on)
  f.holders_seen = true;
  f.idle_timeout_enforced = true;
  EXPECT_FALSE(everest::notifier_step(f).leave);
  f.idle_timeout_enforced = false;
  EXPECT_FALSE(everest::notifier_step(f).leave);
  f.holders_seen = false;
  EXPECT_TRUE(everest::notifier_step(f).leave);
}

// The published test vectors of stream_partition (docs/groups.md), computed independently
// (FNV-1a 64 of the UTF-8 bytes, unsigned, modulo members).
TEST(StreamPartition, PublishedVectors) {
  struct V {
    const char* stream;
    std::int32_t by[7];  // members 1, 2, 3, 4, 6, 7, 1024
  };
  const V vectors[] = {
      {"account-1", {0, 0, 1, 2, 4, 4, 598}},
      {"account-2", {0, 1, 0, 3, 3, 1, 163}},
      {"account-42", {0, 1, 1, 1, 1, 1, 645}},
      {"order-7f3a", {0, 1, 2, 3, 5, 0, 935}},
      {"a", {0, 0, 1, 0, 4, 5, 140}},
      {"\xc3\x9cn\xc3\xaf" "c\xc3\xb8" "d\xc3\xa9-1", {0, 0, 0, 2, 0, 3, 1010}},
  };
  const std::int32_t members[] = {1, 2, 3, 4, 6, 7, 1024};
  for (const V& v : vectors)
    for (int i = 0; i < 7; i++)
      EXPECT_EQ(everest::stream_partition(v.stream, members[i]), v.by[i]) << v.stream << " / " << members[i];
  EXPECT_EQ(everest::lock_key("account-1"), 0xde637fc248681e56ull);
  EXPECT_EQ(everest::stream_partition(std::string(512, 'x'), 7), 6);
}

TEST(StreamPartition, Bounds) {
  EXPECT_EQ(ErrorOf([] { everest::stream_partition("a-1", 0); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::stream_partition("a-1", -3); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::stream_partition("a-1", 1025); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::stream_partition("", 4); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::stream_partition("a-1", 1024); }).sqlstate, "");
}

TEST(WaiterWake, RationsWakeUpsByTheNumberOfWaiters) {
  everest::WaiterWakeFacts f;
  f.min_interval_ms = 10;
  f.wakeups_per_second = 300;
  f.waiters = 1;
  f.pending = true;
  f.ms_since_wake = 1000000;
  auto w = everest::waiter_wake(f);
  EXPECT_TRUE(w.wake);
  EXPECT_EQ(w.beat_ms, 10);  // a few waiters: as often as notifications
  f.waiters = 3;
  EXPECT_EQ(everest::waiter_wake(f).beat_ms, 10);
  f.waiters = 20;  // 20 waiters within 300 wake-ups a second: each woken every 67 ms
  EXPECT_EQ(everest::waiter_wake(f).beat_ms, 67);
  f.ms_since_wake = 66;
  w = everest::waiter_wake(f);
  EXPECT_FALSE(w.wake);
  EXPECT_EQ(w.due_in_ms, 1);  // the notifier comes back for it
  f.ms_since_wake = 67;
  EXPECT_TRUE(everest::waiter_wake(f).wake);
  f.pending = false;  // nothing new announced: no wake-up, nothing due
  w = everest::waiter_wake(f);
  EXPECT_FALSE(w.wake);
  EXPECT_EQ(w.due_in_ms, 0);
  f.pending = true;
  f.waiters = 100000;  // a crowd: still woken once a second
  f.ms_since_wake = 0;
  EXPECT_EQ(everest::waiter_wake(f).beat_ms, everest::kWaiterBeatMaxMs);
  f.wakeups_per_second = 0;  // no ration: the notification interval only
  EXPECT_EQ(everest::waiter_wake(f).beat_ms, 10);
  f.waiters = 0;  // nobody waits: nothing to hold back
  f.wakeups_per_second = 300;
  f.ms_since_wake = 0;
  EXPECT_TRUE(everest::waiter_wake(f).wake);
}
