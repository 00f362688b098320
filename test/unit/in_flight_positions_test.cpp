// Positions in flight, by subtransaction (src/core/in_flight_positions.cpp). Subtransaction
// ids follow PostgreSQL: the top transaction is 1, and each new subtransaction gets the next id.
#include <gtest/gtest.h>

#include <cstdint>

#include "everest/core.hpp"

namespace everest {
namespace {

constexpr std::uint32_t kTop = 1;

TEST(InFlightPositions, EmptyTrackerReportsZero) {
  InFlightPositions t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.lowest(), 0);
}

TEST(InFlightPositions, LowestOfOneSubtransactionIsItsFirstDraw) {
  InFlightPositions t;
  t.drawn(kTop, 10);
  EXPECT_FALSE(t.empty());
  EXPECT_EQ(t.lowest(), 10);
  t.drawn(kTop, 15);
  EXPECT_EQ(t.lowest(), 10);
}

TEST(InFlightPositions, ALowerDrawLowersTheEntry) {
  InFlightPositions t;
  t.drawn(kTop, 15);
  t.drawn(kTop, 10);
  EXPECT_EQ(t.lowest(), 10);
}

TEST(InFlightPositions, LowestAcrossSubtransactions) {
  InFlightPositions t;
  t.drawn(3, 30);
  t.drawn(kTop, 50);
  t.drawn(2, 20);
  EXPECT_EQ(t.lowest(), 20);
}

TEST(InFlightPositions, ClearEmpties) {
  InFlightPositions t;
  t.drawn(kTop, 5);
  t.drawn(2, 6);
  t.clear();
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.lowest(), 0);
  t.drawn(kTop, 9);
  EXPECT_EQ(t.lowest(), 9);
}

TEST(InFlightPositions, SubabortReleasesOnlyItsPositions) {
  // SAVEPOINT a (2); draw 5; ROLLBACK TO a; SAVEPOINT b (3); draw 8; RELEASE b; draw 10.
  InFlightPositions t;
  t.drawn(2, 5);
  EXPECT_EQ(t.lowest(), 5);
  t.subabort(2);
  EXPECT_EQ(t.lowest(), 0);
  t.drawn(3, 8);
  t.subcommit(3, kTop);
  t.drawn(kTop, 10);
  EXPECT_EQ(t.lowest(), 8);
}

TEST(InFlightPositions, SubabortOfTheOnlyDrawingSubxactEmpties) {
  InFlightPositions t;
  t.drawn(2, 7);
  t.subabort(2);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.lowest(), 0);
}

TEST(InFlightPositions, SubabortDropsStillListedChildren) {
  // SAVEPOINT a (2); draw; SAVEPOINT b (3); draw; ROLLBACK TO a.
  InFlightPositions t;
  t.drawn(kTop, 1);
  t.drawn(2, 10);
  t.drawn(3, 20);
  t.subabort(2);
  EXPECT_EQ(t.lowest(), 1);
  t.clear();
  // The same without a draw in the top transaction: nothing is left in flight.
  t.drawn(2, 10);
  t.drawn(3, 20);
  t.subabort(2);
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.lowest(), 0);
  t.drawn(kTop, 1);
  t.drawn(4, 40);  // SAVEPOINT c (4); draw; ROLLBACK TO c
  t.subabort(4);
  EXPECT_EQ(t.lowest(), 1);
}

TEST(InFlightPositions, SubabortKeepsAncestors) {
  InFlightPositions t;
  t.drawn(2, 10);
  t.drawn(3, 20);
  t.drawn(4, 30);
  t.subabort(4);
  EXPECT_EQ(t.lowest(), 10);
  t.subabort(3);
  EXPECT_EQ(t.lowest(), 10);
  t.subabort(2);
  EXPECT_TRUE(t.empty());
}

TEST(InFlightPositions, SubabortOfUnknownSubxactWithoutChildrenIsHarmless) {
  InFlightPositions t;
  t.drawn(kTop, 4);
  t.subabort(7);
  EXPECT_EQ(t.lowest(), 4);
}

TEST(InFlightPositions, SubcommitMovesPositionsToTheParent) {
  // SAVEPOINT a (2); draw; RELEASE a; SAVEPOINT b (3); ROLLBACK TO b.
  InFlightPositions t;
  t.drawn(2, 10);
  t.subcommit(2, kTop);
  t.subabort(3);
  EXPECT_EQ(t.lowest(), 10);
}

TEST(InFlightPositions, SubcommitMergesIntoAListedParent) {
  InFlightPositions t;
  t.drawn(kTop, 40);
  t.drawn(2, 10);
  t.subcommit(2, kTop);
  EXPECT_EQ(t.lowest(), 10);
  t.subabort(3);  // a later savepoint rolls back: the merged positions stay
  EXPECT_EQ(t.lowest(), 10);
  t.clear();
  EXPECT_EQ(t.lowest(), 0);
}

TEST(InFlightPositions, SubcommitKeepsTheParentsLowerPosition) {
  InFlightPositions t;
  t.drawn(2, 10);
  t.drawn(3, 40);
  t.subcommit(3, 2);
  EXPECT_EQ(t.lowest(), 10);
  t.subabort(2);
  EXPECT_TRUE(t.empty());
}

TEST(InFlightPositions, CommittedGrandchildIsReleasedWithItsAbortedAncestor) {
  // SAVEPOINT a (2); SAVEPOINT b (3); draw; RELEASE b; SAVEPOINT c (4); draw; RELEASE c;
  // ROLLBACK TO a: everything drawn is released.
  InFlightPositions t;
  t.drawn(kTop, 100);
  t.drawn(3, 5);
  t.subcommit(3, 2);
  t.drawn(4, 7);
  t.subcommit(4, 2);
  EXPECT_EQ(t.lowest(), 5);
  t.subabort(2);
  EXPECT_EQ(t.lowest(), 100);
}

TEST(InFlightPositions, SubcommitChainUpToTheTop) {
  InFlightPositions t;
  t.drawn(4, 9);
  t.subcommit(4, 3);
  t.subcommit(3, 2);
  t.subcommit(2, kTop);
  EXPECT_EQ(t.lowest(), 9);
  t.subabort(5);  // a later savepoint rolls back: the top keeps its positions
  EXPECT_EQ(t.lowest(), 9);
}

TEST(InFlightPositions, SubcommitOfUnknownSubxactIsHarmless) {
  InFlightPositions t;
  t.drawn(kTop, 3);
  t.subcommit(5, kTop);
  EXPECT_EQ(t.lowest(), 3);
}

TEST(InFlightPositions, DrawAfterSubcommitIntoTheSameParent) {
  InFlightPositions t;
  t.drawn(2, 20);
  t.subcommit(2, kTop);
  t.drawn(kTop, 30);
  t.drawn(3, 25);
  t.subabort(3);
  EXPECT_EQ(t.lowest(), 20);
}

TEST(InFlightPositions, LargePositions) {
  InFlightPositions t;
  t.drawn(kTop, INT64_MAX);
  t.drawn(2, INT64_MAX - 1);
  EXPECT_EQ(t.lowest(), INT64_MAX - 1);
}

}  // namespace
}  // namespace everest
