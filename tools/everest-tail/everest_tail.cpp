// everest-tail: a subscriber for an everest event store (DESIGN.md sections 2, 4, 5, 9 and 10).
//
//   everest-tail --handler NAME [--source '$all'|STREAM|'$ce-CATEGORY'] [--batch 500]
//                [--poll-ms 1000] [--apply SQL] [--from-start] [--once] [--quiet]
//                [--wake listen|wait] [--lease table|session] [--lease-ttl 30]
//                [--read-from READER_CONNINFO] [--members N] [--types A,B]
//                [--max-attempts N] [CONNINFO]
//
// It follows one handler's checkpoint: every event of SOURCE after the handler's position is
// printed to stdout as one JSON line
//
//   {"stream":"account-42","version":3,"position":17,"id":"...","type":"Deposited",
//    "data":{"amount":10},"metadata":null,"created_at":"2026-01-02T03:04:05.678901Z"}
//
// and, with --apply SQL, passed to that SQL statement as $1 (the same JSON object, as text; cast
// it as you like: ($1::jsonb)->>'stream'). The statement runs in the transaction that saves the
// checkpoint, so its effects are applied exactly once; stdout is at-least-once (a batch is
// printed and flushed before its transaction commits, so a crash between the two prints that
// batch again).
//
// The protocol, which any client in any language can follow, works on a direct connection and
// through a transaction pooler (PgBouncer pool_mode = transaction): no named prepared statement
// and no session state outlives a transaction, apart from LISTEN with --wake listen.
//   1. connect; SELECT * FROM everest.acquire_lease(NAME, TTL, member => 0) until it returns a
//      row (member, lease token), logging "waiting for the lease"; renew it (renew_lease) every
//      TTL/3. When renew_lease returns false, or a save fails with EV005, the lease is lost: roll
//      back, stop applying, acquire it again. After a reconnect the token is renewed, not
//      re-acquired. (--members: a lease per member, see below.)
//   2. --wake listen: LISTEN everest (on a hot standby, where LISTEN fails with 25006, it
//      switches to --wake wait).
//   3. repeat: BEGIN ISOLATION LEVEL READ COMMITTED; (--wake wait: SELECT safe_position());
//      read_handler_events(NAME, SOURCE, BATCH); apply each event;
//      save_handler_position(NAME, last position, member => M, lease => TOKEN); COMMIT. (With
//      --members or --types the read names member => M and types => ARRAY[...], and the save
//      may go past the last event: see "Filtered reads"; with --max-attempts the batch's first
//      event is noted before the BEGIN.) When a batch is empty, wait: for a notification on
//      channel "everest" or --poll-ms, whichever
//      comes first (listen), or with SELECT everest.wait_for_position(that safe_position,
//      --poll-ms) (wait). Notifications are wake-ups only; the read is the truth.
//   EV004 from the save means another process moved the checkpoint: roll back and read again.
//   A lost connection is logged and retried with exponential backoff (100 ms doubling to 5 s,
//   back to 100 ms after a successful round), resuming from the stored checkpoint. On exit the
//   lease is released (release_lease), so that another process takes over at once.
//   --lease session (and servers before everest 0.4.0, which have no acquire_lease) use the
//   session lease instead: try_acquire_handler, which ends with the session; for direct
//   connections only.
//
// With --read-from READER_CONNINFO (a hot standby or a mirror; everest 0.5.0 on both) the events
// are read there and everything else stays on CONNINFO, the primary: leases, --from-start,
// --apply, saves and COMMIT. The reader gets single autocommit statements, no prepared statement
// and no session state. Step 3 becomes: BEGIN ISOLATION LEVEL READ COMMITTED (primary);
// cp = SELECT everest.handler_position(NAME, M) (primary, in that transaction); SELECT
// everest.safe_position() and SELECT * FROM everest.read_handler_events(NAME, SOURCE, BATCH,
// member => M, after => cp) (reader); apply each event (primary);
// save_handler_position(NAME, last position, member => M, lease => TOKEN, expected_position =>
// cp) (primary; no lease with --lease session); COMMIT. The save's expected_position is what
// keeps each event applied once: a read with `after` records nothing for the save to check, so
// without it two runners (or a runner and a rewind) could both apply a batch. EV004 from it
// means the checkpoint moved since cp: roll back, read again. After an empty batch it waits with
// SELECT everest.wait_for_position(the larger of cp and that safe_position, --poll-ms) on the
// reader, whatever --wake says (LISTEN cannot work on a standby). A reader that lags, or whose
// replay is paused, only delays: it returns fewer events, never an error (--once stops at the
// first empty read on the reader). A lost reader connection is handled like a lost primary one:
// both are closed and opened again, with backoff.
//
// --members N: the handler is a consumer group (docs/groups.md), shared by every process started
// with --members on it. A handler without a checkpoint row yet (no row in
// everest.handler_status) becomes a group of N members (SELECT everest.resize_handler(NAME, N),
// logged) when N > 1; any other is run as it is, with a warning when its size is not N:
// resizing a running group is an operator's act (SELECT everest.resize_handler(NAME, n) in
// psql). Sharing, as docs/groups.md "Sharing a group between processes" says: the process
// takes one free member (acquire_lease(NAME, TTL), member NULL: the lowest free one), and after
// each pass over the members it holds tries to take one more, at most once per --poll-ms, until
// none is free; so processes started within a --poll-ms of each other share the group evenly
// (two processes on four members hold two each), and one that starts once every member is held
// waits ("waiting for the lease", retrying every --poll-ms) until a process exits (its leases
// are released) or dies (its leases expire after --lease-ttl), and takes those members over.
// Each member held runs in its own transactions: a round of step 3 with member => M, its own
// lease and its own checkpoint; its lease is renewed every TTL/3. A member whose lease is lost
// (renew_lease false, EV005 from a save) is dropped: rolled back, forgotten, logged; the process
// goes on with the others, and acquires members again after its passes. A resize ends every
// lease of the group, so the processes drop all their members (a member that is no longer in
// the group gets 22023 from its read, and renew_lease false) and acquire members of the new
// size: this is how a running group follows a resize, with no event applied twice or skipped
// (the floors of docs/groups.md). On exit every lease it holds is released. Without --members a
// process runs member 0 of the handler (a group of one, unless an operator resized it), with
// acquire_lease(NAME, TTL, member => 0).
//
// Filtered reads (--types, or a member of a group of more than one) move the checkpoint past
// the events the reader does not take, without reading them again (docs/groups.md, "A filtered
// reader moves its checkpoint"): in the batch's transaction it reads cp =
// handler_position(NAME, M) and sp = safe_position() (on the reader with --read-from) before
// read_handler_events(..., member => M, types => ARRAY[...]); when the batch came back with
// fewer than --batch events it read everything of its filter up to sp, so the save goes to
// max(last position, sp), and with no event at all to sp when sp > cp (in the same transaction,
// with the same checks: EV004, EV005). A batch that came back full saves its last event.
//
// --max-attempts N (0, the default, is off: a failing --apply stops the process with status 1).
// Attempts are counted with everest.note_attempt, which commits on its own, so that a process
// that crashes (or is killed, or hangs past its lease) on an event still counts: before each
// batch, in autocommit on the primary, with no transaction open, the process reads its member's
// next event (read_handler_events(..., 1), the same filters; on the reader after the checkpoint
// with --read-from) and calls note_attempt(NAME, that position, M). Then it runs the batch
// (BEGIN, read, apply, save, COMMIT); a batch that does not start at the event noted (the
// checkpoint moved, or events arrived after an empty look) is rolled back and noted again. The
// count is that of the batch's first event, and goes back to 1 at another position:
//   - count 1: a batch of --batch events. An --apply error rolls it back, is remembered (the
//     position and message) and is retried: it no longer stops the process.
//   - count above 1 (a batch from there did not commit: an --apply error, a crash, a lost
//     lease or connection): one event per transaction, up to the failing event when this
//     process saw its error, else up to the last event such a batch could have held (read
//     once: read_handler_events(..., --batch)), so that each count is the event's own.
//   - past N tries of an event: it is parked, in one transaction: the checkpoint is saved up to
//     the position before it when it lies further back (park_event wants the member's next
//     event, whatever the types or source), then park_event(NAME, position, reason, member =>
//     M, lease => TOKEN), logged, and the next events follow. The reason is the last --apply
//     error message (e.g. "22012: division by zero"), or after a crash, which leaves none,
//     "attempted N times without completing (crashed or timed out)". An event's tries are its
//     count, plus the failed batch that started at an earlier event when this process saw the
//     event fail in it (so an --apply error parks after exactly N tries); after a crash inside
//     a batch that started earlier that batch is counted against its first event, so the event
//     may be tried N + 1 times. An event is parked only when its count is 3 or more or this
//     process saw its own --apply error: a count of 2 may be a batch that started at it and
//     failed at a later event, so with N = 1 an event is not parked on that alone (after a
//     crash it is tried alone once more).
// Every try counts, transient errors (lock timeouts, deadlocks) too, so leave room for them.
// parked_events lists what was parked; unpark_event removes the record, and replaying it is the
// application's: SELECT * FROM everest.read_event('$all', position).
//
// Options:
//   --handler NAME   the handler whose checkpoint is followed (required)
//   --source S       '$all' (default), a stream name, or '$ce-<category>'
//   --batch N        events per transaction (default 500)
//   --poll-ms N      polling fallback interval, wait_for_position timeout and lease retry
//                    interval (default 1000)
//   --apply SQL      one SQL statement run for each event with $1 = the event's JSON text
//   --from-start     rewind the handler to 0 (everest.reset_handler) once, after taking the lease
//   --once           stop with status 0 when caught up (the first empty read)
//   --quiet          do not print events to stdout
//   --wake W         listen (default: LISTEN everest) or wait (everest.wait_for_position; for
//                    transaction poolers and hot standbys, where notifications do not arrive)
//   --lease L        table (default: acquire_lease) or session (try_acquire_handler)
//   --lease-ttl S    the table lease's time to live in seconds (default 30); a batch must take
//                    less, and another process takes over this long after a crash
//   --read-from R    read the events on R (a libpq connection string or URI: a hot standby or a
//                    mirror) instead of CONNINFO; checkpoints, leases and --apply stay on
//                    CONNINFO; waits with wait_for_position on R (implies --wake wait)
//   --members N      run the handler as a consumer group, shared with the other processes
//                    started so: made a group of N when it has no checkpoint yet, else run as
//                    it is; takes one free member, then one more per --poll-ms while any is
//                    free; follows resizes (everest 0.5.0; table lease only)
//   --types A,B      only events of these types (comma-separated); the checkpoint still moves
//                    past the others (everest 0.5.0)
//   --max-attempts N park an event (park_event) once N tries did not commit, counted with
//                    note_attempt so that crashes count too; an --apply error is retried
//                    instead of stopping the process (default 0: off; everest 0.5.0)
//   CONNINFO         a libpq connection string or URI; PGHOST, PGPORT, PGUSER, ... apply
//
// Exit status: 0 when stopped by SIGINT/SIGTERM (the transaction in progress is finished first;
// a second signal cancels it instead) or by --once; 1 on an error that retrying cannot fix (a
// bad --apply statement or, without --max-attempts, one that fails with a non-transient error,
// a missing extension, a
// closed stdout); 2 on a usage error. Transient errors (serialization failures, deadlocks, lock
// timeouts, lost connections, a server restarting) are retried with backoff.

