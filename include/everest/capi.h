/*
 * everest core, C API: what the PostgreSQL glue (src/pg/) calls.
 *
 * Every function catches every C++ exception and reports it through an ev_error; none of them
 * calls PostgreSQL, so no longjmp ever crosses a C++ frame. A function returning bool returns
 * false when it filled `err`; the glue then raises it with ev_raise() (src/pg/report.c).
 */
#ifndef EVEREST_CAPI_H
#define EVEREST_CAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Nothing here throws: C++ callers (the unit tests) see it, and a stray exception would end the
 * process at the boundary instead of unwinding through C frames. */
#ifdef __cplusplus
#define EV_NOEXCEPT noexcept
extern "C" {
#else
#define EV_NOEXCEPT
#endif

typedef struct ev_error
{
	char		sqlstate[6];
	char		message[1024];
	char		detail[512];
	char		hint[512];
} ev_error;

/* Stream names. */
typedef enum ev_stream_kind
{
	EV_STREAM_REGULAR = 0,
	EV_STREAM_ALL = 1,
	EV_STREAM_CATEGORY = 2,
	EV_STREAM_REGULAR_BY_POSITION = 3,	/* a regular stream read by position (read_handler_events) */
	EV_STREAM_TYPE = 4			/* $et-<type>: every event of one type */
} ev_stream_kind;

/* Validates a stream name for a read; for a category stream sets category and category_len. */
bool		ev_classify_stream_for_read(const char *name, size_t len, ev_stream_kind *kind,
										const char **category, size_t *category_len,
										ev_error *err) EV_NOEXCEPT;
/* Validates a stream name for an append or a delete (regular streams only). */
bool		ev_check_writable_stream(const char *name, size_t len, ev_error *err) EV_NOEXCEPT;
/* An append to a tombstoned stream (EV002), and a stored id met at insert time (EV003). */
bool		ev_check_not_tombstoned(const char *stream, size_t len, bool tombstoned, ev_error *err) EV_NOEXCEPT;
void		ev_duplicate_id_error(const char *detail, ev_error *err) EV_NOEXCEPT;
/* Validates a handler name (non-empty, at most 512 bytes). */
bool		ev_check_handler_name(const char *name, size_t len, ev_error *err) EV_NOEXCEPT;

/* Expected versions and counts. */
bool		ev_check_expected_version_value(int64_t expected, ev_error *err) EV_NOEXCEPT;
bool		ev_check_expected_version(const char *stream, size_t len, int64_t expected,
									  int64_t actual, ev_error *err) EV_NOEXCEPT;
bool		ev_check_max_count(int64_t max_count, ev_error *err) EV_NOEXCEPT;

/* Event batches, fed element by element from jsonb. */
typedef enum ev_json_kind
{
	EV_JSON_NULL = 0,
	EV_JSON_BOOL,
	EV_JSON_NUMBER,
	EV_JSON_STRING,
	EV_JSON_ARRAY,
	EV_JSON_OBJECT
} ev_json_kind;

typedef struct ev_batch ev_batch;

ev_batch   *ev_batch_new(ev_error *err) EV_NOEXCEPT;
void		ev_batch_free(ev_batch *batch) EV_NOEXCEPT;
bool		ev_batch_begin_event(ev_batch *batch, bool is_object, ev_error *err) EV_NOEXCEPT;
bool		ev_batch_field(ev_batch *batch, const char *key, size_t key_len, ev_json_kind kind,
						   const char *text, size_t text_len, ev_error *err) EV_NOEXCEPT;
bool		ev_batch_end_event(ev_batch *batch, ev_error *err) EV_NOEXCEPT;
bool		ev_batch_finish(ev_batch *batch, ev_error *err) EV_NOEXCEPT;
size_t		ev_batch_size(const ev_batch *batch) EV_NOEXCEPT;
/* Event i's type (NUL-terminated, owned by the batch) and id; false when no id was given. */
const char *ev_batch_type(const ev_batch *batch, size_t i, size_t *len) EV_NOEXCEPT;
bool		ev_batch_id(const ev_batch *batch, size_t i, uint8_t out[16]) EV_NOEXCEPT;
bool		ev_batch_has_client_ids(const ev_batch *batch) EV_NOEXCEPT;

/* UUIDs. */
void		ev_make_uuid_v4(const uint8_t random_bytes[16], uint8_t out[16]) EV_NOEXCEPT;
void		ev_make_uuid_v7(uint64_t unix_ms, const uint8_t random_bytes[16], uint8_t out[16]) EV_NOEXCEPT;

/* Idempotent retries: `stored` holds what the store has under the batch's ids. */
typedef struct ev_stored_event
{
	uint8_t		id[16];
	bool		same_stream;
	int64_t		version;
	int64_t		position;
} ev_stored_event;

typedef struct ev_append_result
{
	int64_t		first_version;
	int64_t		last_version;
	int64_t		first_position;
	int64_t		last_position;
} ev_append_result;

bool		ev_match_idempotent_retry(const char *stream, size_t len, const ev_batch *batch,
									  int64_t expected, const ev_stored_event *stored,
									  size_t n_stored, ev_append_result *out, ev_error *err) EV_NOEXCEPT;

/* Positions in flight in this backend's transaction (one tracker per backend). */
typedef struct ev_in_flight ev_in_flight;

ev_in_flight *ev_in_flight_new(ev_error *err) EV_NOEXCEPT;
bool		ev_in_flight_drawn(ev_in_flight *t, uint32_t subxact, int64_t first, ev_error *err) EV_NOEXCEPT;
void		ev_in_flight_subcommit(ev_in_flight *t, uint32_t subxact, uint32_t parent) EV_NOEXCEPT;
void		ev_in_flight_subabort(ev_in_flight *t, uint32_t subxact) EV_NOEXCEPT;
void		ev_in_flight_clear(ev_in_flight *t) EV_NOEXCEPT;
int64_t		ev_in_flight_lowest(const ev_in_flight *t) EV_NOEXCEPT;

/* Handler saves, leases and waits (docs/topologies.md): facts in, decision out. */
typedef struct ev_save_facts
{
	const char *handler;
	size_t		handler_len;
	int32_t		member;
	int32_t		members;		/* the group's size */
	int64_t		position;
	int64_t		stored;
	bool		lease_given;
	bool		lease_row_matches;
	bool		lease_live;
	bool		expected_given;
	int64_t		expected;
	bool		read_in_transaction;
	bool		moved_since_read;
} ev_save_facts;

bool		ev_check_save(const ev_save_facts *facts, ev_error *err) EV_NOEXCEPT;
bool		ev_check_member(const char *handler, size_t len, int32_t member, int32_t members,
							ev_error *err) EV_NOEXCEPT;
int32_t		ev_max_handler_members(void) EV_NOEXCEPT;
bool		ev_check_event_type(const char *type, size_t len, ev_error *err) EV_NOEXCEPT;
typedef struct ev_resize_plan
{
	bool		change;
	int64_t		start;
	bool		floors;
} ev_resize_plan;
bool		ev_plan_resize(const char *handler, size_t len, int32_t old_members, int32_t new_members,
						   const int64_t *old_positions, size_t n_positions, ev_resize_plan *plan,
						   ev_error *err) EV_NOEXCEPT;
bool		ev_stream_partition(const char *stream, size_t len, int32_t members, int32_t *partition,
								ev_error *err) EV_NOEXCEPT;
bool		ev_check_handler_read(bool after_given, int64_t after, bool types_given, size_t n_types,
									  bool types_have_null, ev_error *err) EV_NOEXCEPT;
bool		ev_check_lease_ttl(int64_t ttl_us, bool has_months, ev_error *err) EV_NOEXCEPT;
bool		ev_check_wait(int64_t after, int64_t timeout_ms, int64_t own_lowest_in_flight, ev_error *err) EV_NOEXCEPT;

/* Epochs (docs/topologies.md, "Failover"). */
typedef struct ev_lost_range
{
	int64_t		after;
	int64_t		before;
} ev_lost_range;

typedef struct ev_epoch_facts
{
	bool		have_latest;
	int32_t		latest_epoch;
	bool		same_node;
	int64_t		max_stored;
	int64_t		sequence_last;
	int64_t		published_horizon;
	int64_t		present_through;
} ev_epoch_facts;

typedef struct ev_epoch_plan
{
	bool		insert;
	int32_t		epoch;
	int64_t		first_position;
	bool		lost;
	int64_t		lost_after;
	int64_t		sequence_to;
} ev_epoch_plan;

bool		ev_plan_epoch(const ev_epoch_facts *facts, ev_epoch_plan *plan, ev_error *err) EV_NOEXCEPT;
bool		ev_check_completed(int64_t checkpoint, const ev_lost_range *ranges, size_t n_ranges,
							   bool know_assigned, int64_t last_assigned, ev_error *err) EV_NOEXCEPT;

/* The window of a read: false when there is nothing to read; *upto may be lowered. */
bool		ev_read_window(bool forward, int64_t from, int64_t *upto) EV_NOEXCEPT;

/* The notifier's pacing after a round. */
typedef struct ev_notifier_facts
{
	bool		moved;
	bool		woken;
	bool		holders_seen;
	bool		idle_timeout_enforced;
	int64_t		ms_since_work;
	int			min_interval_ms;
} ev_notifier_facts;
typedef struct ev_notifier_step
{
	bool		worked;
	bool		leave;
	int			pause_ms;
} ev_notifier_step;
void		ev_plan_notifier_step(const ev_notifier_facts *facts, ev_notifier_step *step) EV_NOEXCEPT;
int			ev_notifier_idle_ms(void) EV_NOEXCEPT;

/* Rationed wake-ups of the sessions in wait_for_position (docs/topologies.md, "What waiting costs"). */
typedef struct ev_waiter_wake_facts
{
	bool		pending;
	int			waiters;
	int64_t		ms_since_wake;
	int			min_interval_ms;
	int			wakeups_per_second;
} ev_waiter_wake_facts;
typedef struct ev_waiter_wake
{
	bool		wake;
	int			beat_ms;
	int			due_in_ms;
} ev_waiter_wake;
void		ev_plan_waiter_wake(const ev_waiter_wake_facts *facts, ev_waiter_wake *wake) EV_NOEXCEPT;

/*
 * Event data schemas (DESIGN.md section 11, docs/schemas.md).
 *
 * A builder holds one JSON value that the glue builds while it walks a jsonb: begin/end for
 * containers, key() before each member of an object, numbers as numeric_out text (kept exactly:
 * big integers and long decimals are compared without rounding). A repeated key keeps its last
 * value. Misuse (a member without a key, unbalanced ends, a second root) is XX000, a number text
 * that is not JSON's grammar 22P02, nesting beyond 1000 levels 54000. reset() makes it ready for
 * the next value and keeps its buffers.
 *
 * A compiled schema is immutable: cache it for the backend's life and validate any number of
 * values with it. Builders and schemas are C++ heap objects (not palloc'd): free each exactly once,
 * also when an error interrupts the walk. Nothing here keeps a pointer to the caller's memory.
 */
typedef struct ev_json_builder ev_json_builder;

ev_json_builder *ev_json_builder_new(ev_error *err) EV_NOEXCEPT;
void		ev_json_builder_free(ev_json_builder *b) EV_NOEXCEPT;
bool		ev_json_builder_reset(ev_json_builder *b, ev_error *err) EV_NOEXCEPT;
bool		ev_json_builder_begin_object(ev_json_builder *b, ev_error *err) EV_NOEXCEPT;
bool		ev_json_builder_end_object(ev_json_builder *b, ev_error *err) EV_NOEXCEPT;
bool		ev_json_builder_key(ev_json_builder *b, const char *key, size_t len, ev_error *err) EV_NOEXCEPT;
bool		ev_json_builder_begin_array(ev_json_builder *b, ev_error *err) EV_NOEXCEPT;
bool		ev_json_builder_end_array(ev_json_builder *b, ev_error *err) EV_NOEXCEPT;
bool		ev_json_builder_string(ev_json_builder *b, const char *s, size_t len, ev_error *err) EV_NOEXCEPT;
bool		ev_json_builder_number(ev_json_builder *b, const char *text, size_t len, ev_error *err) EV_NOEXCEPT;
bool		ev_json_builder_boolean(ev_json_builder *b, bool value, ev_error *err) EV_NOEXCEPT;
bool		ev_json_builder_null(ev_json_builder *b, ev_error *err) EV_NOEXCEPT;
/* One complete value was built. */
bool		ev_json_builder_complete(const ev_json_builder *b) EV_NOEXCEPT;

typedef struct ev_schema ev_schema;

/* Compiles the value in `schema` (complete, else XX000); 22023 names what is wrong and where.
 * On success *out is a new schema (the builder may be reset or freed); on failure NULL. */
bool		ev_schema_compile(const ev_json_builder *schema, ev_schema **out, ev_error *err) EV_NOEXCEPT;
void		ev_schema_free(ev_schema *schema) EV_NOEXCEPT;
/* A stored schema that does not compile here (restored, or set by an older version): 55000 naming
 * the type, with why. Always false. */
bool		ev_schema_unusable(const char *type, size_t type_len, const char *why, ev_error *err) EV_NOEXCEPT;
/* Validates the value in `data` (complete, else XX000): true when it satisfies the schema;
 * otherwise false with EV007 naming event `event_index`, the type, the JSON pointer of the first
 * violation and the rule (message), and the pointer and keyword apart (detail). */
bool		ev_schema_validate(const ev_schema *schema, const ev_json_builder *data, const char *type,
							   size_t type_len, size_t event_index, ev_error *err) EV_NOEXCEPT;

/*
 * The fast check of an event's data (docs/schemas.md, "How appends are checked"): the glue walks
 * the jsonb into a checker, token by token as for a builder, and nothing is built. It accepts
 * exactly what ev_schema_validate accepts, but says only pass or fail; on a fail the glue builds
 * the value and calls ev_schema_validate, which words the violation (EV007) or the error. Keys
 * within an object must be distinct, as jsonb's are. Two shortcuts: when wants_number_text is
 * false, number_unread stands for the next number (no numeric_out); when wants_contents is false,
 * opaque stands for the next value if it is a container (its members are not walked). Token
 * functions never fail: a problem makes the check read as not passed. A checker is a C++ heap
 * object reused across values (start resets it); the schema must outlive the check.
 */
typedef struct ev_json_check ev_json_check;

ev_json_check *ev_json_check_new(ev_error *err) EV_NOEXCEPT;
void		ev_json_check_free(ev_json_check *c) EV_NOEXCEPT;
void		ev_json_check_start(ev_json_check *c, const ev_schema *schema) EV_NOEXCEPT;
void		ev_json_check_begin_object(ev_json_check *c) EV_NOEXCEPT;
void		ev_json_check_end_object(ev_json_check *c) EV_NOEXCEPT;
void		ev_json_check_key(ev_json_check *c, const char *key, size_t len) EV_NOEXCEPT;
void		ev_json_check_begin_array(ev_json_check *c) EV_NOEXCEPT;
void		ev_json_check_end_array(ev_json_check *c) EV_NOEXCEPT;
void		ev_json_check_string(ev_json_check *c, const char *s, size_t len) EV_NOEXCEPT;
void		ev_json_check_number(ev_json_check *c, const char *text, size_t len) EV_NOEXCEPT;
void		ev_json_check_number_unread(ev_json_check *c) EV_NOEXCEPT;
void		ev_json_check_boolean(ev_json_check *c, bool value) EV_NOEXCEPT;
void		ev_json_check_null(ev_json_check *c) EV_NOEXCEPT;
void		ev_json_check_opaque(ev_json_check *c, bool is_object) EV_NOEXCEPT;
bool		ev_json_check_wants_number_text(const ev_json_check *c) EV_NOEXCEPT;
bool		ev_json_check_wants_contents(const ev_json_check *c) EV_NOEXCEPT;
/* No violation so far (the walk may stop early when false). */
bool		ev_json_check_ok(const ev_json_check *c) EV_NOEXCEPT;
/* One complete value was given and it satisfies the schema. */
bool		ev_json_check_passed(const ev_json_check *c) EV_NOEXCEPT;

/* Rendering and hashing. */
bool		ev_render_notification(int64_t position, char *buf, size_t buflen, ev_error *err) EV_NOEXCEPT;
uint64_t	ev_lock_key(const char *name, size_t len) EV_NOEXCEPT;	/* handler leases, stream locks */

#ifdef __cplusplus
}
#endif

#endif							/* EVEREST_CAPI_H */
