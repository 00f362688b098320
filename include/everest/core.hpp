// everest core: the rules of the event store, in plain C++17.
//
// Nothing here includes postgres.h (see cpp_only.hpp). The PostgreSQL glue in src/pg/ reaches
// this code only through the C API in capi.h, which turns every exception into an error record
// (SQLSTATE, message, detail, hint) that the glue raises with ereport.
#pragma once

#include "everest/cpp_only.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace everest {

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

// SQLSTATEs of DESIGN.md section 3.
namespace sqlstate {
inline constexpr const char* wrong_expected_version = "EV001";
inline constexpr const char* stream_deleted = "EV002";  // tombstoned
inline constexpr const char* duplicate_event_id = "EV003";
inline constexpr const char* handler_position_not_forward = "EV004";
inline constexpr const char* lease_lost = "EV005";
inline constexpr const char* position_never_completed = "EV006";
inline constexpr const char* data_invalid = "EV007";  // event data that does not satisfy its schema
inline constexpr const char* invalid_parameter_value = "22023";
inline constexpr const char* null_value_not_allowed = "22004";
inline constexpr const char* invalid_text_representation = "22P02";
inline constexpr const char* object_not_in_prerequisite_state = "55000";
inline constexpr const char* program_limit_exceeded = "54000";
inline constexpr const char* feature_not_supported = "0A000";
inline constexpr const char* internal_error = "XX000";
}  // namespace sqlstate

// The one exception type the core throws for user-caused errors.
class Error : public std::runtime_error {
 public:
  Error(const char* state, std::string message, std::string detail = {}, std::string hint = {})
      : std::runtime_error(message), state_(state), detail_(std::move(detail)),
        hint_(std::move(hint)) {}
  const char* sqlstate() const noexcept { return state_; }
  const std::string& detail() const noexcept { return detail_; }
  const std::string& hint() const noexcept { return hint_; }

 private:
  const char* state_;
  std::string detail_;
  std::string hint_;
};

// ---------------------------------------------------------------------------------------------
// Stream names
// ---------------------------------------------------------------------------------------------

inline constexpr std::size_t kMaxStreamNameBytes = 512;
inline constexpr std::string_view kAllStream = "$all";
inline constexpr std::string_view kCategoryPrefix = "$ce-";
inline constexpr std::string_view kTypePrefix = "$et-";
// Event types, like stream names, are bounded (an index on them needs it).
inline constexpr std::size_t kMaxEventTypeBytes = 512;

enum class StreamKind { regular, all, category, type };

struct StreamRef {
  StreamKind kind;
  std::string_view category;  // for StreamKind::category: the category; for type: the event type
};

// Validates a stream name given to a read (regular, `$all`, `$ce-<category>` or `$et-<type>`).
// Throws 22023 for an empty name, a name over the limit, or another reserved (`$`) name.
StreamRef classify_stream_for_read(std::string_view name);

// Validates a stream name given to an append or a delete: regular streams only.
void check_writable_stream(std::string_view name);
// Event types given to set_event_schema / drop_event_schema: non-empty, at most
// kMaxEventTypeBytes bytes (22023), as in an appended event.
void check_event_type(std::string_view type);
// Handler names: non-empty, at most kMaxStreamNameBytes bytes (22023).
void check_handler_name(std::string_view name);
// EV002: an append to a stream deleted with tombstone => true.
void check_not_tombstoned(std::string_view stream, bool tombstoned);
// EV003 for an id another transaction stored at the same time (the unique index caught it).
Error duplicate_id_error(std::string detail);

// The category of a regular stream: the part before the first '-', or the whole name.
std::string_view category_of(std::string_view stream);

// ---------------------------------------------------------------------------------------------
// Expected versions
// ---------------------------------------------------------------------------------------------

inline constexpr std::int64_t kExpectAny = -2;
inline constexpr std::int64_t kExpectNoStream = -1;
inline constexpr std::int64_t kExpectStreamExists = -4;

// Throws 22023 unless `expected` is -2, -1, -4 or >= 0.
void check_expected_version_value(std::int64_t expected);

// Throws EV001 naming the stream, the expected and the actual version (-1 when absent)
// unless `actual` satisfies `expected`.
void check_expected_version(std::string_view stream, std::int64_t expected, std::int64_t actual);