#include <libpq-fe.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <climits>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/time.h>
#include <unistd.h>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kBackoffMinMs = 100;
constexpr int kBackoffMaxMs = 5000;
constexpr int kConnectTimeoutMs = 10000;
constexpr int kLeaseLogEveryMs = 60000;

struct Options {
	std::string handler;
	std::string source = "$all";
	int batch = 500;
	int poll_ms = 1000;
	std::string apply;
	bool has_apply = false;
	bool from_start = false;
	bool once = false;
	bool quiet = false;
	bool wake_wait = false;		// --wake wait
	bool session_lease = false;	// --lease session
	int lease_ttl_s = 30;
	std::string conninfo;
	bool has_read_from = false;	// --read-from
	std::string read_from;
	bool has_members = false;	// --members
	int members = 1;
	bool has_types = false;	// --types, as given: comma-separated
	std::string types;
	int max_attempts = 0;	// --max-attempts (0: off)
};

// ------------------------------------------------------------------------------------------
// Signals: a counter, a self-pipe that wakes every wait, and a cancel handle for the second one
// ------------------------------------------------------------------------------------------

volatile sig_atomic_t g_signals = 0;
int g_wake_pipe[2] = {-1, -1};
PGcancel *volatile g_cancel = nullptr;	// read by the handler; swapped with signals blocked

extern "C" void on_signal(int)
{
	int saved_errno = errno;
	if (g_signals < 100)
		g_signals = g_signals + 1;
	if (g_wake_pipe[1] >= 0) {
		char c = 1;
		ssize_t ignored = write(g_wake_pipe[1], &c, 1);
		(void) ignored;
	}
	if (g_signals >= 2) {
		PGcancel *cancel = g_cancel;
		if (cancel != nullptr) {
			char errbuf[256];
			PQcancel(cancel, errbuf, sizeof errbuf);	// documented as signal-safe
		}
	}
	errno = saved_errno;
}

bool stopping() { return g_signals > 0; }

void drain_wake_pipe()
{
	char buf[64];
	while (read(g_wake_pipe[0], buf, sizeof buf) > 0) {
	}
}

class SignalBlock {
public:
	SignalBlock()
	{
		sigset_t set;
		sigemptyset(&set);
		sigaddset(&set, SIGINT);
		sigaddset(&set, SIGTERM);
		sigprocmask(SIG_BLOCK, &set, &old_);
	}
	~SignalBlock() { sigprocmask(SIG_SETMASK, &old_, nullptr); }
	SignalBlock(const SignalBlock &) = delete;
	SignalBlock &operator=(const SignalBlock &) = delete;

private:
	sigset_t old_;
};

void set_cancel(PGconn *conn)
{
	PGcancel *fresh = conn != nullptr ? PQgetCancel(conn) : nullptr;
	PGcancel *old;
	{
		SignalBlock block;
		old = g_cancel;
		g_cancel = fresh;
	}
	if (old != nullptr)
		PQfreeCancel(old);
}

// ------------------------------------------------------------------------------------------
// Logging (stderr, one line each)
// ------------------------------------------------------------------------------------------

std::string g_log_prefix = "everest-tail";

void logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void logf(const char *fmt, ...)
{
	char when[40];
	struct timeval tv;
	gettimeofday(&tv, nullptr);
	struct tm tm;
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof when - n, ".%03dZ", static_cast<int>(tv.tv_usec / 1000));

	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s %s: %s\n", when, g_log_prefix.c_str(), msg);
	fflush(stderr);
}

// libpq messages end with a newline and may span several lines: one line for the log.
std::string one_line(const char *s)
{
	std::string out;
	for (const char *p = s != nullptr ? s : ""; *p != '\0'; p++) {
		bool space = *p == '\n' || *p == '\t' || *p == '\r' || *p == ' ';
		if (!space)
			out += *p;
		else if (!out.empty() && out.back() != ' ')
			out += ' ';
	}
	while (!out.empty() && out.back() == ' ')
		out.pop_back();
	return out.empty() ? "(no message)" : out;
}

// Server notices and libpq's own warnings (e.g. "terminating connection due to administrator
// command") go to the log instead of raw stderr.
extern "C" void on_notice(void *, const char *message)
{
	logf("server: %s", one_line(message).c_str());
}

// ------------------------------------------------------------------------------------------
// JSON
// ------------------------------------------------------------------------------------------

void json_string(std::string &out, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	out += '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = static_cast<unsigned char>(s[i]);
		switch (c) {
		case '"': out += "\\\""; break;
		case '\\': out += "\\\\"; break;
		case '\n': out += "\\n"; break;
		case '\r': out += "\\r"; break;
		case '\t': out += "\\t"; break;
		case '\b': out += "\\b"; break;
		case '\f': out += "\\f"; break;
		default:
			if (c < 0x20) {
				out += "\\u00";
				out += hex[c >> 4];
				out += hex[c & 0xf];
			} else {
				out += static_cast<char>(c);	// UTF-8 passes through (client_encoding=UTF8)
			}
		}
	}
	out += '"';
}

// Columns of the read query, in order.
enum Column { kStream, kVersion, kPosition, kId, kType, kData, kMetadata, kCreatedAt, kColumns };

// One row as a JSON object. Numbers come from the server as decimal text and jsonb as JSON
// text: both are embedded as they are; text columns are escaped.
void event_json(std::string &out, const PGresult *res, int row)
{
	auto text = [&](const char *key, int col) {
		out += key;
		if (PQgetisnull(res, row, col))
			out += "null";
		else
			json_string(out, PQgetvalue(res, row, col), static_cast<size_t>(PQgetlength(res, row, col)));
	};
	auto raw = [&](const char *key, int col) {
		out += key;
		if (PQgetisnull(res, row, col))
			out += "null";
		else
			out.append(PQgetvalue(res, row, col), static_cast<size_t>(PQgetlength(res, row, col)));
	};
	out += '{';
	text("\"stream\":", kStream);
	raw(",\"version\":", kVersion);
	raw(",\"position\":", kPosition);
	text(",\"id\":", kId);
	text(",\"type\":", kType);
	raw(",\"data\":", kData);
	raw(",\"metadata\":", kMetadata);
	text(",\"created_at\":", kCreatedAt);
	out += '}';
}

// ------------------------------------------------------------------------------------------
// libpq plumbing
// ------------------------------------------------------------------------------------------

