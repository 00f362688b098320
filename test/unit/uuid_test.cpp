// UUID parsing, formatting and version-4 construction (src/core/uuid.cpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "everest/core.hpp"
#include "pg_uuid_reference.hpp"
#include "test_util.hpp"

namespace everest {
namespace {

using everest_test::Contains;
using everest_test::ErrorOf;
using everest_test::PostgresStringToUuid;

constexpr const char* k22P02 = "22P02";
constexpr const char* kCanonical = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
constexpr Uuid kBytes = {0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
                         0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11};

std::optional<Uuid> TryParse(std::string_view text) {
  try {
    return parse_uuid(text);
  } catch (const Error& e) {
    EXPECT_STREQ(e.sqlstate(), k22P02) << text;
    return std::nullopt;
  }
}

// --- parse_uuid: accepted forms ------------------------------------------------------------

TEST(ParseUuid, CanonicalForm) { EXPECT_EQ(parse_uuid(kCanonical), kBytes); }

TEST(ParseUuid, UpperAndMixedCase) {
  EXPECT_EQ(parse_uuid("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11"), kBytes);
  EXPECT_EQ(parse_uuid("A0eEbC99-9c0B-4Ef8-bB6d-6Bb9bD380a11"), kBytes);
}

TEST(ParseUuid, FormsFromThePostgresManual) {
  for (const char* text :
       {"A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
        "a0eebc999c0b4ef8bb6d6bb9bd380a11", "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11",
        "{a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11}"})
    EXPECT_EQ(TryParse(text), std::optional<Uuid>(kBytes)) << text;
}

TEST(ParseUuid, BracesAroundTheBareForm) {
  EXPECT_EQ(parse_uuid("{a0eebc999c0b4ef8bb6d6bb9bd380a11}"), kBytes);
}

TEST(ParseUuid, DashAfterEveryGroupOfFour) {
  EXPECT_EQ(parse_uuid("a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11"), kBytes);
}

TEST(ParseUuid, AllZerosAndAllOnes) {
  EXPECT_EQ(parse_uuid("00000000-0000-0000-0000-000000000000"), Uuid{});
  Uuid ones;
  ones.fill(0xff);
  EXPECT_EQ(parse_uuid("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"), ones);
}

// --- parse_uuid: rejected forms ------------------------------------------------------------

TEST(ParseUuid, RejectsMalformedText) {
  for (const char* text : {
           "",
           "{}",
           "{",
           "}",
           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",    // 31 digits
           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",  // 33 digits
           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",  // trailing dash
           "-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  // leading dash
           "a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",  // double dash
           "a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  // dash after 3 digits
           "a0-eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  // dash after 2 digits
           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1g",   // not hex
           "a0eebc99 9c0b 4ef8 bb6d 6bb9bd380a11",   // spaces
           " a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  // leading space
           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 ",  // trailing space
           "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  // open brace only
           "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",  // close brace only
           "{{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}}",
           "{-a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}",
           "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-}",
           "(a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11)",
           "0xa0eebc999c0b4ef8bb6d6bb9bd380a11",
           "urn:uuid:a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
       }) {
    auto err = ErrorOf([&] { parse_uuid(text); });
    EXPECT_EQ(err.sqlstate, k22P02) << "\"" << text << "\"";
  }
}

TEST(ParseUuid, RejectsEmbeddedNul) {
  std::string text(kCanonical);
  text[10] = '\0';
  EXPECT_EQ(ErrorOf([&] { parse_uuid(text); }).sqlstate, k22P02);
  std::string trailing = std::string(kCanonical) + '\0';
  EXPECT_EQ(ErrorOf([&] { parse_uuid(trailing); }).sqlstate, k22P02);
}

TEST(ParseUuid, ErrorQuotesTheInput) {
  auto err = ErrorOf([] { parse_uuid("not-a-uuid"); });
  EXPECT_EQ(err.sqlstate, k22P02);
  EXPECT_TRUE(Contains(err.message, "\"not-a-uuid\""));
  EXPECT_TRUE(Contains(err.message, "uuid"));
}

TEST(ParseUuid, ErrorTruncatesLongInput) {
  std::string text(5000, 'z');
  auto err = ErrorOf([&] { parse_uuid(text); });
  EXPECT_EQ(err.sqlstate, k22P02);
  EXPECT_LT(err.message.size(), 200u);
}

// A dash is allowed only after digit 4, 8, ..., 28 (after any group of four, not at the end).
TEST(ParseUuid, SingleDashAtEachPosition) {
  const std::string bare = "a0eebc999c0b4ef8bb6d6bb9bd380a11";
  for (std::size_t k = 0; k <= bare.size(); k++) {
    std::string text = bare.substr(0, k) + "-" + bare.substr(k);
    bool allowed = k % 4 == 0 && k >= 4 && k <= 28;
    EXPECT_EQ(TryParse(text).has_value(), allowed) << text;
    EXPECT_EQ(TryParse("{" + text + "}").has_value(), allowed) << text;
  }
}

// Differential test against the transcription of PostgreSQL's parser, on strings made of the
// characters that matter (hex digits of both cases, '-', braces, one non-hex letter).
TEST(ParseUuid, AgreesWithPostgresOnRandomInputs) {
  std::mt19937 rng(20240611);
  const std::string alphabet = "0123456789abcdefABCDEF----{}g";
  const std::string bare = "a0eebc999c0b4ef8bb6d6bb9bd380a11";
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  int accepted = 0;
  for (int round = 0; round < 50000; round++) {
    std::string text;
    if (round % 2 == 0) {
      // Near-valid: the bare form with dashes, mostly after groups of four, maybe braces.
      for (std::size_t k = 0; k < bare.size(); k++) {
        text.push_back(bare[k]);
        if (((k + 1) % 4 == 0 && rng() % 2 == 0) || rng() % 64 == 0) text.push_back('-');
      }
      if (rng() % 3 == 0) text = "{" + text + "}";
      if (rng() % 5 == 0) text.erase(rng() % text.size(), 1);
    } else {
      std::size_t length = 28 + rng() % 16;
      for (std::size_t k = 0; k < length; k++) text.push_back(alphabet[pick(rng)]);
    }
    std::optional<Uuid> expected = PostgresStringToUuid(text);
    std::optional<Uuid> actual = TryParse(text);
    ASSERT_EQ(actual, expected) << "input \"" << text << "\"";
    if (expected) accepted++;
  }
  EXPECT_GT(accepted, 1000);  // the generator does reach the accepting paths
}

// --- format_uuid ---------------------------------------------------------------------------

TEST(FormatUuid, LowercaseCanonicalForm) {
  EXPECT_EQ(format_uuid(kBytes), kCanonical);
  EXPECT_EQ(format_uuid(Uuid{}), "00000000-0000-0000-0000-000000000000");
  Uuid ones;
  ones.fill(0xff);
  EXPECT_EQ(format_uuid(ones), "ffffffff-ffff-ffff-ffff-ffffffffffff");
}

TEST(FormatUuid, RoundTripsThroughParse) {
  std::mt19937 rng(7);
  for (int round = 0; round < 1000; round++) {
    Uuid id;
    for (auto& b : id) b = static_cast<std::uint8_t>(rng());
    std::string text = format_uuid(id);
    ASSERT_EQ(text.size(), 36u);
    EXPECT_EQ(parse_uuid(text), id);
  }
}

TEST(FormatUuid, NormalizesOtherForms) {
  EXPECT_EQ(format_uuid(parse_uuid("{A0EEBC999C0B4EF8BB6D6BB9BD380A11}")), kCanonical);
}

// --- make_uuid_v4 --------------------------------------------------------------------------

TEST(MakeUuidV4, SetsVersionAndVariant) {
  Uuid zeros{};
  EXPECT_EQ(format_uuid(make_uuid_v4(zeros)), "00000000-0000-4000-8000-000000000000");
  Uuid ones;
  ones.fill(0xff);
  EXPECT_EQ(format_uuid(make_uuid_v4(ones)), "ffffffff-ffff-4fff-bfff-ffffffffffff");
}

TEST(MakeUuidV4, KeepsEveryOtherBit) {
  std::mt19937 rng(42);
  for (int round = 0; round < 1000; round++) {
    Uuid random;
    for (auto& b : random) b = static_cast<std::uint8_t>(rng());
    Uuid v4 = make_uuid_v4(random);
    EXPECT_EQ(v4[6] >> 4, 4);
    EXPECT_EQ(v4[8] >> 6, 2);
    EXPECT_EQ(v4[6] & 0x0f, random[6] & 0x0f);
    EXPECT_EQ(v4[8] & 0x3f, random[8] & 0x3f);
    for (int i = 0; i < 16; i++) {
      if (i != 6 && i != 8) {
        EXPECT_EQ(v4[i], random[i]) << i;
      }
    }
    EXPECT_EQ(format_uuid(v4)[14], '4');
    EXPECT_NE(std::string("89ab").find(format_uuid(v4)[19]), std::string::npos);
  }
}

TEST(MakeUuidV4, IsIdempotent) {
  Uuid once = make_uuid_v4(kBytes);
  EXPECT_EQ(make_uuid_v4(once), once);
}

// --- make_uuid_v7 --------------------------------------------------------------------------

TEST(MakeUuidV7, TimeFirstThenVersionAndVariant) {
  Uuid zeros{};
  // 2026-11-26T00:00:00Z = 1795651200000 ms = 0x01a21526e400
  EXPECT_EQ(format_uuid(make_uuid_v7(1795651200000ull, zeros)), "01a21526-e400-7000-8000-000000000000");
  Uuid ones;
  ones.fill(0xff);
  EXPECT_EQ(format_uuid(make_uuid_v7(0, ones)), "00000000-0000-7fff-bfff-ffffffffffff");
}

TEST(MakeUuidV7, LaterTimesSortAfterEarlierOnes) {
  Uuid high, low;
  high.fill(0xff);
  low.fill(0x00);
  EXPECT_LT(make_uuid_v7(1000, high), make_uuid_v7(1001, low));
}

}  // namespace
}  // namespace everest
