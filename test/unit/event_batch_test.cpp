// Event batch validation (src/core/event_batch.cpp): the element-by-element validator the
// PostgreSQL glue feeds from jsonb, and the Boost.JSON text front end parse_event_batch.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "everest/core.hpp"
#include "test_util.hpp"

namespace everest {
namespace {

using everest_test::Contains;
using everest_test::ErrorOf;

constexpr const char* k22023 = "22023";
constexpr const char* k22P02 = "22P02";
constexpr const char* kId1 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
constexpr const char* kId2 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

// --- parse_event_batch: valid batches ------------------------------------------------------

TEST(ParseEventBatch, MinimalEvent) {
  std::vector<ParsedEvent> events = parse_event_batch(R"([{"type": "Opened"}])");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "Opened");
  EXPECT_FALSE(events[0].id.has_value());
  EXPECT_FALSE(events[0].has_metadata);
}

TEST(ParseEventBatch, AllKeys) {
  std::string json = std::string(R"([{"type": "Deposited", "data": {"amount": 10}, )") +
                     R"("metadata": {"user": "u1"}, "id": )" + Quote(kId1) + "}]";
  std::vector<ParsedEvent> events = parse_event_batch(json);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "Deposited");
  ASSERT_TRUE(events[0].id.has_value());
  EXPECT_EQ(format_uuid(*events[0].id), kId1);
  EXPECT_TRUE(events[0].has_metadata);
}

TEST(ParseEventBatch, KeysInAnyOrder) {
  std::string json =
      R"([{"id": )" + Quote(kId2) + R"(, "metadata": null, "data": [1, 2], "type": "T"}])";
  std::vector<ParsedEvent> events = parse_event_batch(json);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "T");
  EXPECT_EQ(format_uuid(*events[0].id), kId2);
  EXPECT_FALSE(events[0].has_metadata);
}

TEST(ParseEventBatch, IdInAnyUuidForm) {
  std::vector<ParsedEvent> events =
      parse_event_batch(R"([{"type": "T", "id": "{A0EEBC999C0B4EF8BB6D6BB9BD380A11}"}])");
  EXPECT_EQ(format_uuid(*events[0].id), kId1);
}

TEST(ParseEventBatch, NullMetadataIsNoMetadata) {
  EXPECT_FALSE(parse_event_batch(R"([{"type": "T", "metadata": null}])")[0].has_metadata);
  EXPECT_TRUE(parse_event_batch(R"([{"type": "T", "metadata": {}}])")[0].has_metadata);
}

TEST(ParseEventBatch, DataMayBeAnyJson) {
  for (const char* data :
       {"null", "true", "false", "0", "-1.5e300", "18446744073709551615", "\"text\"", "\"\"", "[]",
        "[1, [2, [3]]]", "{}", R"({"a": {"b": null}})"}) {
    std::string json = std::string(R"([{"type": "T", "data": )") + data + "}]";
    auto err = ErrorOf([&] { parse_event_batch(json); });
    EXPECT_EQ(err.sqlstate, "") << json << ": " << err.message;
  }
}

TEST(ParseEventBatch, SeveralEventsKeepTheirOrder) {
  std::string json = R"([{"type": "A"}, {"type": "B", "id": )" + Quote(kId1) +
                     R"(}, {"type": "C", "id": )" + Quote(kId2) + "}]";
  std::vector<ParsedEvent> events = parse_event_batch(json);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, "A");
  EXPECT_EQ(events[1].type, "B");
  EXPECT_EQ(events[2].type, "C");
  EXPECT_FALSE(events[0].id.has_value());
  EXPECT_EQ(format_uuid(*events[1].id), kId1);
  EXPECT_EQ(format_uuid(*events[2].id), kId2);
}

TEST(ParseEventBatch, UnicodeTypeIsDecoded) {
  EXPECT_EQ(parse_event_batch(R"([{"type": "\u00d6ffnen"}])")[0].type, u8"\u00d6ffnen");
  EXPECT_EQ(parse_event_batch("[{\"type\": \"\xc3\x96\"}]")[0].type, "\xc3\x96");
}

TEST(ParseEventBatch, WhitespaceAroundTheArray) {
  EXPECT_EQ(parse_event_batch(" \n\t[ {\"type\" : \"T\"} ]\n ").size(), 1u);
}

TEST(ParseEventBatch, ALargeBatch) {
  std::string json = "[";
  for (int i = 0; i < 5000; i++) {
    if (i > 0) json += ",";
    json +=
        R"({"type": "E)" + std::to_string(i) + R"(", "data": {"i": )" + std::to_string(i) + "}}";
  }
  json += "]";
  std::vector<ParsedEvent> events = parse_event_batch(json);
  ASSERT_EQ(events.size(), 5000u);
  EXPECT_EQ(events[4999].type, "E4999");
}