struct ResultDeleter {
	void operator()(PGresult *r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// What to do after a failed statement.
enum class Outcome {
	Ok,
	Lost,	// the connection is gone or unusable: reconnect with backoff
	Retry,	// a transient error: roll back, back off, try again on this connection
	Moved,	// EV004: another process moved the checkpoint; roll back and read again
	Fatal,	// retrying cannot help: stop with status 1
	Stop,	// a signal asked us to stop
	Done,	// --once and caught up
	LeaseLost,	// renew_lease said false or a save failed with EV005: drop the member, acquire again
	Again,	// --max-attempts: the batch did not start at the event noted; note again (rolled back)
	ApplyFailed,	// --max-attempts: --apply failed (rolled back); tried again, then parked
};

bool starts_with(const std::string &s, const char *prefix) { return s.compare(0, strlen(prefix), prefix) == 0; }

Outcome classify(PGconn *conn, const PGresult *res)
{
	if (PQstatus(conn) != CONNECTION_OK)
		return Outcome::Lost;
	const char *state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
	if (state == nullptr)
		return Outcome::Lost;	// a client-side failure: start over on a new connection
	std::string s = state;
	if (s == "EV004")
		return Outcome::Moved;
	if (s == "EV005")
		return Outcome::LeaseLost;
	if (s == "08P01")
		return Outcome::Fatal;	// a protocol violation would only happen again
	if (starts_with(s, "08") || s == "57P01" || s == "57P02" || s == "57P03" || s == "25P03")
		return Outcome::Lost;	// connection exceptions, shutdowns, idle timeouts
	if (starts_with(s, "40") || starts_with(s, "53") || s == "55P03" || s == "57014" || s == "58000" ||
	    s == "58030")
		return Outcome::Retry;	// serialization, deadlock, resources, lock timeout, cancel, I/O
	return Outcome::Fatal;
}

std::string error_text(PGconn *conn, const PGresult *res)
{
	std::string msg;
	const char *state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
	const char *primary = res != nullptr ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
	if (state != nullptr && primary != nullptr) {
		msg = std::string(state) + ": " + one_line(primary);
		if (const char *detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL))
			msg += " (" + one_line(detail) + ")";
	} else if (res != nullptr && *PQresultErrorMessage(res) != '\0') {
		msg = one_line(PQresultErrorMessage(res));
	} else {
		msg = one_line(PQerrorMessage(conn));
	}
	return msg;
}

class Backoff {
public:
	int next()
	{
		int ms = ms_;
		ms_ = ms_ * 2 > kBackoffMaxMs ? kBackoffMaxMs : ms_ * 2;
		return ms;
	}
	void reset() { ms_ = kBackoffMinMs; }

private:
	int ms_ = kBackoffMinMs;
};

// Sleeps, waking early for a signal. Returns false when asked to stop.
bool sleep_ms(int ms)
{
	auto deadline = Clock::now() + std::chrono::milliseconds(ms);
	while (!stopping()) {
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
		if (left <= 0)
			return true;
		struct pollfd pfd = {g_wake_pipe[0], POLLIN, 0};
		if (poll(&pfd, 1, static_cast<int>(left)) > 0)
			drain_wake_pipe();
	}
	return false;
}

// Connects with PQconnectStart + PQconnectPoll, so that a signal interrupts it, within 10 s.
// CONNINFO (expanded from "dbname") overrides the fallback application name; the client encoding
// is always UTF8, as the JSON output is.
PGconn *connect(const std::string &conninfo, std::string &error)
{
	const char *keys[] = {"fallback_application_name", "dbname", "client_encoding", nullptr};
	const char *values[] = {"everest-tail", conninfo.c_str(), "UTF8", nullptr};	// "" is ignored
	PGconn *conn = PQconnectStartParams(keys, values, 1);
	if (conn == nullptr) {
		error = "out of memory";
		return nullptr;
	}
	auto deadline = Clock::now() + std::chrono::milliseconds(kConnectTimeoutMs);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;
	while (PQstatus(conn) != CONNECTION_BAD) {
		if (st == PGRES_POLLING_OK)
			break;
		if (st == PGRES_POLLING_FAILED)
			break;
		if (stopping()) {
			PQfinish(conn);
			error = "interrupted";
			return nullptr;
		}
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
		if (left <= 0) {
			PQfinish(conn);
			error = "timeout expired while connecting";
			return nullptr;
		}
		struct pollfd pfd[2] = {{PQsocket(conn), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0},
		                        {g_wake_pipe[0], POLLIN, 0}};
		int rc = poll(pfd, 2, static_cast<int>(left));
		if (rc < 0 && errno != EINTR) {
			error = std::string("poll: ") + strerror(errno);
			PQfinish(conn);
			return nullptr;
		}
		if (rc > 0 && (pfd[1].revents & POLLIN))
			drain_wake_pipe();
		if (rc > 0 && pfd[0].revents != 0)
			st = PQconnectPoll(conn);
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		error = one_line(PQerrorMessage(conn));
		PQfinish(conn);
		return nullptr;
	}
	PQsetNoticeProcessor(conn, on_notice, nullptr);
	return conn;
}

// ------------------------------------------------------------------------------------------
// One connection's life
// ------------------------------------------------------------------------------------------
// Every statement goes out with PQexecParams (the unnamed statement, parsed, bound and run in
// one go), so that nothing but LISTEN outlives a transaction: through a transaction pooler the
// next statement may run on another server connection.
const char *const kReadSql =
	"SELECT stream, version, position, id, type, data, metadata, "
	"pg_catalog.to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
	"FROM everest.read_handler_events($1, $2, $3)";
const char *const kSaveSql = "SELECT everest.save_handler_position($1, $2)";
const char *const kSaveLeaseSql =
	"SELECT everest.save_handler_position($1, $2, member => $3::integer, lease => $4::uuid)";
// A member's read (everest 0.5.0): --members, --types, --max-attempts and --read-from. $5 is the
// comma-separated --types (NULL: every type); $6 the checkpoint read on the primary (--read-from;
// NULL: the stored one, which the save then checks).
const char *const kReadMemberSql =
	"SELECT stream, version, position, id, type, data, metadata, "
	"pg_catalog.to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
	"FROM everest.read_handler_events($1, $2, $3, member => $4::integer, "
	"types => pg_catalog.string_to_array($5, ','), after => $6::bigint)";
const Oid kReadMemberTypes[] = {25, 25, 23, 23, 25, 20};	// text, text, int4, int4, text, int8
// --read-from: the save checks the checkpoint read on the primary (the lease is NULL with
// --lease session); --max-attempts saves up to the event before a parked one with it too.
const char *const kSaveExpectedSql =
	"SELECT everest.save_handler_position($1, $2, member => $3::integer, lease => $4::uuid, "
	"expected_position => $5::bigint)";
const char *const kPositionSql = "SELECT everest.handler_position($1, $2::integer)";
// --max-attempts: the member's next event (autocommit, before the batch), its attempt count,
// the last event a batch from it could have held, and parking.
const char *const kFirstSql =
	"SELECT position FROM everest.read_handler_events($1, $2, 1, member => $3::integer, "
	"types => pg_catalog.string_to_array($4, ','), after => $5::bigint)";
const Oid kFirstTypes[] = {25, 25, 23, 25, 20};
const char *const kSpanSql =
	"SELECT pg_catalog.max(position) FROM everest.read_handler_events($1, $2, $3, member => $4::integer, "
	"types => pg_catalog.string_to_array($5, ','), after => $6::bigint)";
const char *const kNoteSql = "SELECT everest.note_attempt($1, $2::bigint, $3::integer)";
const char *const kParkSql =
	"SELECT everest.park_event($1, $2::bigint, $3, member => $4::integer, lease => $5::uuid)";
const char *const kGroupSizeSql =
	"SELECT pg_catalog.count(*), COALESCE(pg_catalog.max(members), 1) "
	"FROM everest.handler_status WHERE handler = $1";

// --wake listen with --read-from is logged once per process, not at every reconnect.
bool g_logged_reader_wake = false;

long long to_ll(const char *s) { return strtoll(s, nullptr, 10); }
long long to_ll(const std::string &s) { return to_ll(s.c_str()); }

// A group member this process runs. What outlives a connection: the members held (their table
// leases are renewed after a reconnect instead of taken again, and what --max-attempts
// remembers), and --from-start's pending reset.
struct Member {
	std::string member = "0";	// the member's number, as text
	std::string token;	// its table lease (empty with --lease session)
	Clock::time_point renewed;
	std::string last_safe = "0";	// safe_position() before its last read (the wait after it)
	std::string last_cp = "0";	// the checkpoint its last read started after (--read-from)
	// --max-attempts: one event per transaction up to position single_until; the position and
	// message of its last --apply error; bonus_at: a position whose failed try was counted
	// against the first event of a longer batch (so it counts once more).
	long long single_until = 0;
	long long failed_at = 0;
	std::string failure;
	long long bonus_at = 0;
};

struct Held {
	std::vector<Member> members;	// without --members: at most member 0
	int group_size = 1;	// --members: the group's size when a member was last taken
	bool group_checked = false;	// --members: the group was looked at (and made) once
	Clock::time_point last_try;	// --members: when it last tried to take one more member
};

class Session {
public:
	Session(const Options &opt, PGconn *conn, PGconn *reader, Backoff &backoff, bool &reset_pending, Held &held)
		: opt_(opt), conn_(conn), reader_(reader), backoff_(backoff), reset_pending_(reset_pending), held_(held)
	{
	}

