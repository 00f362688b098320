// Stream names, expected versions and max_count (src/core/streams.cpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "everest/core.hpp"
#include "test_util.hpp"

namespace everest {
namespace {

using everest_test::Contains;
using everest_test::ErrorOf;

constexpr const char* k22023 = "22023";
constexpr const char* kEv001 = "EV001";

// --- Stream names for reads ----------------------------------------------------------------

TEST(ClassifyStreamForRead, RegularName) {
  StreamRef ref = classify_stream_for_read("account-42");
  EXPECT_EQ(ref.kind, StreamKind::regular);
  EXPECT_TRUE(ref.category.empty());
}

TEST(ClassifyStreamForRead, AllStream) {
  EXPECT_EQ(classify_stream_for_read("$all").kind, StreamKind::all);
}

TEST(ClassifyStreamForRead, CategoryStream) {
  StreamRef ref = classify_stream_for_read("$ce-account");
  EXPECT_EQ(ref.kind, StreamKind::category);
  EXPECT_EQ(ref.category, "account");
}

TEST(ClassifyStreamForRead, OneCharacterCategory) {
  StreamRef ref = classify_stream_for_read("$ce-a");
  EXPECT_EQ(ref.kind, StreamKind::category);
  EXPECT_EQ(ref.category, "a");
}

TEST(ClassifyStreamForRead, CategoryViewPointsIntoTheName) {
  std::string name = "$ce-orders";
  StreamRef ref = classify_stream_for_read(name);
  EXPECT_EQ(ref.category.data(), name.data() + 4);
}

TEST(ClassifyStreamForRead, EmptyCategoryIsRejected) {
  auto err = ErrorOf([] { classify_stream_for_read("$ce-"); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_FALSE(err.hint.empty());
}

TEST(ClassifyStreamForRead, EmptyNameIsRejected) {
  auto err = ErrorOf([] { classify_stream_for_read(""); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "empty"));
}

TEST(ClassifyStreamForRead, OtherReservedNamesAreRejected) {
  for (const char* name :
       {"$", "$al", "$all2", "$ALL", "$ce", "$ce_account", "$CE-account", "$$all", "$foo"}) {
    auto err = ErrorOf([&] { classify_stream_for_read(name); });
    EXPECT_EQ(err.sqlstate, k22023) << name;
  }
}

TEST(ClassifyStreamForRead, DollarInsideANameIsNotReserved) {
  EXPECT_EQ(classify_stream_for_read("a$all").kind, StreamKind::regular);
  EXPECT_EQ(classify_stream_for_read(" $all").kind, StreamKind::regular);
}

TEST(ClassifyStreamForRead, LengthLimitIs512Bytes) {
  EXPECT_EQ(kMaxStreamNameBytes, 512u);
  EXPECT_EQ(classify_stream_for_read(std::string(512, 'x')).kind, StreamKind::regular);
  auto err = ErrorOf([] { classify_stream_for_read(std::string(513, 'x')); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.detail, "513"));
  EXPECT_TRUE(Contains(err.detail, "512"));
}

TEST(ClassifyStreamForRead, LengthIsCountedInBytes) {
  // 171 three-byte characters: 513 bytes but only 171 characters.
  std::string name;
  for (int i = 0; i < 171; i++) name += "\xe2\x82\xac";  // U+20AC EURO SIGN
  ASSERT_EQ(name.size(), 513u);
  EXPECT_EQ(ErrorOf([&] { classify_stream_for_read(name); }).sqlstate, k22023);
  name.resize(510);
  EXPECT_EQ(classify_stream_for_read(name).kind, StreamKind::regular);
}

TEST(ClassifyStreamForRead, LongCategoryStreamCountsTheWholeName) {
  std::string name = "$ce-" + std::string(508, 'c');  // 512 bytes
  EXPECT_EQ(classify_stream_for_read(name).kind, StreamKind::category);
  EXPECT_EQ(ErrorOf([&] { classify_stream_for_read(name + "c"); }).sqlstate, k22023);
}

// --- Stream names for writes ---------------------------------------------------------------

TEST(CheckWritableStream, AcceptsRegularNames) {
  for (const char* name : {"account-42", "a", "account", "a-b-c", "with space", "a$b"})
    EXPECT_EQ(ErrorOf([&] { check_writable_stream(name); }).sqlstate, "") << name;
  EXPECT_EQ(ErrorOf([] { check_writable_stream(std::string(512, 'w')); }).sqlstate, "");
}

TEST(CheckWritableStream, RejectsReservedNames) {
  for (const char* name : {"$all", "$ce-account", "$ce-", "$", "$anything"}) {
    auto err = ErrorOf([&] { check_writable_stream(name); });
    EXPECT_EQ(err.sqlstate, k22023) << name;
    EXPECT_TRUE(Contains(err.message, name));
  }
}

TEST(CheckWritableStream, RejectsEmptyAndTooLongNames) {
  EXPECT_EQ(ErrorOf([] { check_writable_stream(""); }).sqlstate, k22023);
  EXPECT_EQ(ErrorOf([] { check_writable_stream(std::string(513, 'w')); }).sqlstate, k22023);
  EXPECT_EQ(ErrorOf([] { check_writable_stream(std::string(100000, 'w')); }).sqlstate, k22023);
}

// --- Categories ----------------------------------------------------------------------------

TEST(CategoryOf, PartBeforeTheFirstDash) {
  EXPECT_EQ(category_of("account-42"), "account");
  EXPECT_EQ(category_of("a-b-c"), "a");
  EXPECT_EQ(category_of("order-"), "order");
}

TEST(CategoryOf, WholeNameWithoutDash) {
  EXPECT_EQ(category_of("account"), "account");
  EXPECT_EQ(category_of("x"), "x");
}

// --- Expected versions ---------------------------------------------------------------------

TEST(CheckExpectedVersionValue, AcceptsTheDocumentedValues) {
  for (std::int64_t v :
       {kExpectAny, kExpectNoStream, kExpectStreamExists, std::int64_t{0}, std::int64_t{1},
        std::int64_t{41}, std::numeric_limits<std::int64_t>::max()})
    EXPECT_EQ(ErrorOf([&] { check_expected_version_value(v); }).sqlstate, "") << v;
  EXPECT_EQ(kExpectAny, -2);
  EXPECT_EQ(kExpectNoStream, -1);
  EXPECT_EQ(kExpectStreamExists, -4);
}

TEST(CheckExpectedVersionValue, RejectsOtherNegativeValues) {
  for (std::int64_t v : {std::int64_t{-3}, std::int64_t{-5}, std::int64_t{-100},
                         std::numeric_limits<std::int64_t>::min()}) {
    auto err = ErrorOf([&] { check_expected_version_value(v); });
    EXPECT_EQ(err.sqlstate, k22023) << v;
    EXPECT_TRUE(Contains(err.message, std::to_string(v)));
  }
}

TEST(CheckExpectedVersion, AnyAcceptsEverything) {
  for (std::int64_t actual : {-1, 0, 7})
    EXPECT_EQ(ErrorOf([&] { check_expected_version("s", kExpectAny, actual); }).sqlstate, "");
}

TEST(CheckExpectedVersion, NoStreamNeedsAnAbsentStream) {
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", kExpectNoStream, -1); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", kExpectNoStream, 0); }).sqlstate, kEv001);
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", kExpectNoStream, 5); }).sqlstate, kEv001);
}

