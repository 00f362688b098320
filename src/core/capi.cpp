// The C API of the core (include/everest/capi.h): every entry catches every exception and turns
// it into an ev_error, so that the glue can raise it with its SQLSTATE after C++ has unwound.
#include "everest/capi.h"
#include "everest/core.hpp"
#include "everest/schema.hpp"

#include <cstring>
#include <new>

using namespace everest;

struct ev_batch {
  EventBatchValidator validator;
};

struct ev_in_flight {
  InFlightPositions positions;
};

struct ev_json_builder {
  schema::Builder builder;
};

struct ev_schema {
  schema::Validator validator;
};

struct ev_json_check {
  schema::StreamChecker checker;
};

namespace {

// Copies at most size-1 bytes, never cutting a UTF-8 character in two.
void copy_text(char* dst, std::size_t size, const std::string& src) {
  std::size_t n = std::min(size - 1, src.size());
  if (n < src.size())
    while (n > 0 && (static_cast<unsigned char>(src[n]) & 0xC0) == 0x80) n--;
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

void fill(ev_error* err, const char* state, const std::string& message,
          const std::string& detail = {}, const std::string& hint = {}) {
  if (!err) return;
  copy_text(err->sqlstate, sizeof err->sqlstate, state);
  copy_text(err->message, sizeof err->message, message);
  copy_text(err->detail, sizeof err->detail, detail);
  copy_text(err->hint, sizeof err->hint, hint);
}

// Runs `body`; on any exception fills `err` and returns false.
template <typename F>
bool guarded(ev_error* err, F&& body) noexcept {
  try {
    body();
    return true;
  } catch (const Error& e) {
    fill(err, e.sqlstate(), e.what(), e.detail(), e.hint());
  } catch (const std::bad_alloc&) {
    fill(err, "53200", "out of memory in everest core");
  } catch (const std::exception& e) {
    fill(err, sqlstate::internal_error, std::string("everest core: ") + e.what());
  } catch (...) {
    fill(err, sqlstate::internal_error, "everest core: unknown exception");
  }
  return false;
}

JsonKind to_kind(ev_json_kind kind) {
  switch (kind) {
    case EV_JSON_NULL: return JsonKind::null;
    case EV_JSON_BOOL: return JsonKind::boolean;
    case EV_JSON_NUMBER: return JsonKind::number;
    case EV_JSON_STRING: return JsonKind::string;
    case EV_JSON_ARRAY: return JsonKind::array;
    case EV_JSON_OBJECT: return JsonKind::object;
  }
  return JsonKind::null;
}

}  // namespace

extern "C" {

bool ev_classify_stream_for_read(const char* name, size_t len, ev_stream_kind* kind,
                                 const char** category, size_t* category_len, ev_error* err) noexcept {
  return guarded(err, [&] {
    StreamRef ref = classify_stream_for_read(std::string_view(name, len));
    *kind = ref.kind == StreamKind::all        ? EV_STREAM_ALL
            : ref.kind == StreamKind::category ? EV_STREAM_CATEGORY
            : ref.kind == StreamKind::type     ? EV_STREAM_TYPE
                                               : EV_STREAM_REGULAR;
    *category = ref.category.data();
    *category_len = ref.category.size();
  });
}

bool ev_check_writable_stream(const char* name, size_t len, ev_error* err) noexcept {
  return guarded(err, [&] { check_writable_stream(std::string_view(name, len)); });
}

bool ev_check_expected_version_value(int64_t expected, ev_error* err) noexcept {
  return guarded(err, [&] { check_expected_version_value(expected); });
}

bool ev_check_expected_version(const char* stream, size_t len, int64_t expected, int64_t actual,
                               ev_error* err) noexcept {
  return guarded(err, [&] { check_expected_version(std::string_view(stream, len), expected, actual); });
}

bool ev_check_max_count(int64_t max_count, ev_error* err) noexcept {
  return guarded(err, [&] { check_max_count(max_count); });
}

ev_batch* ev_batch_new(ev_error* err) noexcept {
  ev_batch* batch = nullptr;
  guarded(err, [&] { batch = new ev_batch(); });
  return batch;
}

void ev_batch_free(ev_batch* batch) noexcept { delete batch; }

bool ev_batch_begin_event(ev_batch* batch, bool is_object, ev_error* err) noexcept {
  return guarded(err, [&] { batch->validator.begin_event(is_object); });
}

bool ev_batch_field(ev_batch* batch, const char* key, size_t key_len, ev_json_kind kind,
                    const char* text, size_t text_len, ev_error* err) noexcept {
  return guarded(err, [&] {
    batch->validator.field(std::string_view(key, key_len), to_kind(kind),
                           text ? std::string_view(text, text_len) : std::string_view());
  });
}

bool ev_batch_end_event(ev_batch* batch, ev_error* err) noexcept {
  return guarded(err, [&] { batch->validator.end_event(); });
}

bool ev_batch_finish(ev_batch* batch, ev_error* err) noexcept {
  return guarded(err, [&] { batch->validator.finish(); });
}

size_t ev_batch_size(const ev_batch* batch) noexcept { return batch->validator.size(); }

const char* ev_batch_type(const ev_batch* batch, size_t i, size_t* len) noexcept {
  const std::string& type = batch->validator.events()[i].type;
  *len = type.size();
  return type.c_str();
}

bool ev_batch_id(const ev_batch* batch, size_t i, uint8_t out[16]) noexcept {
  const auto& id = batch->validator.events()[i].id;
  if (!id) return false;
  std::memcpy(out, id->data(), 16);
  return true;
}

bool ev_batch_has_client_ids(const ev_batch* batch) noexcept {
  for (const ParsedEvent& e : batch->validator.events())
    if (e.id) return true;
  return false;
}

void ev_make_uuid_v4(const uint8_t random_bytes[16], uint8_t out[16]) noexcept {
  Uuid in;
  std::memcpy(in.data(), random_bytes, 16);
  Uuid v4 = make_uuid_v4(in);
  std::memcpy(out, v4.data(), 16);
}

void ev_make_uuid_v7(uint64_t unix_ms, const uint8_t random_bytes[16], uint8_t out[16]) noexcept {
  Uuid in;
  std::memcpy(in.data(), random_bytes, 16);
  Uuid v7 = make_uuid_v7(unix_ms, in);
  std::memcpy(out, v7.data(), 16);
}

bool ev_match_idempotent_retry(const char* stream, size_t len, const ev_batch* batch,
                               int64_t expected, const ev_stored_event* stored, size_t n_stored,
                               ev_append_result* out, ev_error* err) noexcept {
  return guarded(err, [&] {
    std::vector<std::optional<Uuid>> requested;
    requested.reserve(batch->validator.size());
    for (const ParsedEvent& e : batch->validator.events()) requested.push_back(e.id);
    std::vector<StoredEvent> found;
    found.reserve(n_stored);
    for (size_t i = 0; i < n_stored; i++) {
      StoredEvent s{};
      std::memcpy(s.id.data(), stored[i].id, 16);
      s.same_stream = stored[i].same_stream;
      s.version = stored[i].version;
      s.position = stored[i].position;
      found.push_back(s);
    }
    AppendResult r = match_idempotent_retry(std::string_view(stream, len), requested, expected,
                                            std::move(found));
    *out = ev_append_result{r.first_version, r.last_version, r.first_position, r.last_position};
  });
}

ev_in_flight* ev_in_flight_new(ev_error* err) noexcept {
  ev_in_flight* t = nullptr;
  guarded(err, [&] { t = new ev_in_flight(); });
  return t;
}

bool ev_in_flight_drawn(ev_in_flight* t, uint32_t subxact, int64_t first, ev_error* err) noexcept {
  return guarded(err, [&] { t->positions.drawn(subxact, first); });
}

// These three only shrink the vector or rewrite an entry; they allocate nothing and cannot throw.
void ev_in_flight_subcommit(ev_in_flight* t, uint32_t subxact, uint32_t parent) noexcept {
  t->positions.subcommit(subxact, parent);
}

void ev_in_flight_subabort(ev_in_flight* t, uint32_t subxact) noexcept { t->positions.subabort(subxact); }

void ev_in_flight_clear(ev_in_flight* t) noexcept { t->positions.clear(); }

int64_t ev_in_flight_lowest(const ev_in_flight* t) noexcept { return t->positions.lowest(); }

bool ev_render_notification(int64_t position, char* buf, size_t buflen, ev_error* err) noexcept {
  return guarded(err, [&] {
    std::string payload = render_notification(position);
    if (payload.size() + 1 > buflen) throw Error(sqlstate::internal_error, "payload buffer too small");
    std::memcpy(buf, payload.c_str(), payload.size() + 1);
  });
}

uint64_t ev_lock_key(const char* handler, size_t len) noexcept {
  return lock_key(std::string_view(handler, len));
}


bool ev_check_save(const ev_save_facts* facts, ev_error* err) noexcept {
  return guarded(err, [&] {
    SaveFacts f;
    f.handler = std::string_view(facts->handler, facts->handler_len);
    f.member = facts->member;
    f.members = facts->members;
    f.position = facts->position;
    f.stored = facts->stored;
    f.lease_given = facts->lease_given;
    f.lease_row_matches = facts->lease_row_matches;
    f.lease_live = facts->lease_live;
    f.expected_given = facts->expected_given;
    f.expected = facts->expected;
    f.read_in_transaction = facts->read_in_transaction;
    f.moved_since_read = facts->moved_since_read;
    check_save(f);
  });
}

bool ev_check_member(const char* handler, size_t len, int32_t member, int32_t members,
                     ev_error* err) noexcept {
  return guarded(err, [&] { check_member(std::string_view(handler, len), member, members); });
}

int32_t ev_max_handler_members(void) noexcept { return kMaxHandlerMembers; }

bool ev_check_event_type(const char* type, size_t len, ev_error* err) noexcept {
  return guarded(err, [&] { check_event_type(std::string_view(type, len)); });
}

bool ev_plan_resize(const char* handler, size_t len, int32_t old_members, int32_t new_members,
                    const int64_t* old_positions, size_t n_positions, ev_resize_plan* plan,
                    ev_error* err) noexcept {
  return guarded(err, [&] {
    const ResizePlan p = plan_resize(std::string_view(handler, len), old_members, new_members, old_positions,
                                     n_positions);
    plan->change = p.change;
    plan->start = p.start;
    plan->floors = p.floors;
  });
}

bool ev_stream_partition(const char* stream, size_t len, int32_t members, int32_t* partition,
                         ev_error* err) noexcept {
  return guarded(err, [&] { *partition = stream_partition(std::string_view(stream, len), members); });
}

bool ev_check_handler_read(bool after_given, int64_t after, bool types_given, size_t n_types,
                           bool types_have_null, ev_error* err) noexcept {
  return guarded(err, [&] { check_handler_read(after_given, after, types_given, n_types, types_have_null); });
}

bool ev_check_lease_ttl(int64_t ttl_us, bool has_months, ev_error* err) noexcept {
  return guarded(err, [&] { check_lease_ttl(ttl_us, has_months); });
}

bool ev_check_wait(int64_t after, int64_t timeout_ms, int64_t own_lowest_in_flight, ev_error* err) noexcept {
  return guarded(err, [&] { check_wait(after, timeout_ms, own_lowest_in_flight); });
}

bool ev_plan_epoch(const ev_epoch_facts* facts, ev_epoch_plan* plan, ev_error* err) noexcept {
  return guarded(err, [&] {
    EpochFacts f;
    f.have_latest = facts->have_latest;
    f.latest_epoch = facts->latest_epoch;
    f.same_node = facts->same_node;
    f.max_stored = facts->max_stored;
    f.sequence_last = facts->sequence_last;
    f.published_horizon = facts->published_horizon;
    f.present_through = facts->present_through;
    EpochPlan p = plan_epoch(f);
    plan->insert = p.insert;
    plan->epoch = p.epoch;
    plan->first_position = p.first_position;
    plan->lost = p.lost;
    plan->lost_after = p.lost_after;
    plan->sequence_to = p.sequence_to;
  });
}

bool ev_check_completed(int64_t checkpoint, const ev_lost_range* ranges, size_t n_ranges,
                        bool know_assigned, int64_t last_assigned, ev_error* err) noexcept {
  return guarded(err, [&] {
    static_assert(sizeof(ev_lost_range) == sizeof(LostRange), "same layout");
    check_completed(checkpoint, reinterpret_cast<const LostRange*>(ranges), n_ranges, know_assigned,
                    last_assigned);
  });
}

bool ev_check_handler_name(const char* name, size_t len, ev_error* err) noexcept {
  return guarded(err, [&] { check_handler_name(std::string_view(name, len)); });
}

bool ev_check_not_tombstoned(const char* stream, size_t len, bool tombstoned, ev_error* err) noexcept {
  return guarded(err, [&] { check_not_tombstoned(std::string_view(stream, len), tombstoned); });
}

void ev_duplicate_id_error(const char* detail, ev_error* err) noexcept {
  guarded(err, [&] { throw duplicate_id_error(detail ? detail : ""); });
}

bool ev_read_window(bool forward, int64_t from, int64_t* upto) noexcept {
  const ReadWindow w = read_window(forward, from, *upto);
  *upto = w.upto;
  return !w.empty;
}

void ev_plan_notifier_step(const ev_notifier_facts* facts, ev_notifier_step* step) noexcept {
  NotifierFacts f;
  f.moved = facts->moved;
  f.woken = facts->woken;
  f.holders_seen = facts->holders_seen;
  f.idle_timeout_enforced = facts->idle_timeout_enforced;
  f.ms_since_work = facts->ms_since_work;
  f.min_interval_ms = facts->min_interval_ms;
  const NotifierStep s = notifier_step(f);
  step->worked = s.worked;
  step->leave = s.leave;
  step->pause_ms = s.pause_ms;
}

int ev_notifier_idle_ms(void) noexcept { return kNotifierIdleMs; }

void ev_plan_waiter_wake(const ev_waiter_wake_facts* facts, ev_waiter_wake* wake) noexcept {
  WaiterWakeFacts f;
  f.pending = facts->pending;
  f.waiters = facts->waiters;
  f.ms_since_wake = facts->ms_since_wake;
  f.min_interval_ms = facts->min_interval_ms;
  f.wakeups_per_second = facts->wakeups_per_second;
  const WaiterWake w = waiter_wake(f);
  wake->wake = w.wake;
  wake->beat_ms = w.beat_ms;
  wake->due_in_ms = w.due_in_ms;
}

ev_json_builder* ev_json_builder_new(ev_error* err) noexcept {
  ev_json_builder* b = nullptr;
  guarded(err, [&] { b = new ev_json_builder(); });
  return b;
}

void ev_json_builder_free(ev_json_builder* b) noexcept { delete b; }

bool ev_json_builder_reset(ev_json_builder* b, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.reset(); });
}