	// Runs until the connection is lost, an error stops us, a signal arrives or --once is done.
	// On return, why() says what went wrong (for Lost and Fatal).
	Outcome run()
	{
		Outcome o = check_server();
		if (o != Outcome::Ok)
			return o;
		o = check_reader();
		if (o != Outcome::Ok)
			return o;
		if (opt_.has_members && !held_.group_checked) {
			o = setup_group();
			if (o != Outcome::Ok)
				return o;
		}
		o = keep_or_take();
		if (o != Outcome::Ok)
			return o;
		if (reset_pending_) {
			Result r(exec_params("SELECT everest.reset_handler($1, 0)", {opt_.handler.c_str()}));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return failed("reset_handler", r.get());
			reset_pending_ = false;
			logf("--from-start: handler rewound to position 0");
		}
		if (reader_ != nullptr) {
			if (!wake_wait_ && !g_logged_reader_wake)
				logf("--read-from: LISTEN cannot wake a reader on a hot standby; waking with "
				     "wait_for_position on the reader");
			g_logged_reader_wake = true;
			wake_wait_ = true;
		} else if (!wake_wait_) {
			Result listen(PQexec(conn_, "LISTEN everest"));
			if (PQresultStatus(listen.get()) != PGRES_COMMAND_OK) {
				const char *state = PQresultErrorField(listen.get(), PG_DIAG_SQLSTATE);
				if (state == nullptr || strcmp(state, "25006") != 0 || !has_wait_)
					return failed("LISTEN everest", listen.get());
				logf("LISTEN is not available here (25006: a hot standby?); waking with wait_for_position");
				wake_wait_ = true;
			}
		}
		if (!opt_.has_members) {
			Result pos(exec_params("SELECT everest.handler_position($1)", {opt_.handler.c_str()}));
			if (PQresultStatus(pos.get()) != PGRES_TUPLES_OK)
				return failed("handler_position", pos.get());
			logf("reading %s after position %s", opt_.source.c_str(), PQgetvalue(pos.get(), 0, 0));
		}

		// Passes: a round (one transaction) for each member held, then perhaps one more member,
		// then, when every round was empty, a wait.
		for (;;) {
			if (stopping())
				return Outcome::Stop;
			if (held_.members.empty()) {
				o = take_first();
				if (o != Outcome::Ok)
					return o;
				continue;
			}
			o = drain_notifications();
			if (o != Outcome::Ok)
				return o;
			bool all_empty = true;
			size_t i = 0;
			while (i < held_.members.size()) {
				if (stopping())
					return Outcome::Stop;
				bool empty = false;
				o = renew_due();	// may drop members whose lease is gone
				if (o == Outcome::Ok) {
					if (i >= held_.members.size())
						break;
					Member &m = held_.members[i];
					o = round(m, empty);
					if (o == Outcome::Fatal)
						o = gone_from_group(m, o);
					if (o == Outcome::LeaseLost) {
						lost(m, why_);
						held_.members.erase(held_.members.begin() + static_cast<long>(i));
						continue;
					}
				}
				const std::string who = i < held_.members.size() ? prefix(held_.members[i]) : "";
				i++;
				if (o == Outcome::Ok) {
					backoff_.reset();
					if (!empty)
						all_empty = false;
					continue;
				}
				all_empty = false;
				switch (o) {
				case Outcome::Again:	// the batch did not start at the event noted: note again
					break;
				case Outcome::Moved:
					logf("%sthe checkpoint was moved by another process (EV004): rolled back, reading again",
					     who.c_str());
					break;
				case Outcome::ApplyFailed:
					logf("%s%s; rolled back, trying again (--max-attempts %d)", who.c_str(), why_.c_str(),
					     opt_.max_attempts);
					break;
				default:
					o = retry_later(o);
					if (o != Outcome::Ok)
						return o;
				}
			}
			if (stopping())
				return Outcome::Stop;
			bool taken = false;
			o = retry_later(try_take_more(taken));
			if (o != Outcome::Ok)
				return o;
			if (held_.members.empty() || taken || !all_empty)
				continue;
			if (opt_.once)
				return Outcome::Done;
			o = retry_later(wait_for_news());
			if (o != Outcome::Ok)
				return o;
		}
	}

	// After run() ended with Stop, Done or Fatal: gives the table leases back, so that other
	// processes take over at once (best effort: a lease that is not released expires).
	void release()
	{
		if (PQstatus(conn_) != CONNECTION_OK)
			return;
		for (const Member &m : held_.members) {
			if (m.token.empty())
				continue;
			Result r(exec_params("SELECT everest.release_lease($1, $2::uuid)", {opt_.handler.c_str(), m.token.c_str()}));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				continue;
			if (opt_.has_members)
				logf("lease on handler \"%s\" member %s released", opt_.handler.c_str(), m.member.c_str());
			else
				logf("lease on handler \"%s\" released", opt_.handler.c_str());
		}
		held_.members.clear();
	}

	const std::string &why() const { return why_; }

private:
	const Options &opt_;
	PGconn *conn_;
	PGconn *reader_;	// --read-from, else nullptr
	Backoff &backoff_;
	bool &reset_pending_;
	Held &held_;
	std::string why_;
	std::string last_state_;	// the SQLSTATE of the last failure ("" when none)
	std::string out_;
	bool table_lease_ = false;
	bool has_wait_ = false;
	bool wake_wait_ = false;
	std::vector<Oid> apply_types_;

	PGresult *exec_params(const char *sql, std::initializer_list<const char *> params)
	{
		std::vector<const char *> values(params);
		return PQexecParams(conn_, sql, static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0);
	}

	Outcome failed(const char *what, const PGresult *res) { return failed_on(conn_, what, res); }

	// A failure on `conn` (the primary or the reader): a lost reader is Lost too, and the main
	// loop then opens both connections again.
	Outcome failed_on(PGconn *conn, const char *what, const PGresult *res)
	{
		why_ = std::string(what) + (conn == reader_ && reader_ != nullptr ? " (reader)" : "") + ": " +
		       error_text(conn, res);
		const char *state = res != nullptr ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
		last_state_ = state != nullptr ? state : "";
		return classify(conn, res);
	}

	// A transient error (after its transaction was rolled back) is logged and retried after a
	// backoff: Ok. Anything else ends run() with it (Stop for a signal during the backoff).
	Outcome retry_later(Outcome o)
	{
		if (o != Outcome::Retry)
			return o;
		int ms = backoff_.next();
		logf("%s; rolled back, retrying in %d ms", why_.c_str(), ms);
		return sleep_ms(ms) ? Outcome::Ok : Outcome::Stop;
	}

	// "member 2: " in the log of a process that runs a group (--members), "" otherwise.
	std::string prefix(const Member &m) const { return opt_.has_members ? "member " + m.member + ": " : ""; }

	const char *types_param() const { return opt_.has_types ? opt_.types.c_str() : nullptr; }

	// Reads that name the member, the types or `after` (everest 0.5.0); without --members,
	// --types, --max-attempts and --read-from the read is the one of every version.
	bool member_reads() const
	{
		return opt_.has_members || opt_.has_types || opt_.max_attempts > 0 || reader_ != nullptr;
	}

	// A filtered read (types, or a member of a group of more than one) moves its checkpoint
	// past the events it does not take: docs/groups.md, "A filtered reader moves its checkpoint".
	bool skips_ahead() const { return opt_.has_types || (opt_.has_members && held_.group_size > 1); }

	// --read-from: the reader reads with `after` and waits (everest 0.5.0), and the primary
	// saves with expected_position. A reader without them cannot be used: stop (status 1).
	Outcome check_reader()
	{
		if (reader_ == nullptr)
			return Outcome::Ok;
		Result r(PQexec(reader_,
		                "SELECT pg_catalog.to_regprocedure("
		                "'everest.read_handler_events(text,text,integer,integer,text[],bigint)') IS NOT NULL "
		                "AND pg_catalog.to_regprocedure('everest.wait_for_position(bigint,integer)') IS NOT NULL"));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed_on(reader_, "checking the server", r.get());
		if (strcmp(PQgetvalue(r.get(), 0, 0), "t") != 0) {
			why_ = "--read-from: the reader's database has no everest.read_handler_events(..., after) "
			       "(everest 0.5.0 or later is needed there)";
			return Outcome::Fatal;
		}
		r.reset(PQexec(conn_,
		               "SELECT pg_catalog.to_regprocedure("
		               "'everest.save_handler_position(text,bigint,integer,uuid,bigint)') IS NOT NULL "
		               "AND pg_catalog.to_regprocedure('everest.handler_position(text,integer)') IS NOT NULL"));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed("checking the server", r.get());
		if (strcmp(PQgetvalue(r.get(), 0, 0), "t") != 0) {
			why_ = "--read-from: the primary's everest has no save_handler_position(..., expected_position) "
			       "(everest 0.5.0 or later is needed)";
			return Outcome::Fatal;
		}
		has_wait_ = true;
		return Outcome::Ok;
	}

	// What the server has (acquire_lease and wait_for_position came with everest 0.4.0; groups,
	// types and attempt counts with 0.5.0), and the --apply statement checked before taking the
	// lease: parsed as the unnamed statement (nothing is left behind), which also tells the type
	// of $1.
	Outcome check_server()
	{
		Result r(PQexec(conn_,
		                "SELECT pg_catalog.to_regprocedure('everest.acquire_lease(text,interval,integer)') IS NOT NULL, "
		                "pg_catalog.to_regprocedure('everest.wait_for_position(bigint,integer)') IS NOT NULL, "
		                "pg_catalog.to_regprocedure('everest.note_attempt(text,bigint,integer)') IS NOT NULL "
		                "AND pg_catalog.to_regprocedure("
		                "'everest.read_handler_events(text,text,integer,integer,text[],bigint)') IS NOT NULL"));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed("checking the server", r.get());
		bool has_lease = strcmp(PQgetvalue(r.get(), 0, 0), "t") == 0;
		has_wait_ = strcmp(PQgetvalue(r.get(), 0, 1), "t") == 0;
		bool has_groups = strcmp(PQgetvalue(r.get(), 0, 2), "t") == 0;
		if (!has_groups && (opt_.has_members || opt_.has_types || opt_.max_attempts > 0)) {
			why_ = "--members, --types and --max-attempts need everest 0.5.0 or later "
			       "(ALTER EXTENSION everest UPDATE)";
			return Outcome::Fatal;
		}
		table_lease_ = has_lease && !opt_.session_lease;
		if (!has_lease && !opt_.session_lease)
			logf("everest.acquire_lease is not available (everest before 0.4.0): using the session lease "
			     "(try_acquire_handler), which works on direct connections only");
		wake_wait_ = opt_.wake_wait;
		if (wake_wait_ && !has_wait_)
			logf("everest.wait_for_position is not available (everest before 0.4.0): polling every %d ms",
			     opt_.poll_ms);
		if (opt_.has_apply && apply_types_.empty()) {
			// $1's type comes from the statement ($1::jsonb, ...); text when it does not say
			// (the server then answers 42P18, also when the statement does not use $1).
			const Oid unspecified[] = {0};
			r.reset(PQprepare(conn_, "", opt_.apply.c_str(), 1, unspecified));
			const char *state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
			Oid type = 0;
			if (PQresultStatus(r.get()) != PGRES_COMMAND_OK && state != nullptr && strcmp(state, "42P18") == 0) {
				type = 25;
				const Oid text_type[] = {25};
				r.reset(PQprepare(conn_, "", opt_.apply.c_str(), 1, text_type));
			}
			if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
				return failed("--apply statement", r.get());
			apply_types_.assign(1, type);
		}
		return Outcome::Ok;
	}