TEST(CheckExpectedVersion, StreamExistsNeedsAVersion) {
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", kExpectStreamExists, 0); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", kExpectStreamExists, 9); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", kExpectStreamExists, -1); }).sqlstate, kEv001);
}

TEST(CheckExpectedVersion, ExactVersion) {
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", 0, 0); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", 3, 3); }).sqlstate, "");
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", 0, -1); }).sqlstate, kEv001);
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", 3, 2); }).sqlstate, kEv001);
  EXPECT_EQ(ErrorOf([] { check_expected_version("s", 3, 4); }).sqlstate, kEv001);
}

TEST(CheckExpectedVersion, MismatchNamesStreamExpectedAndActual) {
  auto err = ErrorOf([] { check_expected_version("account-42", 17, 23); });
  EXPECT_EQ(err.sqlstate, kEv001);
  EXPECT_TRUE(Contains(err.message, "account-42"));
  EXPECT_TRUE(Contains(err.message, "17"));
  EXPECT_TRUE(Contains(err.message, "23"));
}

TEST(CheckExpectedVersion, MismatchReportsAbsentStreamAsMinusOne) {
  auto err = ErrorOf([] { check_expected_version("order-7", kExpectStreamExists, -1); });
  EXPECT_EQ(err.sqlstate, kEv001);
  EXPECT_TRUE(Contains(err.message, "order-7"));
  EXPECT_TRUE(Contains(err.message, "-4"));
  EXPECT_TRUE(Contains(err.message, "actual -1"));
}