// Throws 22023 for a max_count below zero.
void check_max_count(std::int64_t max_count);

// ---------------------------------------------------------------------------------------------
// UUIDs
// ---------------------------------------------------------------------------------------------

using Uuid = std::array<std::uint8_t, 16>;

// Parses the textual forms PostgreSQL's uuid type accepts for canonical input
// (8-4-4-4-12 hex, optionally in braces, or 32 hex digits). Throws 22P02 otherwise.
Uuid parse_uuid(std::string_view text);
std::string format_uuid(const Uuid& id);
// Makes a version-4 UUID from 16 random bytes.
Uuid make_uuid_v4(const Uuid& random_bytes);
// Makes a version-7 UUID (RFC 9562): 48 bits of Unix time in milliseconds, then random bits.
// Ids generated by the store are v7, so the unique index on ids grows at its right edge instead
// of touching a random page per append.
Uuid make_uuid_v7(std::uint64_t unix_ms, const Uuid& random_bytes);

// ---------------------------------------------------------------------------------------------
// Event batches
// ---------------------------------------------------------------------------------------------

// The JSON kinds a batch element's fields can have.
enum class JsonKind { null, boolean, number, string, array, object };

struct ParsedEvent {
  std::string type;
  std::optional<Uuid> id;
  bool has_metadata = false;  // a non-null metadata object was given
};

// Validates an event batch one element and one field at a time, so that the PostgreSQL glue can
// feed it straight from jsonb (no second parse) and the Boost.JSON front end from text.
// Every error names the offending element's index.
class EventBatchValidator {
 public:
  // Starts element `events[size()]`; `is_object` false is an error.
  void begin_event(bool is_object);
  // One key of the current element. `text` is the string value, used for "type" and "id".
  void field(std::string_view key, JsonKind kind, std::string_view text = {});
  // Ends the current element: checks that "type" was given.
  void end_event();
  // Ends the batch: checks that it had at least one element.
  const std::vector<ParsedEvent>& finish() const;

  std::size_t size() const { return events_.size(); }
  const std::vector<ParsedEvent>& events() const { return events_; }

 private:
  [[noreturn]] void fail(const std::string& what) const;
  std::vector<ParsedEvent> events_;
  std::map<Uuid, std::size_t> ids_;  // id -> index of the event that carries it
  bool in_event_ = false;
  unsigned seen_ = 0;  // bit set of the keys seen in the current element
};

// The same validation from JSON text, with Boost.JSON. Used by the fuzz target, the unit tests
// and clients that check a batch before sending it. Malformed JSON is 22P02.
std::vector<ParsedEvent> parse_event_batch(std::string_view json_text);

// ---------------------------------------------------------------------------------------------
// Idempotent retries
// ---------------------------------------------------------------------------------------------

// An event already stored under one of the requested ids.
struct StoredEvent {
  Uuid id;
  bool same_stream;
  std::int64_t version;
  std::int64_t position;
};

struct AppendResult {
  std::int64_t first_version;
  std::int64_t last_version;
  std::int64_t first_position;
  std::int64_t last_position;
};

// Decides whether a batch whose ids (some or all) are stored already is an idempotent retry:
// every id stored, in the same stream, in the same order, as a contiguous run of versions,
// starting right after `expected` (-1: at version 0; N: at N+1; -4: after version 0; -2: anywhere).
// Returns the original result, or throws EV003.
AppendResult match_idempotent_retry(std::string_view stream,
                                    const std::vector<std::optional<Uuid>>& requested,
                                    std::int64_t expected, std::vector<StoredEvent> stored);

// ---------------------------------------------------------------------------------------------
// Horizon bookkeeping
// ---------------------------------------------------------------------------------------------

// The positions one transaction holds in flight, by subtransaction, so that a savepoint
// rollback releases its own positions and nothing else. The glue publishes lowest() in
// shared memory; safe_position() is the lowest in-flight position of any backend, minus one.
class InFlightPositions {
 public:
  // Positions from `first` were drawn in subtransaction `subxact`.
  void drawn(std::uint32_t subxact, std::int64_t first);
  // Subtransaction `subxact` committed into `parent`: its positions now belong to the parent.
  void subcommit(std::uint32_t subxact, std::uint32_t parent);
  // Subtransaction `subxact` (and any child of it still listed) rolled back.
  void subabort(std::uint32_t subxact);
  // The top transaction ended.
  void clear() { entries_.clear(); }
  // The lowest position still in flight, or 0 when none.
  std::int64_t lowest() const;
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    std::uint32_t subxact;
    std::int64_t first;
  };
  std::vector<Entry> entries_;  // one per subtransaction that drew positions
};