	// --members N, once per process: a handler without a checkpoint row becomes a group of N
	// (resize_handler); any other is run as it is (resizing is an operator's act), with a
	// warning when its size is not N.
	Outcome setup_group()
	{
		Result r(exec_params(kGroupSizeSql, {opt_.handler.c_str()}));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed("reading everest.handler_status", r.get());
		long long rows = to_ll(PQgetvalue(r.get(), 0, 0));
		int size = atoi(PQgetvalue(r.get(), 0, 1));
		if (rows == 0 && opt_.members > 1) {
			std::string n = std::to_string(opt_.members);
			r.reset(exec_params("SELECT everest.resize_handler($1, $2::integer)", {opt_.handler.c_str(), n.c_str()}));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return failed("resize_handler", r.get());
			logf("handler \"%s\" had no checkpoint: made it a group of %d members (resize_handler)",
			     opt_.handler.c_str(), opt_.members);
			size = opt_.members;
		} else if (size != opt_.members) {
			logf("warning: handler \"%s\" is a group of %d members, not %d (--members): running it as it is; "
			     "resizing is an operator's act (SELECT everest.resize_handler('%s', %d))",
			     opt_.handler.c_str(), size, opt_.members, opt_.handler.c_str(), opt_.members);
		}
		held_.group_size = size;
		held_.group_checked = true;
		return Outcome::Ok;
	}

	std::string ttl() const { return std::to_string(opt_.lease_ttl_s) + " seconds"; }
	int renew_every_ms() const { return opt_.lease_ttl_s * 1000 / 3; }

	void lost(const Member &m, const std::string &why)
	{
		if (opt_.has_members)
			logf("lease on handler \"%s\" member %s lost (%s): rolled back, %s", opt_.handler.c_str(),
			     m.member.c_str(), why.c_str(),
			     held_.members.size() > 1 ? "going on with the other members" : "acquiring a member again");
		else
			logf("lease on handler \"%s\" lost (%s): stopped applying, acquiring it again", opt_.handler.c_str(),
			     why.c_str());
	}

	// At the start of a connection: the table leases held before a reconnect are renewed, not
	// taken again (those that expired meanwhile are forgotten); with none left, or with the
	// session lease, it waits for one.
	Outcome keep_or_take()
	{
		if (!table_lease_) {
			held_.members.clear();	// a session lease ended with its session
			return take_first();
		}
		for (size_t i = 0; i < held_.members.size();) {
			Member &m = held_.members[i];
			std::string t = ttl();
			auto asked = Clock::now();
			Result r(exec_params("SELECT everest.renew_lease($1, $2::uuid, $3::interval)",
			                     {opt_.handler.c_str(), m.token.c_str(), t.c_str()}));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return failed("renew_lease", r.get());
			if (strcmp(PQgetvalue(r.get(), 0, 0), "t") != 0) {
				if (opt_.has_members)
					logf("lease on handler \"%s\" member %s expired meanwhile", opt_.handler.c_str(), m.member.c_str());
				held_.members.erase(held_.members.begin() + static_cast<long>(i));
				continue;
			}
			m.renewed = asked;
			logf("lease on handler \"%s\" kept (member %s)", opt_.handler.c_str(), m.member.c_str());
			i++;
		}
		if (held_.members.empty())
			return take_first();
		return Outcome::Ok;
	}

	// Holding nothing: acquire a member (the lowest free one with --members, member 0 without;
	// the session lease with --lease session) every --poll-ms until one is free.
	Outcome take_first()
	{
		bool waiting = false;
		auto last_log = Clock::now();
		for (;;) {
			bool taken = false;
			Outcome o = acquire(taken);
			if (o != Outcome::Ok)
				return o;
			if (taken)
				return Outcome::Ok;
			if (!waiting || Clock::now() - last_log > std::chrono::milliseconds(kLeaseLogEveryMs)) {
				if (opt_.has_members)
					logf("waiting for the lease: other processes hold every member of handler \"%s\"; "
					     "retrying every %d ms", opt_.handler.c_str(), opt_.poll_ms);
				else
					logf("waiting for the lease: another process runs handler \"%s\"; retrying every %d ms",
					     opt_.handler.c_str(), opt_.poll_ms);
				waiting = true;
				last_log = Clock::now();
			}
			backoff_.reset();	// the connection works
			o = wait_listen(opt_.poll_ms, false);	// a sleep that a signal ends
			if (o != Outcome::Ok)
				return o;
		}
	}

	// --members: after a pass, one more member when one is free, at most once per --poll-ms
	// (without that pause --once), so that processes started together share the group.
	Outcome try_take_more(bool &taken)
	{
		taken = false;
		if (!opt_.has_members || !table_lease_ || static_cast<int>(held_.members.size()) >= held_.group_size)
			return Outcome::Ok;
		if (!opt_.once && Clock::now() - held_.last_try < std::chrono::milliseconds(opt_.poll_ms))
			return Outcome::Ok;
		return acquire(taken);
	}

	// One try at a lease. The table lease: acquire_lease (any free member with --members, else
	// member 0); taken says whether it returned one. The session lease: try_acquire_handler.
	Outcome acquire(bool &taken)
	{
		taken = false;
		held_.last_try = Clock::now();
		if (!table_lease_) {
			Result r(exec_params("SELECT everest.try_acquire_handler($1)", {opt_.handler.c_str()}));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return failed("try_acquire_handler", r.get());
			if (strcmp(PQgetvalue(r.get(), 0, 0), "t") == 0) {
				held_.members.assign(1, Member());
				taken = true;
				logf("lease on handler \"%s\" taken", opt_.handler.c_str());
			}
			return Outcome::Ok;
		}
		std::string t = ttl();
		auto asked = Clock::now();
		Result r(exec_params("SELECT granted_member, lease FROM everest.acquire_lease($1, $2::interval, $3::integer)",
		                     {opt_.handler.c_str(), t.c_str(), opt_.has_members ? nullptr : "0"}));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed("acquire_lease", r.get());
		if (PQntuples(r.get()) != 1)
			return Outcome::Ok;
		Member fresh;
		fresh.member = PQgetvalue(r.get(), 0, 0);
		fresh.token = PQgetvalue(r.get(), 0, 1);
		fresh.renewed = asked;
		taken = true;
		bool replaced = false;	// a member held before whose lease expired: the new one replaces it
		for (Member &m : held_.members)
			if (m.member == fresh.member) {
				m = fresh;
				replaced = true;
			}
		if (!replaced)
			held_.members.push_back(fresh);
		if (!opt_.has_members) {
			logf("lease on handler \"%s\" taken", opt_.handler.c_str());
			return Outcome::Ok;
		}
		// The group's size now: a resize since the last look shows here (it ended every lease).
		r.reset(exec_params(kGroupSizeSql, {opt_.handler.c_str()}));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed("reading everest.handler_status", r.get());
		int size = atoi(PQgetvalue(r.get(), 0, 1));
		if (size != held_.group_size)
			logf("handler \"%s\" is a group of %d members now (it was %d)", opt_.handler.c_str(), size,
			     held_.group_size);
		held_.group_size = size;
		logf("lease on handler \"%s\" member %s taken%s (%zu of its %d members held here)", opt_.handler.c_str(),
		     fresh.member.c_str(), replaced ? " again (its lease had ended)" : "", held_.members.size(), size);
		return Outcome::Ok;
	}

	int ms_until_renewal() const
	{
		if (!table_lease_)
			return INT_MAX;
		int least = INT_MAX;
		for (const Member &m : held_.members) {
			if (m.token.empty())
				continue;
			auto due = m.renewed + std::chrono::milliseconds(renew_every_ms());
			auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()).count();
			int ms = left < 0 ? 0 : static_cast<int>(left);
			if (ms < least)
				least = ms;
		}
		return least;
	}

	// Renews each table lease every TTL/3 (between transactions). A lease that renew_lease says
	// is gone (expired, taken over, ended by a resize) drops its member.
	Outcome renew_due()
	{
		if (!table_lease_)
			return Outcome::Ok;
		for (size_t i = 0; i < held_.members.size();) {
			Member &m = held_.members[i];
			if (m.token.empty() || Clock::now() < m.renewed + std::chrono::milliseconds(renew_every_ms())) {
				i++;
				continue;
			}
			std::string t = ttl();
			auto asked = Clock::now();
			Result r(exec_params("SELECT everest.renew_lease($1, $2::uuid, $3::interval)",
			                     {opt_.handler.c_str(), m.token.c_str(), t.c_str()}));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return failed("renew_lease", r.get());
			if (strcmp(PQgetvalue(r.get(), 0, 0), "t") != 0) {
				lost(m, "renew_lease returned false");
				held_.members.erase(held_.members.begin() + static_cast<long>(i));
				continue;
			}
			m.renewed = asked;
			i++;
		}
		return Outcome::Ok;
	}

