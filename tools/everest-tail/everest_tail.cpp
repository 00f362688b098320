// everest-tail: a subscriber for an everest event store (DESIGN.md sections 2, 4, 5 and 9).
//
//   everest-tail --handler NAME [--source '$all'|STREAM|'$ce-CATEGORY'] [--batch 500]
//                [--poll-ms 1000] [--apply SQL] [--from-start] [--once] [--quiet]
//                [--wake listen|wait] [--lease table|session] [--lease-ttl 30]
//                [--read-from READER_CONNINFO] [CONNINFO]
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
//   1. connect; SELECT * FROM everest.acquire_lease(NAME, TTL) until it returns a row (member,
//      lease token), logging "waiting for the lease"; renew it (renew_lease) every TTL/3. When
//      renew_lease returns false, or a save fails with EV005, the lease is lost: roll back, stop
//      applying, acquire it again. After a reconnect the token is renewed, not re-acquired.
//   2. --wake listen: LISTEN everest (on a hot standby, where LISTEN fails with 25006, it
//      switches to --wake wait).
//   3. repeat: BEGIN ISOLATION LEVEL READ COMMITTED; (--wake wait: SELECT safe_position());
//      read_handler_events(NAME, SOURCE, BATCH); apply each event;
//      save_handler_position(NAME, last position, member => M, lease => TOKEN); COMMIT. When a
//      batch is empty, wait: for a notification on channel "everest" or --poll-ms, whichever
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
//   CONNINFO         a libpq connection string or URI; PGHOST, PGPORT, PGUSER, ... apply
//
// Exit status: 0 when stopped by SIGINT/SIGTERM (the transaction in progress is finished first;
// a second signal cancels it instead) or by --once; 1 on an error that retrying cannot fix (a
// bad --apply statement or one that fails with a non-transient error, a missing extension, a
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
	LeaseLost,	// renew_lease said false or a save failed with EV005: acquire the lease again
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
// --read-from: the read on the reader starts after the checkpoint read on the primary, and the
// save checks that checkpoint (the lease is NULL with --lease session).
const char *const kReadAfterSql =
	"SELECT stream, version, position, id, type, data, metadata, "
	"pg_catalog.to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') "
	"FROM everest.read_handler_events($1, $2, $3, member => $4, after => $5)";
const char *const kSaveExpectedSql =
	"SELECT everest.save_handler_position($1, $2, member => $3::integer, lease => $4::uuid, "
	"expected_position => $5::bigint)";

// --wake listen with --read-from is logged once per process, not at every reconnect.
bool g_logged_reader_wake = false;

long long to_ll(const char *s) { return strtoll(s, nullptr, 10); }

// What outlives a connection: the table lease (renewed after a reconnect instead of taken
// again) and --from-start's pending reset.
struct Lease {
	std::string token;	// empty: none
	std::string member;
	Clock::time_point renewed;
};

class Session {
public:
	Session(const Options &opt, PGconn *conn, PGconn *reader, Backoff &backoff, bool &reset_pending, Lease &lease)
		: opt_(opt), conn_(conn), reader_(reader), backoff_(backoff), reset_pending_(reset_pending), lease_(lease)
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
		o = take_lease();
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
		Result pos(exec_params("SELECT everest.handler_position($1)", {opt_.handler.c_str()}));
		if (PQresultStatus(pos.get()) != PGRES_TUPLES_OK)
			return failed("handler_position", pos.get());
		logf("reading %s after position %s", opt_.source.c_str(), PQgetvalue(pos.get(), 0, 0));