// ---------------------------------------------------------------------------------------------
// Read windows and the notifier's pacing (src/core/policy.cpp)
// ---------------------------------------------------------------------------------------------

// A read from `from` (a version, or a position; backward, -1 means from the end) that may return
// nothing above `upto` (safe_position() for positions, the bigint maximum for versions).
struct ReadWindow {
  std::int64_t from;
  std::int64_t upto;  // the highest version or position the read returns
  bool empty;         // nothing to read
};
ReadWindow read_window(bool forward, std::int64_t from, std::int64_t upto);

// The notifier leaves after this long without work (so DROP DATABASE is not blocked for long).
inline constexpr int kNotifierIdleMs = 2000;

struct NotifierFacts {
  bool moved = false;                  // the round published a higher horizon
  bool woken = false;                  // an appender set the notifier's latch
  bool holders_seen = false;           // sessions hold positions in flight
  bool idle_timeout_enforced = false;  // everest.horizon_idle_timeout > 0: someone must watch them
  std::int64_t ms_since_work = 0;      // since the last round with work
  int min_interval_ms = 0;             // everest.notify_min_interval_ms
};
struct NotifierStep {
  bool worked = false;  // the round counts as work (resets the idle clock)
  bool leave = false;   // idle long enough: exit
  int pause_ms = 0;     // sleep this long before the next round, whatever wakes it
};
NotifierStep notifier_step(const NotifierFacts& f);

// Waking the sessions in wait_for_position (docs/topologies.md, "What waiting costs"). Every
// wake-up costs a waiter's round trip to its client and back, about as much server CPU as an
// append on a 2-core machine, so the notifier rations them: all waiters are woken together, at
// most once a beat, and the beat stretches with the number of waiters so that wake-ups stay
// within everest.waiter_wakeups_per_second. A few waiters are woken as often as notifications go.
inline constexpr int kWaiterBeatMaxMs = 1000;
struct WaiterWakeFacts {
  bool pending = false;               // announced a horizon the waiters were not woken for
  int waiters = 0;                    // sessions in wait_for_position now
  std::int64_t ms_since_wake = 0;     // since the last wake-up (large when none yet)
  int min_interval_ms = 0;            // everest.notify_min_interval_ms
  int wakeups_per_second = 0;         // everest.waiter_wakeups_per_second (0: no ration)
};
struct WaiterWake {
  bool wake = false;  // broadcast now
  int beat_ms = 0;    // the shortest time between two wake-ups
  int due_in_ms = 0;  // a pending wake-up not made now is due this long from now (0: none)
};
WaiterWake waiter_wake(const WaiterWakeFacts& f);

// ---------------------------------------------------------------------------------------------
// Rendering and hashing
// ---------------------------------------------------------------------------------------------

// The notification payload {"position": N}.
std::string render_notification(std::int64_t position);

// A 64-bit FNV-1a hash of a name: the key of a handler's session lease and of a stream's
// writer lock (src/pg/handlers.c, src/pg/streams.c).
std::uint64_t lock_key(std::string_view name);

// ---------------------------------------------------------------------------------------------
// Handler saves and leases (docs/topologies.md). The glue gathers the facts under the row locks
// of the member's lease and checkpoint; the core decides.
// ---------------------------------------------------------------------------------------------

inline constexpr std::int32_t kMaxHandlerMembers = 1024;

// The member of a group of `members` that receives a stream's events: the FNV-1a 64-bit hash of
// the name's bytes, as an unsigned integer, modulo members. The same on every platform and in
// every language (docs/groups.md gives the test vectors). Throws 22023 for members outside
// 1..kMaxHandlerMembers and for an empty stream name.
std::int32_t stream_partition(std::string_view stream, std::int32_t members);