	// A member that a resize took out of the group is 22023 for the read, the save or
	// note_attempt: the resize ended its lease too, so renew_lease says false and the member is
	// dropped (LeaseLost). Any other 22023 stays what it was (Fatal).
	Outcome gone_from_group(Member &m, Outcome o)
	{
		if (!opt_.has_members || last_state_ != "22023" || m.token.empty() || PQstatus(conn_) != CONNECTION_OK)
			return o;
		std::string why = why_;
		std::string t = ttl();
		auto asked = Clock::now();
		Result r(exec_params("SELECT everest.renew_lease($1, $2::uuid, $3::interval)",
		                     {opt_.handler.c_str(), m.token.c_str(), t.c_str()}));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK || strcmp(PQgetvalue(r.get(), 0, 0), "t") == 0) {
			if (PQresultStatus(r.get()) == PGRES_TUPLES_OK)
				m.renewed = asked;
			why_ = why;
			return o;
		}
		why_ = why + "; its lease ended (the group was resized)";
		return Outcome::LeaseLost;
	}

	// After a pass whose rounds were all empty: until news, --poll-ms, or a lease's renewal.
	Outcome wait_for_news()
	{
		int ms = opt_.poll_ms;
		int renew = ms_until_renewal();
		if (renew < ms)
			ms = renew;
		if (ms <= 0)
			return Outcome::Ok;
		if (reader_ != nullptr || (wake_wait_ && has_wait_)) {
			// Anything any member did not see wakes it: the least of what they read up to. On
			// the reader, nothing after cp can show before its horizon passes cp (a lagging
			// reader may still be below the checkpoint the primary has).
			long long after = LLONG_MAX;
			for (const Member &m : held_.members) {
				long long seen = to_ll(m.last_safe);
				if (reader_ != nullptr && to_ll(m.last_cp) > seen)
					seen = to_ll(m.last_cp);
				if (seen < after)
					after = seen;
			}
			return wait_position(reader_ != nullptr ? reader_ : conn_, std::to_string(after), ms);
		}
		return wait_listen(ms, true);
	}

	// Throws away the notifications received so far: the reads that follow see their events.
	Outcome drain_notifications()
	{
		if (PQsocket(conn_) < 0 || !PQconsumeInput(conn_)) {
			why_ = "connection lost: " + one_line(PQerrorMessage(conn_));
			return Outcome::Lost;
		}
		while (PGnotify *n = PQnotifies(conn_))
			PQfreemem(n);
		return Outcome::Ok;
	}

	// Waits for the timeout, a signal or the connection's end, and with `notified` for a
	// notification too (Ok = read again); without it notifications are only drained (the wait
	// for a lease).
	Outcome wait_listen(int timeout_ms, bool notified_ends)
	{
		auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
		for (;;) {
			bool notified = false;
			while (PGnotify *n = PQnotifies(conn_)) {
				notified = true;
				PQfreemem(n);
			}
			if (notified && notified_ends)
				return Outcome::Ok;
			if (stopping())
				return Outcome::Stop;
			auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
			if (left <= 0)
				return Outcome::Ok;
			int sock = PQsocket(conn_);
			if (sock < 0 || PQstatus(conn_) != CONNECTION_OK) {
				why_ = "connection lost: " + one_line(PQerrorMessage(conn_));
				return Outcome::Lost;
			}
			struct pollfd pfd[2] = {{sock, POLLIN, 0}, {g_wake_pipe[0], POLLIN, 0}};
			int rc = poll(pfd, 2, static_cast<int>(left));
			if (rc < 0) {
				if (errno == EINTR)
					continue;
				why_ = std::string("poll: ") + strerror(errno);
				return Outcome::Lost;
			}
			if (pfd[1].revents & POLLIN)
				drain_wake_pipe();
			if (pfd[0].revents != 0) {
				if (!PQconsumeInput(conn_) || PQstatus(conn_) != CONNECTION_OK) {
					why_ = "connection lost: " + one_line(PQerrorMessage(conn_));
					return Outcome::Lost;
				}
			}
		}
	}

	// SELECT everest.wait_for_position(after, timeout_ms) on conn (the primary, or the reader
	// with --read-from), sent asynchronously: a signal cancels it (the wait holds a server
	// connection, through a pooler too, for at most timeout_ms). Ok = read again.
	Outcome wait_position(PGconn *conn, const std::string &after, int timeout_ms)
	{
		std::string ms = std::to_string(timeout_ms);
		const char *params[] = {after.c_str(), ms.c_str()};
		const char *where = conn == reader_ ? " (reader)" : "";
		if (!PQsendQueryParams(conn, "SELECT everest.wait_for_position($1, $2)", 2, nullptr, params, nullptr,
		                       nullptr, 0)) {
			why_ = std::string("wait_for_position") + where + ": " + one_line(PQerrorMessage(conn));
			return Outcome::Lost;
		}
		bool cancelled = false;
		Result last;
		for (;;) {
			if (stopping() && !cancelled) {
				char errbuf[256];
				PGcancel *cancel = PQgetCancel(conn);
				if (cancel != nullptr) {
					PQcancel(cancel, errbuf, sizeof errbuf);
					PQfreeCancel(cancel);
				}
				cancelled = true;
			}
			if (!PQconsumeInput(conn)) {
				why_ = std::string("connection lost") + where + ": " + one_line(PQerrorMessage(conn));
				return Outcome::Lost;
			}
			while (!PQisBusy(conn)) {
				PGresult *res = PQgetResult(conn);
				if (res == nullptr) {
					if (stopping())
						return Outcome::Stop;
					if (PQresultStatus(last.get()) != PGRES_TUPLES_OK) {
						Outcome o = failed_on(conn, "wait_for_position", last.get());
						return o == Outcome::Retry && cancelled ? Outcome::Stop : o;
					}
					return Outcome::Ok;
				}
				last.reset(res);
			}
			int sock = PQsocket(conn);
			if (sock < 0) {
				why_ = std::string("connection lost") + where + ": " + one_line(PQerrorMessage(conn));
				return Outcome::Lost;
			}
			struct pollfd pfd[2] = {{sock, POLLIN, 0}, {g_wake_pipe[0], POLLIN, 0}};
			int rc = poll(pfd, 2, -1);
			if (rc < 0 && errno != EINTR) {
				why_ = std::string("poll: ") + strerror(errno);
				return Outcome::Lost;
			}
			if (rc > 0 && (pfd[1].revents & POLLIN))
				drain_wake_pipe();
		}
	}

	// Ends the transaction after a failure; `why` unless the connection went with it.
	Outcome rollback(Outcome why)
	{
		if (PQstatus(conn_) == CONNECTION_OK)
			PQclear(PQexec(conn_, "ROLLBACK"));
		return PQstatus(conn_) == CONNECTION_OK ? why : Outcome::Lost;
	}


	// The save of member m's checkpoint at `to`, in the transaction: with --read-from it checks
	// the checkpoint cp read on the primary (expected_position); with the table lease it names
	// the member's lease.
	Outcome save(const Member &m, const std::string &to, const std::string &cp)
	{
		Result r;
		const char *token = table_lease_ ? m.token.c_str() : nullptr;	// NULL: no lease
		if (reader_ != nullptr) {
			const char *save_params[] = {opt_.handler.c_str(), to.c_str(), m.member.c_str(), token, cp.c_str()};
			const Oid save_types[] = {25, 20, 23, 0, 20};
			r.reset(PQexecParams(conn_, kSaveExpectedSql, 5, save_types, save_params, nullptr, nullptr, 0));
		} else if (table_lease_) {
			const char *save_params[] = {opt_.handler.c_str(), to.c_str(), m.member.c_str(), token};
			const Oid save_types[] = {25, 20, 23, 0};
			r.reset(PQexecParams(conn_, kSaveLeaseSql, 4, save_types, save_params, nullptr, nullptr, 0));
		} else {
			const char *save_params[] = {opt_.handler.c_str(), to.c_str()};
			const Oid save_types[] = {25, 20};
			r.reset(PQexecParams(conn_, kSaveSql, 2, save_types, save_params, nullptr, nullptr, 0));
		}
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed("save_handler_position", r.get());
		return Outcome::Ok;
	}

	// --max-attempts, in autocommit before the batch's transaction: the member's next event (on
	// the reader with --read-from, after the checkpoint read on the primary) and, when there is
	// one, note_attempt for it on the primary, whose count then survives whatever happens to the
	// batch. first = 0 when there is no event. When the count says that a batch from there did
	// not commit and it is not yet going one event at a time, it does so up to the last event
	// such a batch could have held (the one at fault is among them).
	Outcome note_first(Member &m, long long &first, int &tries)
	{
		first = 0;
		tries = 0;
		PGconn *reader = reader_ != nullptr ? reader_ : conn_;
		std::string cp;
		if (reader_ != nullptr) {
			Result r(exec_params(kPositionSql, {opt_.handler.c_str(), m.member.c_str()}));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return failed("handler_position", r.get());
			cp = PQgetvalue(r.get(), 0, 0);
		}
		const char *after = reader_ != nullptr ? cp.c_str() : nullptr;
		const char *first_params[] = {opt_.handler.c_str(), opt_.source.c_str(), m.member.c_str(), types_param(), after};
		Result r(PQexecParams(reader, kFirstSql, 5, kFirstTypes, first_params, nullptr, nullptr, 0));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed_on(reader, "read_handler_events", r.get());
		if (PQntuples(r.get()) == 0)
			return Outcome::Ok;
		std::string position = PQgetvalue(r.get(), 0, 0);
		r.reset(exec_params(kNoteSql, {opt_.handler.c_str(), position.c_str(), m.member.c_str()}));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed("note_attempt", r.get());
		first = to_ll(position);
		tries = atoi(PQgetvalue(r.get(), 0, 0));
		if (tries <= 1 || first <= m.single_until)
			return Outcome::Ok;
		std::string batch = std::to_string(opt_.batch);
		const char *span_params[] = {opt_.handler.c_str(), opt_.source.c_str(), batch.c_str(), m.member.c_str(),
		                             types_param(), after};
		r.reset(PQexecParams(reader, kSpanSql, 6, kReadMemberTypes, span_params, nullptr, nullptr, 0));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed_on(reader, "read_handler_events", r.get());
		long long end = PQgetisnull(r.get(), 0, 0) ? first : to_ll(PQgetvalue(r.get(), 0, 0));
		m.single_until = end > first ? end : first;
		logf("%sa batch from position %lld did not commit (try %d): one event per transaction up to position %lld",
		     prefix(m).c_str(), first, tries, m.single_until);
		return Outcome::Ok;
	}

	// --max-attempts: parks member m's next event, at `position`, in one transaction: the
	// checkpoint first moves up to the event before it (a filtered reader may not have saved the
	// events of other types or sources before it; park_event wants the member's next event),
	// then park_event with the last --apply error as the reason.
	Outcome park(Member &m, long long position, int tried)
	{
		Result r(PQexec(conn_, "BEGIN ISOLATION LEVEL READ COMMITTED"));
		if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
			return failed("BEGIN", r.get());
		r.reset(exec_params(kPositionSql, {opt_.handler.c_str(), m.member.c_str()}));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return rollback(failed("handler_position", r.get()));
		std::string cp = PQgetvalue(r.get(), 0, 0);
		PGconn *reader = reader_ != nullptr ? reader_ : conn_;
		const char *read_params[] = {opt_.handler.c_str(), opt_.source.c_str(), "1", m.member.c_str(), types_param(),
		                             reader_ != nullptr ? cp.c_str() : nullptr};
		Result rows(PQexecParams(reader, kReadMemberSql, 6, kReadMemberTypes, read_params, nullptr, nullptr, 0));
		if (PQresultStatus(rows.get()) != PGRES_TUPLES_OK)
			return rollback(failed_on(reader, "read_handler_events", rows.get()));
		if (PQntuples(rows.get()) != 1 || PQnfields(rows.get()) != kColumns ||
		    to_ll(PQgetvalue(rows.get(), 0, kPosition)) != position)
			return rollback(Outcome::Again);	// the checkpoint moved since the attempt was noted
		const char *const token = table_lease_ ? m.token.c_str() : nullptr;
		if (position - 1 > to_ll(cp)) {
			std::string before = std::to_string(position - 1);
			const char *save_params[] = {opt_.handler.c_str(), before.c_str(), m.member.c_str(), token, cp.c_str()};
			const Oid save_types[] = {25, 20, 23, 0, 20};
			r.reset(PQexecParams(conn_, kSaveExpectedSql, 5, save_types, save_params, nullptr, nullptr, 0));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return rollback(failed("save_handler_position", r.get()));
		}
		std::string reason = m.failed_at == position && !m.failure.empty()
			? m.failure
			: "attempted " + std::to_string(opt_.max_attempts) + " times without completing (crashed or timed out)";
		std::string pos = std::to_string(position);
		const char *park_params[] = {opt_.handler.c_str(), pos.c_str(), reason.c_str(), m.member.c_str(), token};
		r.reset(PQexecParams(conn_, kParkSql, 5, nullptr, park_params, nullptr, nullptr, 0));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return rollback(failed("park_event", r.get()));
		r.reset(PQexec(conn_, "COMMIT"));
		if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
			return rollback(failed("COMMIT", r.get()));
		logf("%sparked the event at position %s (stream %s, version %s, type %s) after %d tries: %s",
		     prefix(m).c_str(), pos.c_str(), PQgetvalue(rows.get(), 0, kStream), PQgetvalue(rows.get(), 0, kVersion),
		     PQgetvalue(rows.get(), 0, kType), tried, reason.c_str());
		m.failed_at = 0;
		m.failure.clear();
		m.bonus_at = 0;
		return Outcome::Ok;
	}

	// One transaction of member m: read a batch, apply it, save the checkpoint, print, commit.
	// With --max-attempts the batch's first event was noted before (note_first), and that may
	// make it a batch of one event, or a park instead.
	Outcome round(Member &m, bool &empty)
	{
		long long first = 0;
		bool single = false;
		if (opt_.max_attempts > 0) {
			int tries = 0;
			Outcome o = note_first(m, first, tries);
			if (o != Outcome::Ok)
				return o;
			if (first != 0) {
				// Tries of this event: the count, plus one when this process saw it fail in a
				// batch that started earlier (counted against that batch's first event). Parked
				// once past --max-attempts, and only if it failed alone at least once: a count
				// of 2 may be one failed batch (anyone's fault) and one try alone.
				int counted = tries + (m.bonus_at == first ? 1 : 0);
				if (counted > opt_.max_attempts && (tries >= 3 || m.failed_at == first))
					return park(m, first, counted - 1);
				single = first <= m.single_until;
			}
		}
		const int batch_size = single ? 1 : opt_.batch;
		const bool skip = skips_ahead();
		Result r(PQexec(conn_, "BEGIN ISOLATION LEVEL READ COMMITTED"));
		if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
			return failed("BEGIN", r.get());

		// The checkpoint the read starts after, from the primary in this transaction: --read-from
		// reads after it and the save checks it has not moved since (expected_position); a
		// filtered read compares its skip-ahead with it.
		std::string cp;
		if (reader_ != nullptr || skip) {
			r.reset(exec_params(kPositionSql, {opt_.handler.c_str(), m.member.c_str()}));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return rollback(failed("handler_position", r.get()));
			cp = PQgetvalue(r.get(), 0, 0);
			m.last_cp = cp;
		}

		// safe_position() before the read: the wait after an empty batch wakes for anything the
		// read did not see, and a filtered read that came back short read everything of its
		// filter up to it.
		PGconn *reader = reader_ != nullptr ? reader_ : conn_;
		std::string sp;
		if (reader_ != nullptr || (wake_wait_ && has_wait_) || skip) {
			r.reset(PQexec(reader, "SELECT everest.safe_position()"));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return rollback(failed_on(reader, "safe_position", r.get()));
			sp = PQgetvalue(r.get(), 0, 0);
			m.last_safe = sp;
		}

		std::string batch = std::to_string(batch_size);
		Result rows;
		if (member_reads()) {
			const char *read_params[] = {opt_.handler.c_str(), opt_.source.c_str(), batch.c_str(), m.member.c_str(),
			                             types_param(), reader_ != nullptr ? cp.c_str() : nullptr};
			rows.reset(PQexecParams(reader, kReadMemberSql, 6, kReadMemberTypes, read_params, nullptr, nullptr, 0));
		} else {
			const char *read_params[] = {opt_.handler.c_str(), opt_.source.c_str(), batch.c_str()};
			const Oid read_types[] = {25, 25, 23};	// text, text, int4
			rows.reset(PQexecParams(conn_, kReadSql, 3, read_types, read_params, nullptr, nullptr, 0));
		}
		if (PQresultStatus(rows.get()) != PGRES_TUPLES_OK)
			return rollback(failed_on(reader, "read_handler_events", rows.get()));
		int n = PQntuples(rows.get());
		if (n > 0 && PQnfields(rows.get()) != kColumns) {
			why_ = "read_handler_events returned an unexpected number of columns";
			return rollback(Outcome::Fatal);
		}
		if (opt_.max_attempts > 0 && n > 0 && to_ll(PQgetvalue(rows.get(), 0, kPosition)) != first)
			return rollback(Outcome::Again);	// not the event whose attempt was noted
		if (n == 0) {
			empty = true;
			// Nothing of its filter up to sp: the checkpoint moves there, past what it does not take.
			if (skip && to_ll(sp) > to_ll(cp)) {
				Outcome o = save(m, sp, cp);
				if (o != Outcome::Ok)
					return rollback(o);
			}
			r.reset(PQexec(conn_, "COMMIT"));
			if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
				return rollback(failed("COMMIT", r.get()));
			return Outcome::Ok;
		}

		out_.clear();
		std::string event;
		for (int i = 0; i < n; i++) {
			event.clear();
			event_json(event, rows.get(), i);
			if (opt_.has_apply) {
				const char *apply_params[] = {event.c_str()};
				Result a(PQexecParams(conn_, opt_.apply.c_str(), 1, apply_types_.data(), apply_params, nullptr,
				                      nullptr, 0));
				ExecStatusType st = PQresultStatus(a.get());
				if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
					const char *at = PQgetvalue(rows.get(), i, kPosition);
					std::string what = prefix(m) + "--apply failed at position " + at;
					Outcome o = failed(what.c_str(), a.get());
					if (o == Outcome::Fatal && opt_.max_attempts > 0) {
						// Tried again, one event at a time up to it, and parked after
						// --max-attempts with this message.
						m.failed_at = to_ll(at);
						m.failure = error_text(conn_, a.get());
						if (i > 0)
							m.bonus_at = m.failed_at;
						if (m.failed_at > m.single_until)
							m.single_until = m.failed_at;
						o = Outcome::ApplyFailed;
					}
					return rollback(o);
				}
			}
			if (!opt_.quiet) {
				out_ += event;
				out_ += '\n';
			}
		}

		// A filtered read that came back short read everything of its filter up to sp.
		std::string last = PQgetvalue(rows.get(), n - 1, kPosition);
		const std::string &to = skip && n < batch_size && to_ll(sp) > to_ll(last) ? sp : last;
		Outcome o = save(m, to, cp);
		if (o != Outcome::Ok)
			return rollback(o);

		// Printed and flushed before the commit: at-least-once on stdout.
		if (!out_.empty()) {
			if (fwrite(out_.data(), 1, out_.size(), stdout) != out_.size() || fflush(stdout) != 0) {
				why_ = std::string("writing to stdout: ") + strerror(errno);
				return rollback(Outcome::Fatal);
			}
		}
		r.reset(PQexec(conn_, "COMMIT"));
		if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
			return rollback(failed("COMMIT", r.get()));
		if (m.failed_at != 0 && to_ll(last) >= m.failed_at) {
			m.failed_at = 0;	// past it
			m.failure.clear();
		}
		return Outcome::Ok;
	}
};