		for (;;) {
			if (stopping())
				return Outcome::Stop;
			o = renew_if_due();
			if (o == Outcome::Ok) {
				bool empty = false;
				o = round(empty);
				if (o == Outcome::Ok) {
					backoff_.reset();
					if (!empty)
						continue;
					if (opt_.once)
						return Outcome::Done;
					o = wait_for_news();
					if (o == Outcome::Ok)
						continue;
				}
			}
			switch (o) {
			case Outcome::Moved:
				logf("the checkpoint was moved by another process (EV004): rolled back, reading again");
				continue;
			case Outcome::LeaseLost:
				logf("lease on handler \"%s\" lost (%s): stopped applying, acquiring it again",
				     opt_.handler.c_str(), why_.c_str());
				lease_.token.clear();
				o = take_lease();
				if (o != Outcome::Ok)
					return o;
				continue;
			case Outcome::Retry: {
				int ms = backoff_.next();
				logf("%s; rolled back, retrying in %d ms", why_.c_str(), ms);
				if (!sleep_ms(ms))
					return Outcome::Stop;
				continue;
			}
			default:
				return o;
			}
		}
	}

	// After run() ended with Stop or Done: gives the table lease back, so that another process
	// takes over at once (best effort: a lease that is not released expires).
	void release()
	{
		if (lease_.token.empty() || PQstatus(conn_) != CONNECTION_OK)
			return;
		Result r(exec_params("SELECT everest.release_lease($1, $2::uuid)", {opt_.handler.c_str(), lease_.token.c_str()}));
		if (PQresultStatus(r.get()) == PGRES_TUPLES_OK)
			logf("lease on handler \"%s\" released", opt_.handler.c_str());
		lease_.token.clear();
	}

	const std::string &why() const { return why_; }