bool ev_json_builder_begin_object(ev_json_builder* b, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.begin_object(); });
}

bool ev_json_builder_end_object(ev_json_builder* b, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.end_object(); });
}

bool ev_json_builder_key(ev_json_builder* b, const char* key, size_t len, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.key(std::string_view(key, key ? len : 0)); });
}

bool ev_json_builder_begin_array(ev_json_builder* b, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.begin_array(); });
}

bool ev_json_builder_end_array(ev_json_builder* b, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.end_array(); });
}

bool ev_json_builder_string(ev_json_builder* b, const char* s, size_t len, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.string(std::string_view(s, s ? len : 0)); });
}

bool ev_json_builder_number(ev_json_builder* b, const char* text, size_t len, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.number(std::string_view(text, text ? len : 0)); });
}

bool ev_json_builder_boolean(ev_json_builder* b, bool value, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.boolean(value); });
}

bool ev_json_builder_null(ev_json_builder* b, ev_error* err) noexcept {
  return guarded(err, [&] { b->builder.null(); });
}

bool ev_json_builder_complete(const ev_json_builder* b) noexcept { return b->builder.complete(); }

bool ev_schema_compile(const ev_json_builder* schema, ev_schema** out, ev_error* err) noexcept {
  *out = nullptr;
  return guarded(err, [&] {
    *out = new ev_schema{schema::Validator::compile(schema->builder.document())};
  });
}

