// Idempotent retries by event id (src/core/idempotency.cpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "everest/core.hpp"
#include "test_util.hpp"

namespace everest {
namespace {

using everest_test::Contains;
using everest_test::ErrorOf;

constexpr const char* kEv003 = "EV003";

Uuid Id(std::uint8_t n) {
  Uuid id{};
  id[0] = 0xe0;
  id[15] = n;
  return id;
}

using Requested = std::vector<std::optional<Uuid>>;

Requested Ids(std::initializer_list<std::uint8_t> ns) {
  Requested out;
  for (std::uint8_t n : ns) out.push_back(Id(n));
  return out;
}

// Ids 1..n stored in this stream at versions first..first+n-1, positions from `position`.
std::vector<StoredEvent> StoredRun(std::uint8_t n, std::int64_t first, std::int64_t position) {
  std::vector<StoredEvent> out;
  for (std::uint8_t k = 0; k < n; k++)
    out.push_back(
        StoredEvent{Id(static_cast<std::uint8_t>(k + 1)), true, first + k, position + 10 * k});
  return out;
}

void ExpectResult(const AppendResult& r, std::int64_t first_version, std::int64_t last_version,
                  std::int64_t first_position, std::int64_t last_position) {
  EXPECT_EQ(r.first_version, first_version);
  EXPECT_EQ(r.last_version, last_version);
  EXPECT_EQ(r.first_position, first_position);
  EXPECT_EQ(r.last_position, last_position);
}

// --- Retries that match --------------------------------------------------------------------

TEST(MatchIdempotentRetry, NoStreamRetryStartsAtVersionZero) {
  AppendResult r =
      match_idempotent_retry("s", Ids({1, 2, 3}), kExpectNoStream, StoredRun(3, 0, 100));
  ExpectResult(r, 0, 2, 100, 120);
}

TEST(MatchIdempotentRetry, ExactVersionRetryStartsRightAfterIt) {
  AppendResult r = match_idempotent_retry("s", Ids({1, 2}), 4, StoredRun(2, 5, 50));
  ExpectResult(r, 5, 6, 50, 60);
}

TEST(MatchIdempotentRetry, AnyMatchesAnywhere) {
  ExpectResult(match_idempotent_retry("s", Ids({1, 2}), kExpectAny, StoredRun(2, 0, 7)), 0, 1, 7,
               17);
  ExpectResult(match_idempotent_retry("s", Ids({1, 2}), kExpectAny, StoredRun(2, 9, 7)), 9, 10, 7,
               17);
}

// An append with -4 needed an existing stream, so its first event had a version of 1 or more.
TEST(MatchIdempotentRetry, StreamExistsMatchesAfterVersionZero) {
  ExpectResult(match_idempotent_retry("s", Ids({1, 2}), kExpectStreamExists, StoredRun(2, 1, 7)), 1,
               2, 7, 17);
  ExpectResult(match_idempotent_retry("s", Ids({1, 2}), kExpectStreamExists, StoredRun(2, 9, 7)), 9,
               10, 7, 17);
  auto err = ErrorOf([] {
    match_idempotent_retry("s", Ids({1, 2}), kExpectStreamExists, StoredRun(2, 0, 7));
  });
  EXPECT_EQ(err.sqlstate, kEv003);
  EXPECT_TRUE(Contains(err.detail, "version 0"));
}

TEST(MatchIdempotentRetry, SingleEvent) {
  ExpectResult(match_idempotent_retry("s", Ids({1}), 11, StoredRun(1, 12, 999)), 12, 12, 999, 999);
}

TEST(MatchIdempotentRetry, StoredRowsInAnyOrder) {
  std::vector<StoredEvent> stored = StoredRun(3, 3, 30);
  std::swap(stored[0], stored[2]);
  ExpectResult(match_idempotent_retry("s", Ids({1, 2, 3}), 2, stored), 3, 5, 30, 50);
}

// --- Reuses that are not retries (EV003) ---------------------------------------------------

TEST(MatchIdempotentRetry, IdInAnotherStream) {
  std::vector<StoredEvent> stored = StoredRun(2, 0, 1);
  stored[1].same_stream = false;
  auto err = ErrorOf([&] { match_idempotent_retry("s", Ids({1, 2}), kExpectAny, stored); });
  EXPECT_EQ(err.sqlstate, kEv003);
  EXPECT_TRUE(Contains(err.message, format_uuid(Id(2))));
  EXPECT_TRUE(Contains(err.detail, "another stream"));
}

TEST(MatchIdempotentRetry, SingleIdInAnotherStream) {
  std::vector<StoredEvent> stored = {StoredEvent{Id(1), false, 0, 1}};
  EXPECT_EQ(ErrorOf([&] { match_idempotent_retry("s", Ids({1}), kExpectAny, stored); }).sqlstate,
            kEv003);
}

TEST(MatchIdempotentRetry, EventWithoutId) {
  Requested requested = Ids({1, 2});
  requested.push_back(std::nullopt);
  auto err =
      ErrorOf([&] { match_idempotent_retry("s", requested, kExpectAny, StoredRun(2, 0, 1)); });
  EXPECT_EQ(err.sqlstate, kEv003);
  EXPECT_TRUE(Contains(err.message, format_uuid(Id(1))));

  requested = {std::nullopt, Id(1)};
  EXPECT_EQ(ErrorOf([&] {
              match_idempotent_retry("s", requested, kExpectAny, StoredRun(1, 0, 1));
            }).sqlstate,
            kEv003);
}

TEST(MatchIdempotentRetry, PartialOverlap) {
  // The batch has ids 1, 2, 3; only 1 and 2 are stored.
  auto err = ErrorOf([] {
    match_idempotent_retry("s", Ids({1, 2, 3}), kExpectAny, StoredRun(2, 0, 1));
  });
  EXPECT_EQ(err.sqlstate, kEv003);
  // Only the last one is stored.
  std::vector<StoredEvent> stored = {StoredEvent{Id(3), true, 0, 1}};
  EXPECT_EQ(ErrorOf([&] {
              match_idempotent_retry("s", Ids({1, 2, 3}), kExpectAny, stored);
            }).sqlstate,
            kEv003);
}

TEST(MatchIdempotentRetry, DifferentOrder) {
  auto err = ErrorOf([] {
    match_idempotent_retry("s", Ids({2, 1}), kExpectAny, StoredRun(2, 0, 1));
  });
  EXPECT_EQ(err.sqlstate, kEv003);
  EXPECT_EQ(ErrorOf([] {
              match_idempotent_retry("s", Ids({1, 3, 2}), kExpectAny, StoredRun(3, 0, 1));
            }).sqlstate,
            kEv003);
}

TEST(MatchIdempotentRetry, NonContiguousRun) {
  std::vector<StoredEvent> stored = {StoredEvent{Id(1), true, 0, 1},
                                     StoredEvent{Id(2), true, 2, 3}};
  EXPECT_EQ(ErrorOf([&] {
              match_idempotent_retry("s", Ids({1, 2}), kExpectAny, stored);
            }).sqlstate,
            kEv003);
}

TEST(MatchIdempotentRetry, SameIdTwiceInTheBatch) {
  EXPECT_EQ(ErrorOf([] {
              match_idempotent_retry("s", Ids({1, 1}), kExpectAny, StoredRun(1, 0, 1));
            }).sqlstate,
            kEv003);
}

TEST(MatchIdempotentRetry, WrongExpectedVersion) {
  // Stored at versions 3..4: only expected 2 (or -2 / -4) describes that append.
  for (std::int64_t expected : {std::int64_t{-1}, std::int64_t{0}, std::int64_t{1}, std::int64_t{3},
                                std::int64_t{4}, std::int64_t{5}}) {
    auto err = ErrorOf([&] {
      match_idempotent_retry("s", Ids({1, 2}), expected, StoredRun(2, 3, 1));
    });
    EXPECT_EQ(err.sqlstate, kEv003) << expected;
  }
  EXPECT_EQ(ErrorOf([] {
              match_idempotent_retry("s", Ids({1, 2}), 2, StoredRun(2, 3, 1));
            }).sqlstate,
            "");
}

TEST(MatchIdempotentRetry, NoStreamRetryOfABatchNotAtVersionZero) {
  auto err =
      ErrorOf([] { match_idempotent_retry("s", Ids({1}), kExpectNoStream, StoredRun(1, 1, 1)); });
  EXPECT_EQ(err.sqlstate, kEv003);
  EXPECT_TRUE(Contains(err.detail, "version 1"));
}

TEST(MatchIdempotentRetry, ErrorsCarryAHint) {
  auto err = ErrorOf([] {
    match_idempotent_retry("s", Ids({2, 1}), kExpectAny, StoredRun(2, 0, 1));
  });
  EXPECT_EQ(err.sqlstate, kEv003);
  EXPECT_FALSE(err.detail.empty());
  EXPECT_FALSE(err.hint.empty());
}

}  // namespace
}  // namespace everest