private:
	const Options &opt_;
	PGconn *conn_;
	PGconn *reader_;	// --read-from, else nullptr
	Backoff &backoff_;
	bool &reset_pending_;
	Lease &lease_;
	std::string why_;
	std::string out_;
	bool table_lease_ = false;
	bool has_wait_ = false;
	bool wake_wait_ = false;
	std::vector<Oid> apply_types_;
	std::string last_safe_ = "0";	// safe_position() before the last read (--wake wait)
	std::string last_cp_ = "0";	// --read-from: the checkpoint the last read started after

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
		return classify(conn, res);
	}

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

	// What the server has (acquire_lease and wait_for_position came with everest 0.4.0), and
	// the --apply statement checked before taking the lease: parsed as the unnamed statement
	// (nothing is left behind), which also tells the type of $1.
	Outcome check_server()
	{
		Result r(PQexec(conn_,
		                "SELECT pg_catalog.to_regprocedure('everest.acquire_lease(text,interval,integer)') IS NOT NULL, "
		                "pg_catalog.to_regprocedure('everest.wait_for_position(bigint,integer)') IS NOT NULL"));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed("checking the server", r.get());
		bool has_lease = strcmp(PQgetvalue(r.get(), 0, 0), "t") == 0;
		has_wait_ = strcmp(PQgetvalue(r.get(), 0, 1), "t") == 0;
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

	std::string ttl() const { return std::to_string(opt_.lease_ttl_s) + " seconds"; }
	int renew_every_ms() const { return opt_.lease_ttl_s * 1000 / 3; }

	// The table lease: a token kept from before a reconnect is renewed; otherwise acquire_lease
	// until a member is free. The session lease: try_acquire_handler until true.
	Outcome take_lease()
	{
		bool waiting = false;
		auto last_log = Clock::now();
		for (;;) {
			bool taken = false;
			if (!table_lease_) {
				Result r(exec_params("SELECT everest.try_acquire_handler($1)", {opt_.handler.c_str()}));
				if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
					return failed("try_acquire_handler", r.get());
				taken = strcmp(PQgetvalue(r.get(), 0, 0), "t") == 0;
			} else if (!lease_.token.empty()) {
				std::string t = ttl();
				Result r(exec_params("SELECT everest.renew_lease($1, $2::uuid, $3::interval)",
				                     {opt_.handler.c_str(), lease_.token.c_str(), t.c_str()}));
				if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
					return failed("renew_lease", r.get());
				if (strcmp(PQgetvalue(r.get(), 0, 0), "t") == 0) {
					lease_.renewed = Clock::now();
					logf("lease on handler \"%s\" kept (member %s)", opt_.handler.c_str(), lease_.member.c_str());
					return Outcome::Ok;
				}
				lease_.token.clear();
				continue;
			} else {
				std::string t = ttl();
				auto asked = Clock::now();
				Result r(exec_params("SELECT granted_member, lease FROM everest.acquire_lease($1, $2::interval)",
				                     {opt_.handler.c_str(), t.c_str()}));
				if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
					return failed("acquire_lease", r.get());
				if (PQntuples(r.get()) == 1) {
					lease_.member = PQgetvalue(r.get(), 0, 0);
					lease_.token = PQgetvalue(r.get(), 0, 1);
					lease_.renewed = asked;
					taken = true;
				}
			}
			if (taken) {
				logf("lease on handler \"%s\" taken", opt_.handler.c_str());
				return Outcome::Ok;
			}
			if (!waiting || Clock::now() - last_log > std::chrono::milliseconds(kLeaseLogEveryMs)) {
				logf("waiting for the lease: another process runs handler \"%s\"; retrying every %d ms",
				     opt_.handler.c_str(), opt_.poll_ms);
				waiting = true;
				last_log = Clock::now();
			}
			backoff_.reset();	// the connection works
			Outcome o = wait_listen(opt_.poll_ms);	// nothing listened to yet: a sleep that a signal ends
			if (o != Outcome::Ok)
				return o;
		}
	}

	int ms_until_renewal() const
	{
		if (!table_lease_ || lease_.token.empty())
			return INT_MAX;
		auto due = lease_.renewed + std::chrono::milliseconds(renew_every_ms());
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(due - Clock::now()).count();
		return left < 0 ? 0 : static_cast<int>(left);
	}

	// Renews the table lease every TTL/3 (between transactions). False: lost.
	Outcome renew_if_due()
	{
		if (ms_until_renewal() > 0)
			return Outcome::Ok;
		std::string t = ttl();
		auto asked = Clock::now();
		Result r(exec_params("SELECT everest.renew_lease($1, $2::uuid, $3::interval)",
		                     {opt_.handler.c_str(), lease_.token.c_str(), t.c_str()}));
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return failed("renew_lease", r.get());
		if (strcmp(PQgetvalue(r.get(), 0, 0), "t") != 0) {
			why_ = "renew_lease returned false";
			return Outcome::LeaseLost;
		}
		lease_.renewed = asked;
		return Outcome::Ok;
	}

	// After an empty batch: until news, --poll-ms, or the lease's renewal is due.
	Outcome wait_for_news()
	{
		int ms = opt_.poll_ms;
		int renew = ms_until_renewal();
		if (renew < ms)
			ms = renew;
		if (ms <= 0)
			return Outcome::Ok;
		if (reader_ != nullptr) {
			// Nothing after cp can show on the reader before its horizon passes cp (a lagging
			// reader may still be below the checkpoint the primary has).
			const std::string &after = to_ll(last_cp_.c_str()) > to_ll(last_safe_.c_str()) ? last_cp_ : last_safe_;
			return wait_position(reader_, after, ms);
		}
		if (wake_wait_ && has_wait_)
			return wait_position(conn_, last_safe_, ms);
		return wait_listen(ms);
	}

	// Throws away the notifications received so far: the read that follows sees their events.
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

	// Waits for a notification, the timeout, a signal or the connection's end. Ok = read again.
	Outcome wait_listen(int timeout_ms)
	{
		auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
		for (;;) {
			bool notified = false;
			while (PGnotify *n = PQnotifies(conn_)) {
				notified = true;
				PQfreemem(n);
			}
			if (notified)
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

	// One transaction: read a batch, apply it, save the checkpoint, print, commit.
	Outcome round(bool &empty)
	{
		Outcome o = drain_notifications();
		if (o != Outcome::Ok)
			return o;
		Result r(PQexec(conn_, "BEGIN ISOLATION LEVEL READ COMMITTED"));
		if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
			return failed("BEGIN", r.get());

		// --read-from: the checkpoint comes from the primary, in this transaction; the save
		// checks it has not moved since (expected_position).
		const char *member = table_lease_ ? lease_.member.c_str() : "0";
		if (reader_ != nullptr) {
			r.reset(exec_params("SELECT everest.handler_position($1, $2::integer)", {opt_.handler.c_str(), member}));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return rollback(failed("handler_position", r.get()));
			last_cp_ = PQgetvalue(r.get(), 0, 0);
		}

		PGconn *reader = reader_ != nullptr ? reader_ : conn_;
		if (reader_ != nullptr || (wake_wait_ && has_wait_)) {
			// Taken before the read, so that the wait after an empty batch wakes for anything
			// the read did not see.
			r.reset(PQexec(reader, "SELECT everest.safe_position()"));
			if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
				return rollback(failed_on(reader, "safe_position", r.get()));
			last_safe_ = PQgetvalue(r.get(), 0, 0);
		}

		std::string batch = std::to_string(opt_.batch);
		Result rows;
		if (reader_ != nullptr) {
			const char *read_params[] = {opt_.handler.c_str(), opt_.source.c_str(), batch.c_str(), member,
			                             last_cp_.c_str()};
			const Oid read_types[] = {25, 25, 23, 23, 20};	// text, text, int4, int4, int8
			rows.reset(PQexecParams(reader_, kReadAfterSql, 5, read_types, read_params, nullptr, nullptr, 0));
		} else {
			const char *read_params[] = {opt_.handler.c_str(), opt_.source.c_str(), batch.c_str()};
			const Oid read_types[] = {25, 25, 23};	// text, text, int4
			rows.reset(PQexecParams(conn_, kReadSql, 3, read_types, read_params, nullptr, nullptr, 0));
		}
		if (PQresultStatus(rows.get()) != PGRES_TUPLES_OK) {
			o = failed_on(reader, "read_handler_events", rows.get());
			return rollback(o);
		}
		int n = PQntuples(rows.get());
		if (n == 0) {
			empty = true;
			r.reset(PQexec(conn_, "COMMIT"));
			if (PQresultStatus(r.get()) != PGRES_COMMAND_OK)
				return rollback(failed("COMMIT", r.get()));
			return Outcome::Ok;
		}
		if (PQnfields(rows.get()) != kColumns) {
			why_ = "read_handler_events returned an unexpected number of columns";
			return rollback(Outcome::Fatal);
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
					std::string what = std::string("--apply failed at position ") + PQgetvalue(rows.get(), i, kPosition);
					return rollback(failed(what.c_str(), a.get()));
				}
			}
			if (!opt_.quiet) {
				out_ += event;
				out_ += '\n';
			}
		}

		const char *last = PQgetvalue(rows.get(), n - 1, kPosition);
		if (reader_ != nullptr) {
			const char *token = table_lease_ ? lease_.token.c_str() : nullptr;	// NULL: no lease
			const char *save_params[] = {opt_.handler.c_str(), last, member, token, last_cp_.c_str()};
			const Oid save_types[] = {25, 20, 23, 0, 20};
			r.reset(PQexecParams(conn_, kSaveExpectedSql, 5, save_types, save_params, nullptr, nullptr, 0));
		} else if (table_lease_) {
			const char *save_params[] = {opt_.handler.c_str(), last, lease_.member.c_str(), lease_.token.c_str()};
			const Oid save_types[] = {25, 20, 23, 0};
			r.reset(PQexecParams(conn_, kSaveLeaseSql, 4, save_types, save_params, nullptr, nullptr, 0));
		} else {
			const char *save_params[] = {opt_.handler.c_str(), last};
			const Oid save_types[] = {25, 20};
			r.reset(PQexecParams(conn_, kSaveSql, 2, save_types, save_params, nullptr, nullptr, 0));
		}
		if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
			return rollback(failed("save_handler_position", r.get()));

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
	        "                    [--read-from READER_CONNINFO] [CONNINFO]\n"
	        "\n"
	        "Prints every event of SOURCE after handler NAME's checkpoint as one JSON line, runs --apply SQL\n"
	        "(with $1 = the event's JSON) in the transaction that moves the checkpoint, and follows new\n"
	        "events (LISTEN everest, or everest.wait_for_position with --wake wait, polling every --poll-ms).\n"
	        "One process per handler holds its lease (acquire_lease, --lease-ttl seconds, renewed every third).\n"
	        "Through a transaction pooler (PgBouncer) or on a hot standby, use --wake wait.\n"
	        "--read-from reads the events on READER_CONNINFO (a hot standby or a mirror; it waits there with\n"
	        "wait_for_position); checkpoints, leases and --apply stay on CONNINFO, the primary.\n"
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
	Lease lease;
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
		Session session(opt, conn, reader, backoff, reset_pending, lease);
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