// ------------------------------------------------------------------------------------------
// Command line
// ------------------------------------------------------------------------------------------

void usage(FILE *to)
{
	fprintf(to,
	        "usage: everest-tail --handler NAME [--source '$all'|STREAM|'$ce-CATEGORY'] [--batch 500]\n"
	        "                    [--poll-ms 1000] [--apply SQL] [--from-start] [--once] [--quiet]\n"
	        "                    [--wake listen|wait] [--lease table|session] [--lease-ttl 30]\n"
	        "                    [--read-from READER_CONNINFO] [--members N] [--types A,B]\n"
	        "                    [--max-attempts N] [CONNINFO]\n"
	        "\n"
	        "Prints every event of SOURCE after handler NAME's checkpoint as one JSON line, runs --apply SQL\n"
	        "(with $1 = the event's JSON) in the transaction that moves the checkpoint, and follows new\n"
	        "events (LISTEN everest, or everest.wait_for_position with --wake wait, polling every --poll-ms).\n"
	        "One process per handler holds its lease (acquire_lease, --lease-ttl seconds, renewed every third).\n"
	        "Through a transaction pooler (PgBouncer) or on a hot standby, use --wake wait.\n"
	        "--read-from reads the events on READER_CONNINFO (a hot standby or a mirror; it waits there with\n"
	        "wait_for_position); checkpoints, leases and --apply stay on CONNINFO, the primary.\n"
	        "--members N runs NAME as a consumer group shared by the processes started with it (made a group of\n"
	        "N members when it has no checkpoint yet; resize_handler is the operator's): each process takes one\n"
	        "free member at once, then one more per --poll-ms while any is free, runs each in its own\n"
	        "transactions with its own lease, and drops the members whose lease is lost; a resize ends every\n"
	        "lease, and the processes then take members of the new size.\n"
	        "--types A,B reads only those event types; like a group's members, it moves its checkpoint past\n"
	        "the events it does not take.\n"
	        "--max-attempts N counts tries with everest.note_attempt (crashes count too), retries a failing\n"
	        "--apply one event at a time, and parks the event (park_event) after N tries (default 0: off,\n"
	        "a failing --apply stops it with status 1).\n"
	        "CONNINFO is a libpq connection string or URI; PGHOST, PGPORT, PGUSER, PGDATABASE... apply.\n");
}