// --- parse_event_batch: shape errors (22023, naming the index) -----------------------------

TEST(ParseEventBatch, RootMustBeANonEmptyArray) {
  for (const char* json : {"[]", "{}", R"({"type": "T"})", "null", "1", "\"[]\"", "true"}) {
    auto err = ErrorOf([&] { parse_event_batch(json); });
    EXPECT_EQ(err.sqlstate, k22023) << json;
    EXPECT_TRUE(Contains(err.message, "array")) << json;
  }
}

TEST(ParseEventBatch, ElementsMustBeObjects) {
  for (const char* element : {"null", "1", "\"T\"", "[]", R"([{"type": "T"}])", "true"}) {
    std::string json = std::string(R"([{"type": "A"}, )") + element + "]";
    auto err = ErrorOf([&] { parse_event_batch(json); });
    EXPECT_EQ(err.sqlstate, k22023) << json;
    EXPECT_TRUE(Contains(err.message, "invalid event at index 1:")) << json;
  }
}

TEST(ParseEventBatch, TypeIsRequired) {
  auto err = ErrorOf([] { parse_event_batch(R"([{"data": {}}])"); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 0:"));
  EXPECT_TRUE(Contains(err.message, "\"type\""));
  EXPECT_FALSE(err.hint.empty());

  EXPECT_EQ(ErrorOf([] { parse_event_batch("[{}]"); }).sqlstate, k22023);
}

TEST(ParseEventBatch, TypeMustBeANonEmptyString) {
  for (const char* type : {"\"\"", "null", "1", "true", "[]", "{}", R"(["T"])"}) {
    std::string json = std::string(R"([{"type": "A"}, {"type": "B"}, {"type": )") + type + "}]";
    auto err = ErrorOf([&] { parse_event_batch(json); });
    EXPECT_EQ(err.sqlstate, k22023) << json;
    EXPECT_TRUE(Contains(err.message, "invalid event at index 2:")) << json;
  }
}

TEST(ParseEventBatch, TypeIsBoundedLikeStreamNames) {
  std::string ok = R"([{"type": ")" + std::string(512, 't') + R"("}])";
  EXPECT_EQ(ErrorOf([&] { parse_event_batch(ok); }).sqlstate, "");
  std::string too_long = R"([{"type": "A"}, {"type": ")" + std::string(513, 't') + R"("}])";
  auto err = ErrorOf([&] { parse_event_batch(too_long); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 1: \"type\" is too long (513 bytes; the limit is 512)"))
      << err.message;
}

TEST(ParseEventBatch, MetadataMustBeAnObjectOrNull) {
  for (const char* metadata : {"1", "\"m\"", "[]", "true", "false"}) {
    std::string json = std::string(R"([{"type": "A", "metadata": )") + metadata + "}]";
    auto err = ErrorOf([&] { parse_event_batch(json); });
    EXPECT_EQ(err.sqlstate, k22023) << json;
    EXPECT_TRUE(Contains(err.message, "invalid event at index 0:")) << json;
    EXPECT_TRUE(Contains(err.message, "metadata")) << json;
  }
}

TEST(ParseEventBatch, UnknownKeysAreRejected) {
  for (const char* key : {"Type", "types", "", "event_type", "position", "version", "ID"}) {
    std::string json = std::string(R"([{"type": "A", ")") + key + R"(": 1}])";
    auto err = ErrorOf([&] { parse_event_batch(json); });
    EXPECT_EQ(err.sqlstate, k22023) << json;
    EXPECT_TRUE(Contains(err.message, "invalid event at index 0:")) << json;
    EXPECT_TRUE(Contains(err.message, std::string("\"") + key + "\"")) << json;
  }
}

TEST(ParseEventBatch, IdMustBeAString) {
  for (const char* id : {"null", "1", "true", "[]", "{}"}) {
    std::string json = std::string(R"([{"type": "A", "id": )") + id + "}]";
    auto err = ErrorOf([&] { parse_event_batch(json); });
    EXPECT_EQ(err.sqlstate, k22023) << json;
    EXPECT_TRUE(Contains(err.message, "invalid event at index 0:")) << json;
  }
}

TEST(ParseEventBatch, MalformedIdIs22P02WithTheIndex) {
  auto err =
      ErrorOf([] { parse_event_batch(R"([{"type": "A"}, {"type": "B", "id": "not-a-uuid"}])"); });
  EXPECT_EQ(err.sqlstate, k22P02);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 1:"));
  EXPECT_TRUE(Contains(err.message, "not-a-uuid"));

  EXPECT_EQ(ErrorOf([] { parse_event_batch(R"([{"type": "A", "id": ""}])"); }).sqlstate, k22P02);
}

// The contract: a duplicate key in an element is 22023, naming the element's index. Boost.JSON
// keeps only the last of duplicate keys, so the text front end has to detect them itself.
// JSON text with a repeated key behaves like jsonb, which the SQL surface receives: the last one
// wins. Both front ends therefore accept the same batches.
TEST(ParseEventBatch, RepeatedKeysKeepTheLastValueLikeJsonb) {
  auto events = parse_event_batch(R"([{"type": "A", "type": "B"}])");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, "B");
  std::string with_two_ids =
      R"([{"type": "A", "id": )" + Quote(kId1) + R"(, "id": )" + Quote(kId2) + "}]";
  events = parse_event_batch(with_two_ids);
  ASSERT_TRUE(events[0].id.has_value());
  EXPECT_EQ(format_uuid(*events[0].id), kId2);
  auto err = ErrorOf([&] { parse_event_batch(R"([{"type": "A", "metadata": {}, "metadata": 1}])"); });
  EXPECT_EQ(err.sqlstate, k22023);
}

// One batch cannot carry the same id twice, whatever its spelling.
TEST(ParseEventBatch, RepeatedIdsAreRejected) {
  std::string json = R"([{"type": "A", "id": )" + Quote(kId1) + R"(}, {"type": "B"}, )" +
                     R"({"type": "C", "id": )" + Quote(kId2) + R"(}, )" +
                     R"({"type": "D", "id": "{A0EEBC999C0B4EF8BB6D6BB9BD380A11}"}])";
  auto err = ErrorOf([&] { parse_event_batch(json); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 3:"));
  EXPECT_TRUE(Contains(err.message, "event 0"));
}

TEST(ParseEventBatch, DistinctIdsAndMissingIdsAreFine) {
  std::string json = R"([{"type": "A"}, {"type": "B", "id": )" + Quote(kId1) +
                     R"(}, {"type": "C"}, {"type": "D", "id": )" + Quote(kId2) + "}]";
  EXPECT_EQ(parse_event_batch(json).size(), 4u);
}

TEST(ParseEventBatch, TheFirstBadElementIsTheOneNamed) {
  auto err = ErrorOf(
      [] { parse_event_batch(R"([{"type": "A"}, {"type": "B"}, {"type": "C"}, {"x": 1}, 5])"); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 3:"));
}

// --- parse_event_batch: malformed JSON (22P02) ---------------------------------------------

TEST(ParseEventBatch, MalformedJsonIs22P02) {
  for (const char* json :
       {"", " ", "[", "[{", R"([{"type": "A"})", R"([{"type": "A"},])", R"([{"type": "A",}])",
        R"([{'type': 'A'}])", R"([{type: "A"}])", R"([{"type": "A"}] x)", R"([{"type": "A"}][])",
        R"([{"type": "A"}] // comment)", R"([{"type": "A\x"}])", "[NaN]", "[{\"type\": \"\xff\"}]",
        "[{\"type\": \"\xc3\"}]"}) {
    auto err = ErrorOf([&] { parse_event_batch(json); });
    EXPECT_EQ(err.sqlstate, k22P02) << json;
  }
}

TEST(ParseEventBatch, DeepDataNeverCrashes) {
  // Boost.JSON limits depth; whatever the limit, the answer is a result or an everest::Error.
  for (int depth : {10, 30, 100, 100000}) {
    std::string json =
        R"([{"type": "T", "data": )" + std::string(depth, '[') + std::string(depth, ']') + "}]";
    auto err = ErrorOf([&] { parse_event_batch(json); });
    EXPECT_NE(err.sqlstate, "not everest::Error") << depth;
  }
  EXPECT_EQ(ErrorOf([] {
              parse_event_batch(R"([{"type": "T", "data": [[[[[[[[[[]]]]]]]]]]}])");
            }).sqlstate,
            "");
}

// --- EventBatchValidator, as the jsonb glue drives it --------------------------------------

TEST(EventBatchValidator, FeedsAValidBatch) {
  EventBatchValidator v;
  v.begin_event(true);
  v.field("type", JsonKind::string, "A");
  v.field("data", JsonKind::object);
  v.end_event();
  v.begin_event(true);
  v.field("id", JsonKind::string, kId1);
  v.field("metadata", JsonKind::object);
  v.field("type", JsonKind::string, "B");
  v.end_event();
  const std::vector<ParsedEvent>& events = v.finish();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(v.size(), 2u);
  EXPECT_EQ(events[0].type, "A");
  EXPECT_FALSE(events[0].id.has_value());
  EXPECT_FALSE(events[0].has_metadata);
  EXPECT_EQ(events[1].type, "B");
  EXPECT_EQ(format_uuid(*events[1].id), kId1);
  EXPECT_TRUE(events[1].has_metadata);
}

TEST(EventBatchValidator, EmptyBatchFailsAtFinish) {
  EventBatchValidator v;
  auto err = ErrorOf([&] { v.finish(); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "non-empty"));
}

TEST(EventBatchValidator, NonObjectNamesItsIndex) {
  EventBatchValidator v;
  v.begin_event(true);
  v.field("type", JsonKind::string, "A");
  v.end_event();
  auto err = ErrorOf([&] { v.begin_event(false); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 1:"));
}

TEST(EventBatchValidator, DuplicateKey) {
  for (const char* key : {"type", "data", "metadata", "id"}) {
    EventBatchValidator v;
    v.begin_event(true);
    JsonKind kind = std::string(key) == "data"       ? JsonKind::number
                    : std::string(key) == "metadata" ? JsonKind::null
                                                     : JsonKind::string;
    const char* text = std::string(key) == "id" ? kId1 : "A";
    v.field(key, kind, text);
    auto err = ErrorOf([&] { v.field(key, kind, text); });
    EXPECT_EQ(err.sqlstate, k22023) << key;
    EXPECT_TRUE(Contains(err.message, "invalid event at index 0: duplicate key")) << key;
  }
}

TEST(EventBatchValidator, DuplicateKeyStateResetsPerEvent) {
  EventBatchValidator v;
  for (int i = 0; i < 3; i++) {
    v.begin_event(true);
    v.field("type", JsonKind::string, "A");
    v.field("data", JsonKind::null);
    v.end_event();
  }
  EXPECT_EQ(v.finish().size(), 3u);
}

TEST(EventBatchValidator, MissingTypeFailsAtEndEvent) {
  EventBatchValidator v;
  v.begin_event(true);
  v.field("type", JsonKind::string, "A");
  v.end_event();
  v.begin_event(true);
  v.field("type", JsonKind::string, "B");
  v.end_event();
  v.begin_event(true);
  v.field("data", JsonKind::object);
  auto err = ErrorOf([&] { v.end_event(); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 2:"));
}

TEST(EventBatchValidator, TypeOfTheWrongKind) {
  EventBatchValidator v;
  v.begin_event(true);
  auto err = ErrorOf([&] { v.field("type", JsonKind::number, "12"); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "a number"));
}

TEST(EventBatchValidator, RepeatedIdNamesBothEvents) {
  EventBatchValidator v;
  const char* ids[] = {kId1, kId2, kId2};
  for (int i = 0; i < 2; i++) {
    v.begin_event(true);
    v.field("type", JsonKind::string, "A");
    v.field("id", JsonKind::string, ids[i]);
    v.end_event();
  }
  v.begin_event(true);
  auto err = ErrorOf([&] { v.field("id", JsonKind::string, ids[2]); });
  EXPECT_EQ(err.sqlstate, k22023);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 2:"));
  EXPECT_TRUE(Contains(err.message, "event 1"));
}

// The repeated-id check must not be quadratic: a 100,000-event import with client ids is a
// plausible batch. A linear check takes well under a second here, even unoptimized.
TEST(EventBatchValidator, ManyIdsAreCheckedInReasonableTime) {
  constexpr int kEvents = 100000;
  std::vector<std::string> ids;
  ids.reserve(kEvents);
  for (int i = 0; i < kEvents; i++) {
    Uuid id{};
    id[0] = static_cast<std::uint8_t>(i >> 16);
    id[1] = static_cast<std::uint8_t>(i >> 8);
    id[2] = static_cast<std::uint8_t>(i);
    ids.push_back(format_uuid(id));
  }
  auto start = std::chrono::steady_clock::now();
  EventBatchValidator v;
  for (const std::string& id : ids) {
    v.begin_event(true);
    v.field("type", JsonKind::string, "Imported");
    v.field("id", JsonKind::string, id);
    v.end_event();
  }
  EXPECT_EQ(v.finish().size(), static_cast<std::size_t>(kEvents));
  std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed.count(), 5.0) << "validating " << kEvents << " ids took " << elapsed.count()
                                  << " s";
}

TEST(EventBatchValidator, MalformedIdKeepsItsSqlstate) {
  EventBatchValidator v;
  v.begin_event(true);
  v.field("type", JsonKind::string, "A");
  v.end_event();
  v.begin_event(true);
  auto err = ErrorOf([&] { v.field("id", JsonKind::string, "1234"); });
  EXPECT_EQ(err.sqlstate, k22P02);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 1:"));
}

}  // namespace
}  // namespace everest