void ev_schema_free(ev_schema* s) noexcept { delete s; }

bool ev_schema_unusable(const char* type, size_t type_len, const char* why, ev_error* err) noexcept {
  return guarded(err, [&] {
    throw Error(sqlstate::object_not_in_prerequisite_state,
                "the stored schema of event type \"" + std::string(type, type_len) + "\" does not compile: " +
                    (why ? why : ""),
                "",
                "Appends of this type fail until everest.set_event_schema sets a schema the store accepts, or "
                "everest.drop_event_schema removes it; other types are not affected.");
  });
}

bool ev_schema_validate(const ev_schema* s, const ev_json_builder* data, const char* type, size_t type_len,
                        size_t event_index, ev_error* err) noexcept {
  return guarded(err, [&] {
    std::optional<schema::Violation> v = s->validator.validate(data->builder.document());
    if (!v) return;
    std::string_view shown_type = type ? std::string_view(type, type_len) : std::string_view();
    if (shown_type.size() > 200) {  // cut long names, not a UTF-8 character
      std::size_t n = 200;
      while (n > 0 && (static_cast<unsigned char>(shown_type[n]) & 0xC0) == 0x80) n--;
      shown_type = shown_type.substr(0, n);
    }
    throw Error(sqlstate::data_invalid,
                "event " + std::to_string(event_index) + " does not satisfy the schema of type \"" +
                    std::string(shown_type) + "\": " + v->message,
                "JSON pointer \"" + v->pointer + "\", keyword \"" + v->keyword + "\"",
                "The schema of each event type is in everest.event_schemas.");
  });
}