bool parse_int(const char *s, int lo, int hi, int &out)
{
	char *end = nullptr;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	out = static_cast<int>(v);
	return true;
}

// Returns -1 when the options are fine, otherwise an exit status.
int parse_options(int argc, char **argv, Options &opt)
{
	bool have_conninfo = false;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		std::string value;
		bool inline_value = false;
		if (starts_with(a, "--") && a.find('=') != std::string::npos) {
			value = a.substr(a.find('=') + 1);
			a = a.substr(0, a.find('='));
			inline_value = true;
		}
		auto need = [&](std::string &into) {
			if (inline_value) {
				into = value;
				return true;
			}
			if (i + 1 >= argc) {
				fprintf(stderr, "everest-tail: %s needs a value\n", a.c_str());
				return false;
			}
			into = argv[++i];
			return true;
		};
		auto need_int = [&](int lo, int hi, int &into) {
			std::string v;
			if (!need(v))
				return false;
			if (!parse_int(v.c_str(), lo, hi, into)) {
				fprintf(stderr, "everest-tail: %s must be an integer from %d to %d\n", a.c_str(), lo, hi);
				return false;
			}
			return true;
		};
		auto flag = [&]() {
			if (inline_value) {
				fprintf(stderr, "everest-tail: %s takes no value\n", a.c_str());
				return false;
			}
			return true;
		};
		if (a == "-h" || a == "--help") {
			usage(stdout);
			return 0;
		} else if (a == "--handler") {
			if (!need(opt.handler))
				return 2;
		} else if (a == "--source") {
			if (!need(opt.source))
				return 2;
		} else if (a == "--batch") {
			if (!need_int(1, 100000, opt.batch))
				return 2;
		} else if (a == "--poll-ms") {
			if (!need_int(10, 3600000, opt.poll_ms))
				return 2;
		} else if (a == "--apply") {
			if (!need(opt.apply))
				return 2;
			opt.has_apply = true;
		} else if (a == "--from-start") {
			if (!flag())
				return 2;
			opt.from_start = true;
		} else if (a == "--once") {
			if (!flag())
				return 2;
			opt.once = true;
		} else if (a == "--quiet") {
			if (!flag())
				return 2;
			opt.quiet = true;
		} else if (a == "--wake") {
			std::string v;
			if (!need(v))
				return 2;
			if (v != "listen" && v != "wait") {
				fprintf(stderr, "everest-tail: --wake must be listen or wait\n");
				return 2;
			}
			opt.wake_wait = v == "wait";
		} else if (a == "--lease") {
			std::string v;
			if (!need(v))
				return 2;
			if (v != "table" && v != "session") {
				fprintf(stderr, "everest-tail: --lease must be table or session\n");
				return 2;
			}
			opt.session_lease = v == "session";
		} else if (a == "--lease-ttl") {
			if (!need_int(1, 86400, opt.lease_ttl_s))
				return 2;
		} else if (a == "--read-from") {
			if (!need(opt.read_from))
				return 2;
			opt.has_read_from = true;
		} else if (a == "--members") {
			if (!need_int(1, 1024, opt.members))
				return 2;
			opt.has_members = true;
		} else if (a == "--types") {
			if (!need(opt.types))
				return 2;
			opt.has_types = true;
		} else if (a == "--max-attempts") {
			if (!need_int(0, 1000000, opt.max_attempts))
				return 2;
		} else if (starts_with(a, "-") && a != "-") {
			fprintf(stderr, "everest-tail: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (!have_conninfo) {
			opt.conninfo = argv[i];
			have_conninfo = true;
		} else {
			fprintf(stderr, "everest-tail: only one CONNINFO argument is allowed\n");
			return 2;
		}
	}
	if (opt.handler.empty()) {
		fprintf(stderr, "everest-tail: --handler NAME is required\n");
		usage(stderr);
		return 2;
	}
	if (opt.source.empty()) {
		fprintf(stderr, "everest-tail: --source must not be empty\n");
		return 2;
	}
	if (opt.has_apply && opt.apply.find_first_not_of(" \t\r\n;") == std::string::npos) {
		fprintf(stderr, "everest-tail: --apply needs an SQL statement\n");
		return 2;
	}
	if (opt.has_types) {
		std::string t = "," + opt.types + ",";
		if (t.find(",,") != std::string::npos) {
			fprintf(stderr, "everest-tail: --types needs event types separated by commas, none empty\n");
			return 2;
		}
	}
	if (opt.has_members && opt.session_lease) {
		fprintf(stderr, "everest-tail: --members needs the table lease (a lease per member), not --lease session\n");
		return 2;
	}
	return -1;
}

}	// namespace

int main(int argc, char **argv)
{
	Options opt;
	int status = parse_options(argc, argv, opt);
	if (status >= 0)
		return status;
	g_log_prefix = "everest-tail[" + opt.handler + "]";

	if (pipe(g_wake_pipe) != 0) {
		perror("everest-tail: pipe");
		return 1;
	}
	for (int fd : g_wake_pipe) {
		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
		fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);
	signal(SIGPIPE, SIG_IGN);	// a closed stdout is an error from fwrite, not a silent death

	Backoff backoff;
	bool reset_pending = opt.from_start;
	bool was_connected = false;
	Held held;
	while (!stopping()) {
		std::string error;
		PGconn *conn = connect(opt.conninfo, error);
		if (conn == nullptr) {
			if (stopping())
				break;
			int ms = backoff.next();
			logf("cannot connect: %s; retrying in %d ms", error.c_str(), ms);
			sleep_ms(ms);
			continue;
		}
		PGconn *reader = nullptr;
		if (opt.has_read_from) {
			reader = connect(opt.read_from, error);
			if (reader == nullptr) {
				PQfinish(conn);
				if (stopping())
					break;
				int ms = backoff.next();
				logf("cannot connect to the reader (--read-from): %s; retrying in %d ms", error.c_str(), ms);
				sleep_ms(ms);
				continue;
			}
		}
		logf("%s database %s as %s", was_connected ? "reconnected to" : "connected to", PQdb(conn), PQuser(conn));
		if (reader != nullptr)
			logf("reading events on the reader: database %s on %s port %s as %s (--read-from)", PQdb(reader),
			     PQhost(reader), PQport(reader), PQuser(reader));
		was_connected = true;
		set_cancel(conn);
		Session session(opt, conn, reader, backoff, reset_pending, held);
		Outcome o = session.run();
		if (o == Outcome::Stop || o == Outcome::Done || o == Outcome::Fatal)
			session.release();
		set_cancel(nullptr);
		if (reader != nullptr)
			PQfinish(reader);
		PQfinish(conn);	// the server ends a session lease with the session
		if (o == Outcome::Done)
			return 0;
		if (o == Outcome::Fatal) {
			logf("stopping: %s", session.why().c_str());
			return 1;
		}
		if (o != Outcome::Stop) {	// Lost (or anything unexpected): reconnect with backoff
			int ms = backoff.next();
			logf("%s; reconnecting in %d ms", session.why().c_str(), ms);
			sleep_ms(ms);
		}
	}
	logf("stopped by signal");
	return 0;
}