struct SaveFacts {
  std::string_view handler;
  std::int32_t member = 0;
  std::int32_t members = 1;         // the group's size
  std::int64_t position = 0;        // the position being saved
  std::int64_t stored = 0;          // the stored checkpoint (0 when there is none)
  bool lease_given = false;         // the save named a lease token
  bool lease_row_matches = false;   // ... and it is the token of the member's lease row
  bool lease_live = false;          // the member's lease row has not expired
  bool expected_given = false;
  std::int64_t expected = 0;
  bool read_in_transaction = false; // a read_handler_events of this member earlier in the transaction
  bool moved_since_read = false;    // ... and the checkpoint row is no longer the one it read from
};

// Throws EV005, EV004 or 22023 when the save must not happen.
void check_save(const SaveFacts& f);
// A member number given by a caller (NULL handled by the glue), in a group of `members`.
void check_member(std::string_view handler, std::int32_t member, std::int32_t members);

// resize_handler (docs/groups.md, "Resizing"): from the old members' checkpoints, where the new
// members start (the lowest: everything at or below it was applied, whatever the stream) and
// whether the old checkpoints must be kept as floors (they differ: an event above the lowest may
// have been applied already by its old member).
struct ResizePlan {
  bool change = false;          // the size differs
  std::int64_t start = 0;       // every new member's checkpoint
  bool floors = false;          // keep the old checkpoints above start as floors
};
ResizePlan plan_resize(std::string_view handler, std::int32_t old_members, std::int32_t new_members,
                       const std::int64_t* old_positions, std::size_t n_positions);
// read_handler_events' filters: `after` (a position, when given) and the `types` array (its
// length and whether an element is NULL, when given).
void check_handler_read(bool after_given, std::int64_t after, bool types_given, std::size_t n_types,
                        bool types_have_null);
// A lease time to live in microseconds.
void check_lease_ttl(std::int64_t ttl_us, bool has_months);
// wait_for_position: a timeout, and whether this session would wait for its own append.
void check_wait(std::int64_t after, std::int64_t timeout_ms, std::int64_t own_lowest_in_flight);

// ---------------------------------------------------------------------------------------------
// Epochs (docs/topologies.md, "Failover"): positions carry an epoch in their high bits, so that a
// node that took over (a promoted standby, a mirror after cutover, a restore elsewhere) hands out
// positions above everything any earlier primary assigned, and records the range it never
// completed. Positions stay below 2^53, exact in JavaScript.
// ---------------------------------------------------------------------------------------------

inline constexpr int kEpochBits = 40;
inline constexpr std::int32_t kMaxEpochs = 1 << (53 - kEpochBits);  // 8192

inline std::int32_t epoch_of(std::int64_t position) {
  return position <= 0 ? 0 : static_cast<std::int32_t>(position >> kEpochBits);
}

// Positions p with after < p < before - 1 were assigned (or may have been) by an earlier primary
// and never completed here; `before` is the first position of the epoch that followed.
struct LostRange {
  std::int64_t after;
  std::int64_t before;
};

struct EpochFacts {
  bool have_latest = false;           // the epochs table has a row
  std::int32_t latest_epoch = 0;
  bool same_node = false;             // ... whose system identifier and timeline are this node's
  std::int64_t max_stored = 0;        // max(events.position, the published horizon)
  std::int64_t sequence_last = 0;     // the position sequence's last value
  std::int64_t published_horizon = 0; // the last horizon this node received (everest.horizon)
  std::int64_t present_through = 0;   // every position in (published_horizon, this] is stored here
};

struct EpochPlan {
  bool insert = false;                // record a new epoch row
  std::int32_t epoch = 0;
  std::int64_t first_position = 1;
  bool lost = false;                  // with a lost range (lost_after, first_position)
  std::int64_t lost_after = 0;
  std::int64_t sequence_to = 0;       // move the sequence up to this value first (0: leave it)
};

// What the first append on a node does (throws 55000 when the epochs are used up).
EpochPlan plan_epoch(const EpochFacts& f);

// A reader's or saver's checkpoint: EV006 when it lies in a lost range, or (know_assigned) beyond
// the last position this store assigned.
void check_completed(std::int64_t checkpoint, const LostRange* ranges, std::size_t n_ranges,
                     bool know_assigned, std::int64_t last_assigned);

}  // namespace everest