ev_json_check* ev_json_check_new(ev_error* err) noexcept {
  ev_json_check* c = nullptr;
  guarded(err, [&] { c = new ev_json_check(); });
  return c;
}

void ev_json_check_free(ev_json_check* c) noexcept { delete c; }

// A check stops at an exception (no memory, tokens out of order, number text that is not JSON):
// the value then reads as not passed, and the Builder and ev_schema_validate say what is wrong.
#define EV_CHECK_TOKEN(call)   \
  try {                        \
    c->checker.call;           \
  } catch (...) {              \
    c->checker.give_up();      \
  }

void ev_json_check_start(ev_json_check* c, const ev_schema* s) noexcept { EV_CHECK_TOKEN(start(s->validator)) }
void ev_json_check_begin_object(ev_json_check* c) noexcept { EV_CHECK_TOKEN(begin_object()) }
void ev_json_check_end_object(ev_json_check* c) noexcept { EV_CHECK_TOKEN(end_object()) }
void ev_json_check_key(ev_json_check* c, const char* key, size_t len) noexcept {
  EV_CHECK_TOKEN(key(std::string_view(key, key ? len : 0)))
}
void ev_json_check_begin_array(ev_json_check* c) noexcept { EV_CHECK_TOKEN(begin_array()) }
void ev_json_check_end_array(ev_json_check* c) noexcept { EV_CHECK_TOKEN(end_array()) }
void ev_json_check_string(ev_json_check* c, const char* s, size_t len) noexcept {
  EV_CHECK_TOKEN(string(std::string_view(s, s ? len : 0)))
}
void ev_json_check_number(ev_json_check* c, const char* text, size_t len) noexcept {
  EV_CHECK_TOKEN(number(std::string_view(text, text ? len : 0)))
}
void ev_json_check_number_unread(ev_json_check* c) noexcept { EV_CHECK_TOKEN(number_unread()) }
void ev_json_check_boolean(ev_json_check* c, bool value) noexcept { EV_CHECK_TOKEN(boolean(value)) }
void ev_json_check_null(ev_json_check* c) noexcept { EV_CHECK_TOKEN(null()) }
void ev_json_check_opaque(ev_json_check* c, bool is_object) noexcept { EV_CHECK_TOKEN(opaque(is_object)) }
#undef EV_CHECK_TOKEN

bool ev_json_check_wants_number_text(const ev_json_check* c) noexcept { return c->checker.wants_number_text(); }
bool ev_json_check_wants_contents(const ev_json_check* c) noexcept { return c->checker.wants_contents(); }
bool ev_json_check_ok(const ev_json_check* c) noexcept { return c->checker.ok(); }
bool ev_json_check_passed(const ev_json_check* c) noexcept { return c->checker.passed(); }

}  // extern "C"