TEST(CheckExpectedVersion, MismatchForNoStreamNamesMinusOne) {
  auto err = ErrorOf([] { check_expected_version("order-7", kExpectNoStream, 12); });
  EXPECT_EQ(err.sqlstate, kEv001);
  EXPECT_TRUE(Contains(err.message, "-1"));
  EXPECT_TRUE(Contains(err.message, "12"));
}

// --- max_count -----------------------------------------------------------------------------

TEST(CheckMaxCount, ZeroAndPositiveAreAccepted) {
  for (std::int64_t n : {std::int64_t{0}, std::int64_t{1}, std::int64_t{1000},
                         std::numeric_limits<std::int64_t>::max()})
    EXPECT_EQ(ErrorOf([&] { check_max_count(n); }).sqlstate, "") << n;
}

TEST(CheckMaxCount, NegativeIsRejected) {
  for (std::int64_t n :
       {std::int64_t{-1}, std::int64_t{-1000}, std::numeric_limits<std::int64_t>::min()}) {
    auto err = ErrorOf([&] { check_max_count(n); });
    EXPECT_EQ(err.sqlstate, k22023) << n;
    EXPECT_TRUE(Contains(err.message, std::to_string(n)));
  }
}

}  // namespace
}  // namespace everest

// --- Names whose category could never be read (issue 11 item 9) ----------------------------
using everest_test::Contains;
using everest_test::ErrorOf;

TEST(StreamNames, NamesBeginningWithDashAreNotWritable) {
  for (const char* name : {"-x", "--", "-", "-account-1"}) {
    auto err = ErrorOf([&] { everest::check_writable_stream(name); });
    EXPECT_EQ(err.sqlstate, "22023") << name;
    EXPECT_TRUE(Contains(err.message, "begins with \"-\"")) << name;
  }
  EXPECT_EQ(ErrorOf([] { everest::check_writable_stream("a-"); }).sqlstate, "");
  // Reading such a name is not an error: older stores may hold one.
  EXPECT_EQ(everest::classify_stream_for_read("-x").kind, everest::StreamKind::regular);
}

TEST(StreamNames, CategoriesContainNoDash) {
  auto err = ErrorOf([] { everest::classify_stream_for_read("$ce-a-b"); });
  EXPECT_EQ(err.sqlstate, "22023");
  EXPECT_EQ(err.message, "category \"a-b\" contains \"-\"");
  EXPECT_TRUE(Contains(err.hint, "$ce-a"));
}

TEST(HandlerNames, NonEmptyAndBounded) {
  EXPECT_EQ(ErrorOf([] { everest::check_handler_name(""); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::check_handler_name(std::string(512, 'h')); }).sqlstate, "");
  auto err = ErrorOf([] { everest::check_handler_name(std::string(513, 'h')); });
  EXPECT_EQ(err.sqlstate, "22023");
  EXPECT_EQ(err.message, "handler name is too long");
}

TEST(Tombstones, AppendToATombstonedStreamIsEV002) {
  EXPECT_EQ(ErrorOf([] { everest::check_not_tombstoned("acct-1", false); }).sqlstate, "");
  auto err = ErrorOf([] { everest::check_not_tombstoned("acct-1", true); });
  EXPECT_EQ(err.sqlstate, "EV002");
  EXPECT_EQ(err.message, "stream \"acct-1\" is deleted for good");
}

TEST(DuplicateIds, AConcurrentlyStoredIdIsEV003) {
  everest::Error e = everest::duplicate_id_error("Key (id)=(x) already exists.");
  EXPECT_STREQ(e.sqlstate(), "EV003");
  EXPECT_EQ(e.detail(), "Key (id)=(x) already exists.");
  EXPECT_EQ(everest::duplicate_id_error("").detail(), "Another transaction stored it.");
}

TEST(EventTypeStreams, EtPrefixNamesAType) {
  auto ref = everest::classify_stream_for_read("$et-Deposited");
  EXPECT_EQ(ref.kind, everest::StreamKind::type);
  EXPECT_EQ(ref.category, "Deposited");
  // a type may contain '-' (unlike a category)
  EXPECT_EQ(everest::classify_stream_for_read("$et-order-placed").category, "order-placed");
  EXPECT_EQ(ErrorOf([] { everest::classify_stream_for_read("$et-"); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::check_writable_stream("$et-Deposited"); }).sqlstate, "22023");
  EXPECT_EQ(ErrorOf([] { everest::classify_stream_for_read("$xx-1"); }).sqlstate, "22023");
}
