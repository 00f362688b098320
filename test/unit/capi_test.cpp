// The C API facade (src/core/capi.cpp): results, and errors turned into ev_error records.
#include "everest/capi.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "everest/core.hpp"
#include "test_util.hpp"

namespace {

using everest_test::Contains;

constexpr const char* kId1 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
constexpr const char* kId2 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";

// An ev_error pre-filled with garbage, so that a test sees what the call actually wrote.
ev_error Garbage() {
  ev_error err;
  std::memset(&err, 'G', sizeof err);
  return err;
}

bool Terminated(const ev_error& err) {
  return std::memchr(err.sqlstate, '\0', sizeof err.sqlstate) &&
         std::memchr(err.message, '\0', sizeof err.message) &&
         std::memchr(err.detail, '\0', sizeof err.detail) &&
         std::memchr(err.hint, '\0', sizeof err.hint);
}

struct BatchDeleter {
  void operator()(ev_batch* b) const { ev_batch_free(b); }
};
using Batch = std::unique_ptr<ev_batch, BatchDeleter>;

Batch NewBatch() {
  ev_error err = Garbage();
  Batch batch(ev_batch_new(&err));
  EXPECT_NE(batch, nullptr);
  return batch;
}

bool Field(ev_batch* b, const std::string& key, ev_json_kind kind, const char* text,
           ev_error* err) {
  return ev_batch_field(b, key.data(), key.size(), kind, text, text ? std::strlen(text) : 0, err);
}

// Feeds one event {"type": type[, "id": id]} and checks every step succeeds.
void AddEvent(ev_batch* b, const char* type, const char* id) {
  ev_error err = Garbage();
  ASSERT_TRUE(ev_batch_begin_event(b, true, &err));
  ASSERT_TRUE(Field(b, "type", EV_JSON_STRING, type, &err)) << err.message;
  ASSERT_TRUE(Field(b, "data", EV_JSON_OBJECT, nullptr, &err)) << err.message;
  if (id) {
    ASSERT_TRUE(Field(b, "id", EV_JSON_STRING, id, &err)) << err.message;
  }
  ASSERT_TRUE(ev_batch_end_event(b, &err)) << err.message;
}

ev_stored_event Stored(const char* id, bool same_stream, int64_t version, int64_t position) {
  ev_stored_event s{};
  everest::Uuid uuid = everest::parse_uuid(id);
  std::memcpy(s.id, uuid.data(), 16);
  s.same_stream = same_stream;
  s.version = version;
  s.position = position;
  return s;
}

// --- Stream names, versions, counts --------------------------------------------------------

TEST(CapiStreams, ClassifiesReads) {
  ev_error err = Garbage();
  ev_stream_kind kind;
  const char* category = nullptr;
  size_t category_len = 99;
  ASSERT_TRUE(ev_classify_stream_for_read("$all", 4, &kind, &category, &category_len, &err));
  EXPECT_EQ(kind, EV_STREAM_ALL);
  EXPECT_EQ(category_len, 0u);

  ASSERT_TRUE(ev_classify_stream_for_read("account-1", 9, &kind, &category, &category_len, &err));
  EXPECT_EQ(kind, EV_STREAM_REGULAR);

  const char name[] = "$ce-account";
  ASSERT_TRUE(
      ev_classify_stream_for_read(name, sizeof name - 1, &kind, &category, &category_len, &err));
  EXPECT_EQ(kind, EV_STREAM_CATEGORY);
  EXPECT_EQ(std::string(category, category_len), "account");
  EXPECT_EQ(category, name + 4);
}

TEST(CapiStreams, UsesTheGivenLengthNotNul) {
  ev_error err = Garbage();
  ev_stream_kind kind;
  const char* category;
  size_t category_len;
  // "$allx" cut to 4 bytes is "$all".
  ASSERT_TRUE(ev_classify_stream_for_read("$allx", 4, &kind, &category, &category_len, &err));
  EXPECT_EQ(kind, EV_STREAM_ALL);
  EXPECT_FALSE(ev_check_writable_stream("abc", 0, &err));  // empty
  EXPECT_STREQ(err.sqlstate, "22023");
}

TEST(CapiStreams, ReadErrorFillsTheRecord) {
  ev_error err = Garbage();
  ev_stream_kind kind = EV_STREAM_REGULAR;
  const char* category = nullptr;
  size_t category_len = 0;
  EXPECT_FALSE(ev_classify_stream_for_read("$ce-", 4, &kind, &category, &category_len, &err));
  EXPECT_TRUE(Terminated(err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_TRUE(Contains(err.message, "$ce-"));
  EXPECT_STREQ(err.detail, "");
  EXPECT_TRUE(Contains(err.hint, "$ce-<category>"));
}

TEST(CapiStreams, WritableStream) {
  ev_error err = Garbage();
  EXPECT_TRUE(ev_check_writable_stream("order-1", 7, &err));
  EXPECT_FALSE(ev_check_writable_stream("$all", 4, &err));
  EXPECT_TRUE(Terminated(err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_TRUE(Contains(err.message, "$all"));
  EXPECT_TRUE(Contains(err.detail, "reserved"));
}

TEST(CapiStreams, TooLongNameHasADetail) {
  ev_error err = Garbage();
  std::string name(600, 'n');
  EXPECT_FALSE(ev_check_writable_stream(name.data(), name.size(), &err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_TRUE(Contains(err.detail, "600"));
}

TEST(CapiVersions, ExpectedVersionValue) {
  ev_error err = Garbage();
  EXPECT_TRUE(ev_check_expected_version_value(-2, &err));
  EXPECT_TRUE(ev_check_expected_version_value(-1, &err));
  EXPECT_TRUE(ev_check_expected_version_value(-4, &err));
  EXPECT_TRUE(ev_check_expected_version_value(0, &err));
  EXPECT_FALSE(ev_check_expected_version_value(-3, &err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_FALSE(std::string(err.hint).empty());
}

TEST(CapiVersions, ExpectedVersionMismatch) {
  ev_error err = Garbage();
  EXPECT_TRUE(ev_check_expected_version("s-1", 3, 3, 3, &err));
  EXPECT_FALSE(ev_check_expected_version("s-1", 3, 3, 5, &err));
  EXPECT_TRUE(Terminated(err));
  EXPECT_STREQ(err.sqlstate, "EV001");
  EXPECT_TRUE(Contains(err.message, "\"s-1\""));
  EXPECT_TRUE(Contains(err.message, "3"));
  EXPECT_TRUE(Contains(err.message, "5"));
}

TEST(CapiVersions, MaxCount) {
  ev_error err = Garbage();
  EXPECT_TRUE(ev_check_max_count(0, &err));
  EXPECT_FALSE(ev_check_max_count(-1, &err));
  EXPECT_STREQ(err.sqlstate, "22023");
}

TEST(CapiErrors, NullErrorRecordIsTolerated) {
  EXPECT_FALSE(ev_check_max_count(-1, nullptr));
  EXPECT_TRUE(ev_check_max_count(1, nullptr));
}

TEST(CapiErrors, LongMessagesAreTruncatedAndTerminated) {
  Batch b = NewBatch();
  ev_error err = Garbage();
  ASSERT_TRUE(ev_batch_begin_event(b.get(), true, &err));
  std::string key(5000, 'k');
  EXPECT_FALSE(Field(b.get(), key, EV_JSON_NUMBER, nullptr, &err));
  EXPECT_TRUE(Terminated(err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_EQ(std::strlen(err.message), sizeof err.message - 1);
  EXPECT_TRUE(Contains(err.message, "invalid event at index 0: unknown key"));
}

// --- Event batches -------------------------------------------------------------------------

TEST(CapiBatch, FeedsAndReadsBack) {
  Batch b = NewBatch();
  AddEvent(b.get(), "Opened", nullptr);
  AddEvent(b.get(), "Deposited", kId1);
  ev_error err = Garbage();
  ASSERT_TRUE(ev_batch_finish(b.get(), &err));
  ASSERT_EQ(ev_batch_size(b.get()), 2u);

  size_t len = 0;
  const char* type = ev_batch_type(b.get(), 0, &len);
  EXPECT_EQ(std::string(type, len), "Opened");
  EXPECT_EQ(type[len], '\0');
  type = ev_batch_type(b.get(), 1, &len);
  EXPECT_EQ(std::string(type, len), "Deposited");

  uint8_t id[16];
  EXPECT_FALSE(ev_batch_id(b.get(), 0, id));
  ASSERT_TRUE(ev_batch_id(b.get(), 1, id));
  everest::Uuid uuid;
  std::memcpy(uuid.data(), id, 16);
  EXPECT_EQ(everest::format_uuid(uuid), kId1);
  EXPECT_TRUE(ev_batch_has_client_ids(b.get()));
}

TEST(CapiBatch, NoClientIds) {
  Batch b = NewBatch();
  AddEvent(b.get(), "A", nullptr);
  EXPECT_FALSE(ev_batch_has_client_ids(b.get()));
}

TEST(CapiBatch, EmptyBatchFailsAtFinish) {
  Batch b = NewBatch();
  ev_error err = Garbage();
  EXPECT_FALSE(ev_batch_finish(b.get(), &err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_FALSE(std::string(err.hint).empty());
}

TEST(CapiBatch, NonObjectElement) {
  Batch b = NewBatch();
  AddEvent(b.get(), "A", nullptr);
  ev_error err = Garbage();
  EXPECT_FALSE(ev_batch_begin_event(b.get(), false, &err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_TRUE(Contains(err.message, "invalid event at index 1:"));
}

TEST(CapiBatch, WrongKinds) {
  Batch b = NewBatch();
  ev_error err = Garbage();
  ASSERT_TRUE(ev_batch_begin_event(b.get(), true, &err));
  EXPECT_FALSE(Field(b.get(), "type", EV_JSON_BOOL, nullptr, &err));
  EXPECT_TRUE(Contains(err.message, "a boolean"));
  EXPECT_FALSE(Field(b.get(), "metadata", EV_JSON_ARRAY, nullptr, &err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_TRUE(Contains(err.message, "an array"));
}

TEST(CapiBatch, EmptyTypeWithNullText) {
  Batch b = NewBatch();
  ev_error err = Garbage();
  ASSERT_TRUE(ev_batch_begin_event(b.get(), true, &err));
  EXPECT_FALSE(Field(b.get(), "type", EV_JSON_STRING, nullptr, &err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_TRUE(Contains(err.message, "empty"));
}

TEST(CapiBatch, MissingType) {
  Batch b = NewBatch();
  ev_error err = Garbage();
  ASSERT_TRUE(ev_batch_begin_event(b.get(), true, &err));
  ASSERT_TRUE(Field(b.get(), "metadata", EV_JSON_NULL, nullptr, &err));
  EXPECT_FALSE(ev_batch_end_event(b.get(), &err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_TRUE(Contains(err.message, "invalid event at index 0:"));
}

TEST(CapiBatch, MalformedId) {
  Batch b = NewBatch();
  ev_error err = Garbage();
  ASSERT_TRUE(ev_batch_begin_event(b.get(), true, &err));
  EXPECT_FALSE(Field(b.get(), "id", EV_JSON_STRING, "a0eebc99-9c0b", &err));
  EXPECT_TRUE(Terminated(err));
  EXPECT_STREQ(err.sqlstate, "22P02");
  EXPECT_TRUE(Contains(err.message, "invalid event at index 0:"));
  EXPECT_TRUE(Contains(err.message, "a0eebc99-9c0b"));
}

TEST(CapiBatch, DuplicateKey) {
  Batch b = NewBatch();
  ev_error err = Garbage();
  ASSERT_TRUE(ev_batch_begin_event(b.get(), true, &err));
  ASSERT_TRUE(Field(b.get(), "id", EV_JSON_STRING, kId1, &err));
  EXPECT_FALSE(Field(b.get(), "id", EV_JSON_STRING, kId2, &err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_TRUE(Contains(err.message, "duplicate key \"id\""));
}

TEST(CapiBatch, RepeatedIdAcrossEvents) {
  Batch b = NewBatch();
  AddEvent(b.get(), "A", kId1);
  ev_error err = Garbage();
  ASSERT_TRUE(ev_batch_begin_event(b.get(), true, &err));
  ASSERT_TRUE(Field(b.get(), "type", EV_JSON_STRING, "B", &err));
  EXPECT_FALSE(Field(b.get(), "id", EV_JSON_STRING, kId1, &err));
  EXPECT_STREQ(err.sqlstate, "22023");
  EXPECT_TRUE(Contains(err.message, "invalid event at index 1:"));
}

TEST(CapiUuid, MakeV4) {
  uint8_t random[16], out[16];
  for (int i = 0; i < 16; i++) random[i] = static_cast<uint8_t>(0x11 * i);
  ev_make_uuid_v4(random, out);
  EXPECT_EQ(out[6] >> 4, 4);
  EXPECT_EQ(out[8] >> 6, 2);
  EXPECT_EQ(out[0], random[0]);
  EXPECT_EQ(out[15], random[15]);
}

// --- Idempotent retries --------------------------------------------------------------------

TEST(CapiIdempotency, RetryReturnsTheOriginalResult) {
  Batch b = NewBatch();
  AddEvent(b.get(), "A", kId1);
  AddEvent(b.get(), "B", kId2);
  ev_stored_event stored[] = {Stored(kId2, true, 8, 81), Stored(kId1, true, 7, 80)};
  ev_append_result out{};
  ev_error err = Garbage();
  ASSERT_TRUE(ev_match_idempotent_retry("s-1", 3, b.get(), 6, stored, 2, &out, &err))
      << err.message;
  EXPECT_EQ(out.first_version, 7);
  EXPECT_EQ(out.last_version, 8);
  EXPECT_EQ(out.first_position, 80);
  EXPECT_EQ(out.last_position, 81);
}

TEST(CapiIdempotency, ReuseIsEv003) {
  Batch b = NewBatch();
  AddEvent(b.get(), "A", kId1);
  AddEvent(b.get(), "B", kId2);
  ev_stored_event stored[] = {Stored(kId1, true, 8, 81), Stored(kId2, true, 7, 80)};
  ev_append_result out{};
  ev_error err = Garbage();
  EXPECT_FALSE(ev_match_idempotent_retry("s-1", 3, b.get(), -2, stored, 2, &out, &err));
  EXPECT_TRUE(Terminated(err));
  EXPECT_STREQ(err.sqlstate, "EV003");
  EXPECT_FALSE(std::string(err.detail).empty());
  EXPECT_FALSE(std::string(err.hint).empty());
}

TEST(CapiIdempotency, OtherStreamIsEv003) {
  Batch b = NewBatch();
  AddEvent(b.get(), "A", kId1);
  ev_stored_event stored[] = {Stored(kId1, false, 0, 5)};
  ev_append_result out{};
  ev_error err = Garbage();
  EXPECT_FALSE(ev_match_idempotent_retry("s-1", 3, b.get(), -1, stored, 1, &out, &err));
  EXPECT_STREQ(err.sqlstate, "EV003");
  EXPECT_TRUE(Contains(err.message, kId1));
}

TEST(CapiIdempotency, EventWithoutIdIsEv003) {
  Batch b = NewBatch();
  AddEvent(b.get(), "A", kId1);
  AddEvent(b.get(), "B", nullptr);
  ev_stored_event stored[] = {Stored(kId1, true, 0, 5)};
  ev_append_result out{};
  ev_error err = Garbage();
  EXPECT_FALSE(ev_match_idempotent_retry("s-1", 3, b.get(), -1, stored, 1, &out, &err));
  EXPECT_STREQ(err.sqlstate, "EV003");
}

TEST(CapiIdempotency, NothingStoredIsAnInternalErrorNotACrash) {
  Batch b = NewBatch();
  AddEvent(b.get(), "A", kId1);
  ev_append_result out{};
  ev_error err = Garbage();
  EXPECT_FALSE(ev_match_idempotent_retry("s-1", 3, b.get(), -2, nullptr, 0, &out, &err));
  EXPECT_STREQ(err.sqlstate, "XX000");
}

// --- Positions in flight -------------------------------------------------------------------

TEST(CapiInFlight, TracksSubtransactions) {
  ev_error err = Garbage();
  ev_in_flight* t = ev_in_flight_new(&err);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(ev_in_flight_lowest(t), 0);
  ASSERT_TRUE(ev_in_flight_drawn(t, 1, 50, &err));
  ASSERT_TRUE(ev_in_flight_drawn(t, 2, 40, &err));
  ASSERT_TRUE(ev_in_flight_drawn(t, 3, 30, &err));
  EXPECT_EQ(ev_in_flight_lowest(t), 30);
  ev_in_flight_subcommit(t, 3, 2);
  EXPECT_EQ(ev_in_flight_lowest(t), 30);
  ev_in_flight_subabort(t, 2);
  EXPECT_EQ(ev_in_flight_lowest(t), 50);
  ev_in_flight_clear(t);
  EXPECT_EQ(ev_in_flight_lowest(t), 0);
  // The C API has no ev_in_flight_free (one tracker lives as long as its backend), and the
  // type is opaque here, so this test leaks its one tracker.
}

// --- Rendering and hashing -----------------------------------------------------------------

TEST(CapiRender, Notification) {
  char buf[64];
  ev_error err = Garbage();
  ASSERT_TRUE(ev_render_notification(1234567, buf, sizeof buf, &err));
  boost::json::value v = boost::json::parse(buf);
  ASSERT_TRUE(v.is_object());
  EXPECT_EQ(v.get_object().size(), 1u);
  EXPECT_EQ(v.at("position").as_int64(), 1234567);
}

TEST(CapiRender, SmallBufferIsAnError) {
  char buf[8];
  std::memset(buf, 'x', sizeof buf);
  ev_error err = Garbage();
  EXPECT_FALSE(ev_render_notification(1234567, buf, sizeof buf, &err));
  EXPECT_STREQ(err.sqlstate, "XX000");
  EXPECT_EQ(buf[0], 'x');  // nothing written past or into the buffer
}

TEST(CapiRender, ExactBuffer) {
  std::string payload = everest::render_notification(7);
  std::string buf(payload.size() + 1, 'x');
  ev_error err = Garbage();
  ASSERT_TRUE(ev_render_notification(7, buf.data(), buf.size(), &err));
  EXPECT_EQ(std::string(buf.c_str()), payload);
  EXPECT_FALSE(ev_render_notification(7, buf.data(), payload.size(), &err));
}

TEST(CapiHash, LeaseKey) {
  EXPECT_EQ(ev_lock_key("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(ev_lock_key("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(ev_lock_key("ab", 1), 0xaf63dc4c8601ec8cull);  // length, not NUL
}

}  // namespace
