// everest-stress: concurrent writers and $all followers against a live everest database.
//
// Writers append in random transactions (single appends, appends to 2-3 streams, batches of
// 2-5 events), some with a SAVEPOINT that is rolled back (or released), with a random pause
// before the end, and about 10% of them roll back. Every event carries a unique token in its
// data. Each writer records the token and the position of every event whose COMMIT returned
// success, and the tokens of every event that cannot have committed.
//
// Followers poll everest.read_all_forward(checkpoint + 1, 500) from checkpoint 0, each with its
// own checkpoint, as a subscriber of $all would. When the writers are done, they read until they
// have caught up with everest.safe_position(). Then the program checks that every follower saw
// exactly the committed events, each once, in strictly increasing position order, at the
// positions the writers were told, and none of the rolled-back ones (DESIGN.md section 4).
//
// Output: a summary, then TAP-like lines "ok - ..." / "not ok - ..."; exit status 1 when a
// check failed, 2 on a usage or connection error.
//
//   everest-stress --dbname DB [--seconds 30] [--writers 6] [--followers 2] [--streams 50]
//                  [--batch 500] [--max-sleep-ms 20] [--rollback-pct 10] [--savepoint-pct 10]
//                  [--catchup-seconds 60] [--seed N] [--sorted-streams] [--stream-prefix P]
//                  [--writers-only --record FILE] [--interruptions] [--quiet]
//
// --writers-only runs the writers alone (no followers, no checks; SIGINT/SIGTERM stop them
// early), reconnects after lost connections (the crash test kills backends under it) and, with
// --record, writes "token<TAB>position" for every committed event to FILE at the end.
// --sorted-streams locks the streams of a transaction in name order, so writers never deadlock.
// --interruptions: the server is interrupted under the run (test/shell/crash.sh kills backends
// and restarts it): writers and followers reconnect, lost connections are no failure, a commit
// whose answer was lost may or may not be there, and events outside the run's streams
// (--stream-prefix) are other sessions' and ignored. Followers keep their checkpoints across
// the interruptions, as a subscriber does, and must still miss nothing.
// --dbname accepts a database name or a libpq connection string; PGHOST, PGPORT and PGUSER apply.

#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
	std::string dbname;
	int seconds = 30;
	int writers = 6;
	int followers = 2;
	int streams = 50;
	int batch = 500;
	int max_sleep_ms = 20;
	int rollback_pct = 10;
	int savepoint_pct = 10;
	int catchup_seconds = 60;
	uint64_t seed = 0;
	bool seed_given = false;
	bool sorted_streams = false;
	bool writers_only = false;
	bool interruptions = false;
	bool quiet = false;
	std::string record;
	std::string stream_prefix = "stress";
};

std::atomic<bool> g_stop{false};	// SIGINT/SIGTERM, or the deadline
std::mutex g_print_mutex;

extern "C" void on_signal(int) { g_stop.store(true); }

void note(const Options &opt, const std::string &line)
{
	if (opt.quiet)
		return;
	std::lock_guard<std::mutex> lock(g_print_mutex);
	std::printf("# %s\n", line.c_str());
	std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------------
// libpq helpers
// ---------------------------------------------------------------------------------------------

struct Result {
	PGresult *res = nullptr;
	explicit Result(PGresult *r) : res(r) {}
	Result(const Result &) = delete;
	Result &operator=(const Result &) = delete;
	Result(Result &&o) noexcept : res(o.res) { o.res = nullptr; }
	Result &operator=(Result &&o) noexcept
	{
		if (this != &o) {
			if (res)
				PQclear(res);
			res = o.res;
			o.res = nullptr;
		}
		return *this;
	}
	~Result() { if (res) PQclear(res); }
	bool ok() const
	{
		if (!res)
			return false;
		ExecStatusType s = PQresultStatus(res);
		return s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
	}
	std::string sqlstate() const
	{
		const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
		return s ? s : "conn";
	}
	std::string message() const
	{
		const char *m = res ? PQresultErrorMessage(res) : nullptr;
		std::string in = m ? m : "no result", out;
		while (!in.empty() && (in.back() == '\n' || in.back() == ' '))
			in.pop_back();
		for (char c : in)	// one line, so that nothing of it reads as a TAP line
			out += c == '\n' ? std::string(" / ") : std::string(1, c);
		return out;
	}
	int rows() const { return res ? PQntuples(res) : 0; }
	const char *get(int row, int col) const { return PQgetvalue(res, row, col); }
	bool null(int row, int col) const { return PQgetisnull(res, row, col); }
	int64_t i64(int row, int col) const { return std::strtoll(get(row, col), nullptr, 10); }
};

// Server notices (the WARNING every backend sends when the postmaster ends it after a crash)
// would only clutter the output.
extern "C" void ignore_notice(void *, const char *) {}

PGconn *connect_db(const Options &opt, const std::string &app)
{
	const char *keys[] = {"dbname", "application_name", nullptr};
	const char *vals[] = {opt.dbname.c_str(), app.c_str(), nullptr};
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (conn)
		PQsetNoticeProcessor(conn, ignore_notice, nullptr);
	return conn;
}

Result exec(PGconn *conn, const std::string &sql)
{
	return Result(PQexec(conn, sql.c_str()));
}

Result exec_params(PGconn *conn, const std::string &sql, const std::vector<std::string> &params)
{
	std::vector<const char *> values;
	values.reserve(params.size());
	for (const auto &p : params)
		values.push_back(p.c_str());
	return Result(PQexecParams(conn, sql.c_str(), (int) params.size(), nullptr, values.data(),
							   nullptr, nullptr, 0));
}

bool connection_lost(PGconn *conn) { return PQstatus(conn) != CONNECTION_OK; }

// Errors an interruption of the server causes: a lost connection, admin or crash shutdown,
// "the database system is starting up", connection exceptions.
bool interruption_error(const std::string &sqlstate)
{
	return sqlstate == "conn" || sqlstate.rfind("57P", 0) == 0 || sqlstate.rfind("08", 0) == 0;
}

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// ---------------------------------------------------------------------------------------------
// Writers
// ---------------------------------------------------------------------------------------------

struct CommittedEvent {
	std::string token;
	int64_t position;
	std::string stream;
	int64_t version;
};

enum class Fate { RolledBack, SavepointRolledBack, Failed, Unknown };

struct WriterResult {
	std::vector<CommittedEvent> committed;
	std::vector<std::pair<std::string, Fate>> not_committed;	// cannot have committed, or unknown
	long tx_committed = 0, tx_rolled_back = 0, tx_failed = 0, tx_unknown = 0;
	long tx_single = 0, tx_multi = 0, tx_batch = 0, savepoints_rolled_back = 0, savepoints_released = 0;
	long inconsistent_results = 0;	// append results that contradict DESIGN.md (batch positions...)
	long connections_lost = 0;
	std::map<std::string, long> errors;	// SQLSTATE -> count
	std::string first_inconsistency, first_error;
};

struct Op {
	std::string stream;
	int events = 1;			// 1: append_event; >1: append_events
	int savepoint = 0;		// 0 none, 1 rolled back, 2 released
};

std::string json_escape(const std::string &s)
{
	std::string out;
	for (char c : s) {
		if (c == '"' || c == '\\')
			out += '\\';
		out += c;
	}
	return out;
}

class Writer {
public:
	Writer(const Options &opt, int index, const std::string &run_id, Clock::time_point deadline)
		: opt_(opt), index_(index), run_id_(run_id), deadline_(deadline),
		  rng_(opt.seed * 1000003u + (uint64_t) index * 7919u + 1) {}

	WriterResult run()
	{
		conn_ = connect_db(opt_, "everest-stress-writer-" + std::to_string(index_));
		if (connection_lost(conn_)) {
			error("conn", std::string("connect: ") + PQerrorMessage(conn_));
			if (!reconnect()) {
				PQfinish(conn_);
				return std::move(out_);
			}
		}
		while (!g_stop.load() && Clock::now() < deadline_) {
			if (!transaction() && connection_lost(conn_)) {
				out_.connections_lost++;
				if (!reconnect())
					break;
			}
		}
		PQfinish(conn_);
		return std::move(out_);
	}

private:
	struct Pending {
		std::string token;
		std::string stream;
		int64_t position = 0;
		int64_t version = 0;
	};

	const Options &opt_;
	int index_;
	std::string run_id_;
	Clock::time_point deadline_;
	std::mt19937_64 rng_;
	PGconn *conn_ = nullptr;
	long next_token_ = 0;
	WriterResult out_;

	int rand_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
	bool chance(int pct) { return rand_int(0, 99) < pct; }

	std::string random_stream() { return opt_.stream_prefix + "-" + std::to_string(rand_int(0, opt_.streams - 1)); }

	std::string new_token()
	{
		return run_id_ + "-w" + std::to_string(index_) + "-" + std::to_string(next_token_++);
	}

	void error(const std::string &sqlstate, const std::string &message)
	{
		out_.errors[sqlstate]++;
		if (out_.first_error.empty() && !(opt_.interruptions && interruption_error(sqlstate)))
			out_.first_error = message;
	}

	void inconsistent(const std::string &what)
	{
		out_.inconsistent_results++;
		if (out_.first_inconsistency.empty())
			out_.first_inconsistency = what;
	}

	bool reconnect()
	{
		while (!g_stop.load() && Clock::now() < deadline_) {
			PQreset(conn_);
			if (!connection_lost(conn_))
				return true;
			sleep_ms(100);
		}
		return false;
	}

	// Runs one append; fills `appended` with its events. False on error (the caller rolls back).
	bool append(const Op &op, std::vector<Pending> &appended)
	{
		std::vector<std::string> tokens;
		for (int i = 0; i < op.events; i++)
			tokens.push_back(new_token());
		for (const auto &t : tokens)
			appended.push_back(Pending{t, op.stream, 0, 0});

		Result res(nullptr);
		if (op.events == 1) {
			std::string data = "{\"token\":\"" + json_escape(tokens[0]) + "\",\"writer\":" +
							   std::to_string(index_) + "}";
			res = exec_params(conn_,
							  "SELECT first_version, last_version, first_position, last_position "
							  "FROM everest.append_event($1, 'T', $2::jsonb, NULL, -2)",
							  {op.stream, data});
		} else {
			std::string events = "[";
			for (size_t i = 0; i < tokens.size(); i++) {
				if (i)
					events += ",";
				events += "{\"type\":\"T\",\"data\":{\"token\":\"" + json_escape(tokens[i]) +
						  "\",\"writer\":" + std::to_string(index_) + ",\"index\":" + std::to_string(i) + "}}";
			}
			events += "]";
			res = exec_params(conn_,
							  "SELECT first_version, last_version, first_position, last_position "
							  "FROM everest.append_events($1, $2::jsonb, -2)",
							  {op.stream, events});
		}
		if (!res.ok()) {
			error(res.sqlstate(), res.message());
			return false;
		}
		if (res.rows() != 1) {
			inconsistent("append returned " + std::to_string(res.rows()) + " rows");
			return false;
		}
		int64_t fv = res.i64(0, 0), lv = res.i64(0, 1), fp = res.i64(0, 2), lp = res.i64(0, 3);
		int64_t n = op.events;
		if (lv - fv != n - 1 || lp - fp != n - 1 || fp <= 0 || fv < 0) {
			std::ostringstream s;
			s << "append of " << n << " to " << op.stream << " returned versions " << fv << ".." << lv
			  << ", positions " << fp << ".." << lp;
			inconsistent(s.str());
		}
		for (int64_t i = 0; i < n; i++) {
			Pending &p = appended[appended.size() - n + i];
			p.position = fp + i;
			p.version = fv + i;
		}
		return true;
	}

	bool statement(const char *sql)
	{
		Result res = exec(conn_, sql);
		if (!res.ok()) {
			error(res.sqlstate(), res.message());
			return false;
		}
		return true;
	}

	void give_up(const std::vector<Pending> &pending, const std::vector<Pending> &dead, Fate fate)
	{
		for (const auto &p : pending)
			out_.not_committed.emplace_back(p.token, fate);
		for (const auto &p : dead)
			out_.not_committed.emplace_back(p.token, fate == Fate::Unknown ? Fate::SavepointRolledBack : fate);
	}

	// One transaction; false when it failed (rolled back, or connection lost).
	bool transaction()
	{
		std::vector<Op> ops;
		int kind = rand_int(0, 2);
		if (kind == 0) {
			ops.push_back(Op{random_stream(), 1, 0});
			out_.tx_single++;
		} else if (kind == 1) {
			int n = rand_int(2, std::min(3, opt_.streams));
			std::vector<std::string> chosen;
			while ((int) chosen.size() < n) {
				std::string s = random_stream();
				if (std::find(chosen.begin(), chosen.end(), s) == chosen.end())
					chosen.push_back(s);
			}
			for (auto &s : chosen)
				ops.push_back(Op{s, 1, 0});
			out_.tx_multi++;
		} else {
			ops.push_back(Op{random_stream(), rand_int(2, 5), 0});
			out_.tx_batch++;
		}
		if (chance(opt_.savepoint_pct)) {
			// One more append, wrapped in a savepoint: mostly rolled back, sometimes released.
			Op sp{random_stream(), chance(50) ? 1 : rand_int(2, 4), chance(70) ? 1 : 2};
			ops.insert(ops.begin() + rand_int(0, (int) ops.size()), sp);
		}
		if (opt_.sorted_streams)
			std::stable_sort(ops.begin(), ops.end(), [](const Op &a, const Op &b) { return a.stream < b.stream; });

		std::vector<Pending> pending, dead;
		if (!statement("BEGIN"))
			return false;
		bool ok = true;
		for (const auto &op : ops) {
			if (op.savepoint != 0 && !(ok = statement("SAVEPOINT sp")))
				break;
			std::vector<Pending> appended;
			ok = append(op, appended);
			if (op.savepoint == 1) {
				dead.insert(dead.end(), appended.begin(), appended.end());
				if (!ok)
					break;
				if (!(ok = statement("ROLLBACK TO SAVEPOINT sp")))
					break;
				out_.savepoints_rolled_back++;
			} else {
				pending.insert(pending.end(), appended.begin(), appended.end());
				if (!ok)
					break;
				if (op.savepoint == 2) {
					if (!(ok = statement("RELEASE SAVEPOINT sp")))
						break;
					out_.savepoints_released++;
				}
			}
		}
		if (ok && opt_.max_sleep_ms > 0)
			sleep_ms(rand_int(0, opt_.max_sleep_ms));
		if (!ok) {
			if (!connection_lost(conn_))
				exec(conn_, "ROLLBACK");
			give_up(pending, dead, Fate::Failed);
			out_.tx_failed++;
			return false;
		}
		if (chance(opt_.rollback_pct)) {
			if (!statement("ROLLBACK")) {
				// A failed ROLLBACK still ends the transaction without committing it.
				give_up(pending, dead, Fate::RolledBack);
				out_.tx_failed++;
				return false;
			}
			give_up(pending, dead, Fate::RolledBack);
			out_.tx_rolled_back++;
			return true;
		}
		Result res = exec(conn_, "COMMIT");
		if (!res.ok() || std::strcmp(PQcmdStatus(res.res), "COMMIT") != 0) {
			if (res.ok())
				error("commit", std::string("COMMIT answered ") + PQcmdStatus(res.res));
			else
				error(res.sqlstate(), res.message());
			if (connection_lost(conn_)) {
				// The commit may or may not have happened before the connection went.
				give_up(pending, dead, Fate::Unknown);
				out_.tx_unknown++;
			} else {
				give_up(pending, dead, Fate::Failed);
				out_.tx_failed++;
			}
			return false;
		}
		for (const auto &p : pending)
			out_.committed.push_back(CommittedEvent{p.token, p.position, p.stream, p.version});
		for (const auto &p : dead)
			out_.not_committed.emplace_back(p.token, Fate::SavepointRolledBack);
		out_.tx_committed++;
		return true;
	}
};

// ---------------------------------------------------------------------------------------------
// Followers
// ---------------------------------------------------------------------------------------------

struct SeenEvent {
	int64_t position;
	std::string token;
	std::string stream;
	int64_t version;
};

struct FollowerResult {
	std::vector<SeenEvent> seen;
	long order_violations = 0;
	std::string first_order_violation;
	long reads = 0, empty_reads = 0, errors = 0, disconnects = 0;
	long seen_while_writing = 0;
	bool caught_up = false;
	bool connection_failed = false;
	std::string first_error;
	int64_t checkpoint = 0;
};

std::atomic<bool> g_writers_done{false};

FollowerResult follow(const Options &opt, int index, Clock::time_point give_up_at)
{
	FollowerResult out;
	PGconn *conn = connect_db(opt, "everest-stress-follower-" + std::to_string(index));
	if (connection_lost(conn)) {
		out.connection_failed = true;
		out.first_error = PQerrorMessage(conn);
		PQfinish(conn);
		return out;
	}
	int64_t checkpoint = 0, last = 0;
	const std::string batch = std::to_string(opt.batch);
	for (;;) {
		if (Clock::now() > give_up_at)
			break;
		// Read the flag before the query: an empty read that started after every writer was done
		// means nothing is left below safe_position(), which no longer moves.
		bool done_before = g_writers_done.load();
		Result res = exec_params(conn,
								 "SELECT position, data->>'token', stream, version "
								 "FROM everest.read_all_forward($1, $2)",
								 {std::to_string(checkpoint + 1), batch});
		out.reads++;
		if (!res.ok()) {
			bool lost = connection_lost(conn);
			if (opt.interruptions && (lost || interruption_error(res.sqlstate()))) {
				out.disconnects++;
			} else {
				out.errors++;
				if (out.first_error.empty())
					out.first_error = res.message();
			}
			// Reconnect (the checkpoint stays): at once, then every 100 ms while the server is away.
			while (connection_lost(conn) && Clock::now() < give_up_at) {
				PQreset(conn);
				if (connection_lost(conn))
					sleep_ms(100);
			}
			if (connection_lost(conn)) {
				out.connection_failed = true;
				break;
			}
			sleep_ms(10);
			continue;
		}
		int n = res.rows();
		for (int i = 0; i < n; i++) {
			SeenEvent e{res.i64(i, 0), res.null(i, 1) ? std::string() : std::string(res.get(i, 1)),
						res.get(i, 2), res.i64(i, 3)};
			if (e.position <= last) {
				out.order_violations++;
				if (out.first_order_violation.empty())
					out.first_order_violation = "position " + std::to_string(e.position) + " after " +
												std::to_string(last);
			}
			last = std::max(last, e.position);
			if (!done_before)
				out.seen_while_writing++;
			out.seen.push_back(std::move(e));
		}
		if (n > 0) {
			checkpoint = last;
			continue;
		}
		out.empty_reads++;
		if (done_before) {
			out.caught_up = true;
			break;
		}
		sleep_ms(2 + index);
	}
	out.checkpoint = checkpoint;
	PQfinish(conn);
	return out;
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

struct Tap {
	int passed = 0, failed = 0;
	void check(bool ok, const std::string &what, const std::string &why = "")
	{
		std::lock_guard<std::mutex> lock(g_print_mutex);
		if (ok) {
			passed++;
			std::printf("ok - %s\n", what.c_str());
		} else {
			failed++;
			std::printf("not ok - %s\n", what.c_str());
			if (!why.empty())
				std::printf("#   %s\n", why.c_str());
		}
		std::fflush(stdout);
	}
};

const char *fate_name(Fate f)
{
	switch (f) {
	case Fate::RolledBack: return "rolled back";
	case Fate::SavepointRolledBack: return "rolled back to a savepoint";
	case Fate::Failed: return "of a failed transaction";
	case Fate::Unknown: return "of an unknown outcome";
	}
	return "?";
}

void usage()
{
	std::fprintf(stderr,
				 "usage: everest-stress --dbname DB [--seconds 30] [--writers 6] [--followers 2]\n"
				 "         [--streams 50] [--batch 500] [--max-sleep-ms 20] [--rollback-pct 10]\n"
				 "         [--savepoint-pct 10] [--catchup-seconds 60] [--seed N] [--sorted-streams]\n"
				 "         [--stream-prefix P] [--writers-only [--record FILE]] [--interruptions] [--quiet]\n");
}

bool parse(int argc, char **argv, Options &opt)
{
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&](const char *name) -> const char * {
			if (i + 1 >= argc) {
				std::fprintf(stderr, "everest-stress: %s needs a value\n", name);
				return nullptr;
			}
			return argv[++i];
		};
		auto number = [&](const char *name, int &out, int min) {
			const char *v = value(name);
			if (!v)
				return false;
			char *end = nullptr;
			long n = std::strtol(v, &end, 10);
			if (*v == '\0' || *end != '\0' || n < min || n > 1000000) {
				std::fprintf(stderr, "everest-stress: bad %s: %s\n", name, v);
				return false;
			}
			out = (int) n;
			return true;
		};
		if (a == "--dbname" || a == "-d") {
			const char *v = value("--dbname");
			if (!v)
				return false;
			opt.dbname = v;
		} else if (a == "--seconds") {
			if (!number("--seconds", opt.seconds, 1)) return false;
		} else if (a == "--writers") {
			if (!number("--writers", opt.writers, 1)) return false;
		} else if (a == "--followers") {
			if (!number("--followers", opt.followers, 0)) return false;
		} else if (a == "--streams") {
			if (!number("--streams", opt.streams, 3)) return false;
		} else if (a == "--batch") {
			if (!number("--batch", opt.batch, 1)) return false;
		} else if (a == "--max-sleep-ms") {
			if (!number("--max-sleep-ms", opt.max_sleep_ms, 0)) return false;
		} else if (a == "--rollback-pct") {
			if (!number("--rollback-pct", opt.rollback_pct, 0)) return false;
		} else if (a == "--savepoint-pct") {
			if (!number("--savepoint-pct", opt.savepoint_pct, 0)) return false;
		} else if (a == "--catchup-seconds") {
			if (!number("--catchup-seconds", opt.catchup_seconds, 1)) return false;
		} else if (a == "--seed") {
			const char *v = value("--seed");
			if (!v)
				return false;
			opt.seed = std::strtoull(v, nullptr, 10);
			opt.seed_given = true;
		} else if (a == "--sorted-streams") {
			opt.sorted_streams = true;
		} else if (a == "--stream-prefix") {
			const char *v = value("--stream-prefix");
			if (!v)
				return false;
			opt.stream_prefix = v;
		} else if (a == "--interruptions") {
			opt.interruptions = true;
		} else if (a == "--writers-only") {
			opt.writers_only = true;
		} else if (a == "--record") {
			const char *v = value("--record");
			if (!v)
				return false;
			opt.record = v;
		} else if (a == "--quiet" || a == "-q") {
			opt.quiet = true;
		} else if (a == "--help" || a == "-h") {
			usage();
			std::exit(0);
		} else {
			std::fprintf(stderr, "everest-stress: unknown option %s\n", a.c_str());
			return false;
		}
	}
	if (opt.dbname.empty()) {
		const char *env = std::getenv("PGDATABASE");
		if (env)
			opt.dbname = env;
	}
	if (opt.dbname.empty()) {
		std::fprintf(stderr, "everest-stress: --dbname is required\n");
		return false;
	}
	if (opt.rollback_pct > 100 || opt.savepoint_pct > 100) {
		std::fprintf(stderr, "everest-stress: percentages are 0..100\n");
		return false;
	}
	return true;
}

std::string join_counts(const std::map<std::string, long> &m)
{
	std::string s;
	for (const auto &kv : m)
		s += (s.empty() ? "" : ", ") + kv.first + " x" + std::to_string(kv.second);
	return s.empty() ? "none" : s;
}

}	// namespace

int main(int argc, char **argv)
{
	Options opt;
	if (!parse(argc, argv, opt)) {
		usage();
		return 2;
	}
	if (!opt.seed_given)
		opt.seed = (uint64_t) std::chrono::system_clock::now().time_since_epoch().count();
	std::signal(SIGINT, on_signal);
	std::signal(SIGTERM, on_signal);

	char run_id[32];
	std::snprintf(run_id, sizeof run_id, "r%06llx", (unsigned long long) (opt.seed % 0xffffff));

	// The main connection: setup checks now, final checks at the end.
	PGconn *main_conn = connect_db(opt, "everest-stress-main");
	if (connection_lost(main_conn)) {
		std::printf("not ok - connect to %s\n#   %s\n", opt.dbname.c_str(), PQerrorMessage(main_conn));
		return 2;
	}
	{
		Result r = exec(main_conn, "SELECT everest.safe_position()");
		if (!r.ok()) {
			std::printf("not ok - everest is usable in %s\n#   %s\n", opt.dbname.c_str(), r.message().c_str());
			return 2;
		}
	}

	std::printf("# everest-stress: %d s, %d writers, %d followers, %d streams, seed %llu%s\n",
				opt.seconds, opt.writers, opt.writers_only ? 0 : opt.followers, opt.streams,
				(unsigned long long) opt.seed, opt.writers_only ? ", writers only" : "");
	std::fflush(stdout);

	Clock::time_point start = Clock::now();
	Clock::time_point deadline = start + std::chrono::seconds(opt.seconds);
	Clock::time_point give_up_at = deadline + std::chrono::seconds(opt.catchup_seconds);

	std::vector<WriterResult> wres(opt.writers);
	std::vector<FollowerResult> fres(opt.writers_only ? 0 : opt.followers);
	std::vector<std::thread> writer_threads, follower_threads;
	for (int i = 0; i < (int) fres.size(); i++)
		follower_threads.emplace_back([&, i] { fres[i] = follow(opt, i + 1, give_up_at); });
	for (int i = 0; i < opt.writers; i++)
		writer_threads.emplace_back([&, i] {
			Writer w(opt, i + 1, run_id, deadline);
			wres[i] = w.run();
		});
	for (auto &t : writer_threads)
		t.join();
	double write_seconds = std::chrono::duration<double>(Clock::now() - start).count();

	// Totals over the writers.
	long tx_committed = 0, tx_rolled_back = 0, tx_failed = 0, tx_unknown = 0, tx_single = 0, tx_multi = 0,
		 tx_batch = 0, sp_rolled_back = 0, sp_released = 0, inconsistent = 0, lost = 0;
	std::map<std::string, long> errors;
	std::string first_inconsistency, first_error;
	std::unordered_map<std::string, const CommittedEvent *> committed;
	std::unordered_map<std::string, Fate> not_committed;
	std::map<Fate, long> not_committed_by_fate;
	int64_t max_committed = 0;
	long duplicate_tokens = 0;
	for (const auto &w : wres) {
		tx_committed += w.tx_committed;
		tx_rolled_back += w.tx_rolled_back;
		tx_failed += w.tx_failed;
		tx_unknown += w.tx_unknown;
		tx_single += w.tx_single;
		tx_multi += w.tx_multi;
		tx_batch += w.tx_batch;
		sp_rolled_back += w.savepoints_rolled_back;
		sp_released += w.savepoints_released;
		inconsistent += w.inconsistent_results;
		lost += w.connections_lost;
		for (const auto &kv : w.errors)
			errors[kv.first] += kv.second;
		if (first_inconsistency.empty())
			first_inconsistency = w.first_inconsistency;
		if (first_error.empty())
			first_error = w.first_error;
		for (const auto &e : w.committed) {
			if (!committed.emplace(e.token, &e).second)
				duplicate_tokens++;
			max_committed = std::max(max_committed, e.position);
		}
		for (const auto &nc : w.not_committed) {
			not_committed.emplace(nc.first, nc.second);
			not_committed_by_fate[nc.second]++;
		}
	}

	std::printf("# writers: %.1f s, %ld transactions committed (%.0f/s), %ld rolled back, %ld failed, "
				"%ld of unknown outcome; kinds: %ld single, %ld multi-stream, %ld batch; savepoints: "
				"%ld rolled back, %ld released\n",
				write_seconds, tx_committed, tx_committed / std::max(write_seconds, 0.001), tx_rolled_back,
				tx_failed, tx_unknown, tx_single, tx_multi, tx_batch, sp_rolled_back, sp_released);
	std::printf("# events: %zu committed (max position %lld), %ld rolled back, %ld rolled back to a "
				"savepoint, %ld in failed transactions, %ld of unknown outcome\n",
				committed.size(), (long long) max_committed, not_committed_by_fate[Fate::RolledBack],
				not_committed_by_fate[Fate::SavepointRolledBack], not_committed_by_fate[Fate::Failed],
				not_committed_by_fate[Fate::Unknown]);
	std::printf("# errors: %s; connections lost: %ld%s%s\n", join_counts(errors).c_str(), lost,
				first_error.empty() ? "" : "; first: ", first_error.c_str());
	std::fflush(stdout);

	if (opt.writers_only) {
		g_writers_done.store(true);
		int rc = 0;
		if (!opt.record.empty()) {
			std::ofstream f(opt.record);
			for (const auto &w : wres)
				for (const auto &e : w.committed)
					f << e.token << '\t' << e.position << '\n';
			f.close();
			if (!f) {
				std::fprintf(stderr, "everest-stress: cannot write %s\n", opt.record.c_str());
				rc = 2;
			}
		}
		PQfinish(main_conn);
		return committed.empty() ? 1 : rc;
	}

	// Events of this run's streams; with --interruptions, others are other sessions' and ignored.
	const std::string prefix = opt.stream_prefix + "-";
	auto ours = [&](const std::string &stream) {
		return !opt.interruptions || stream.compare(0, prefix.size(), prefix) == 0;
	};

	// Every writer is done: nothing is in flight, so safe_position() no longer moves. A fresh
	// connection for the final checks: the first one may have died with an interruption.
	PQfinish(main_conn);
	main_conn = connect_db(opt, "everest-stress-main");
	while (connection_lost(main_conn) && Clock::now() < give_up_at) {
		sleep_ms(100);
		PQreset(main_conn);
	}
	Tap tap;
	int64_t safe = -1, last_drawn = -1;
	long in_flight = -1;
	{
		Result r = exec(main_conn, "SELECT everest.safe_position(), (SELECT count(*) FROM everest.in_flight_appends())");
		if (r.ok() && r.rows() == 1) {
			safe = r.i64(0, 0);
			in_flight = r.i64(0, 1);
		} else {
			note(opt, "safe_position() failed: " + r.message());
		}
		Result s = exec(main_conn, "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM everest.position_seq");
		if (s.ok() && s.rows() == 1 && !s.null(0, 0))
			last_drawn = s.i64(0, 0);
	}
	g_writers_done.store(true);
	for (auto &t : follower_threads)
		t.join();

	std::printf("# seen per follower:");
	for (size_t i = 0; i < fres.size(); i++)
		std::printf(" %zu", fres[i].seen.size());
	std::printf(" (while writing:");
	for (size_t i = 0; i < fres.size(); i++)
		std::printf(" %ld", fres[i].seen_while_writing);
	std::printf("); reads per follower:");
	for (size_t i = 0; i < fres.size(); i++)
		std::printf(" %ld (%ld empty)", fres[i].reads, fres[i].empty_reads);
	std::printf("\n");
	std::printf("SUMMARY: events committed %zu, rolled back %zu (transactions committed %ld, rolled "
				"back %ld, failed %ld), seen per follower",
				committed.size(), not_committed.size(), tx_committed, tx_rolled_back, tx_failed);
	for (size_t i = 0; i < fres.size(); i++)
		std::printf(" %zu", fres[i].seen.size());
	std::printf(", safe_position %lld, max committed position %lld\n", (long long) safe, (long long) max_committed);
	std::fflush(stdout);

	// --- writers
	tap.check(tx_committed > 0 && !committed.empty(),
			  "writers committed events (" + std::to_string(committed.size()) + " in " +
				  std::to_string(tx_committed) + " transactions)");
	tap.check((opt.rollback_pct == 0 || tx_rolled_back > 0) && (opt.savepoint_pct == 0 || sp_rolled_back > 0),
			  "writers rolled back transactions (" + std::to_string(tx_rolled_back) + ") and savepoints (" +
				  std::to_string(sp_rolled_back) + ")",
			  "too short a run to exercise rollbacks");
	tap.check(inconsistent == 0 && duplicate_tokens == 0,
			  "append results are consistent (consecutive versions and positions per batch)",
			  first_inconsistency.empty() ? "a token was recorded twice" : first_inconsistency);
	if (!opt.interruptions)
		tap.check(lost == 0 && tx_unknown == 0, "writers kept their connections",
				  std::to_string(lost) + " connections lost");
	{
		long unexpected = 0;
		for (const auto &kv : errors)
			if (kv.first != "40P01" && kv.first != "40001" && !(opt.interruptions && interruption_error(kv.first)))
				unexpected += kv.second;
		tap.check(unexpected == 0,
				  "writers met no errors but deadlocks and serialization failures (" + join_counts(errors) + ")",
				  first_error);
	}

	// --- the horizon once everything is done
	tap.check(in_flight == 0, "no append is left in flight once the writers are done",
			  "everest.in_flight_appends() has " + std::to_string(in_flight) + " rows");
	tap.check(safe >= max_committed,
			  "safe_position() (" + std::to_string(safe) + ") reached the highest committed position (" +
				  std::to_string(max_committed) + ")");
	if (last_drawn >= 0)
		tap.check(safe == last_drawn,
				  "safe_position() equals the last drawn position (" + std::to_string(last_drawn) +
					  ") once nothing is in flight");

	// --- each follower
	for (size_t fi = 0; fi < fres.size(); fi++) {
		const FollowerResult &f = fres[fi];
		std::string who = "follower " + std::to_string(fi + 1);
		std::unordered_set<std::string> seen_tokens;
		long twice = 0, extra_not_committed = 0, extra_unknown = 0, extra_foreign = 0, wrong_position = 0;
		long missing = 0;
		std::string first_extra, first_wrong, first_missing;
		std::map<Fate, long> extra_by_fate;
		long others = 0;
		for (const auto &e : f.seen) {
			if (!ours(e.stream)) {
				others++;
				continue;
			}
			if (!seen_tokens.insert(e.token).second) {
				twice++;
				continue;
			}
			auto c = committed.find(e.token);
			if (c != committed.end()) {
				if (c->second->position != e.position || c->second->stream != e.stream ||
					c->second->version != e.version) {
					wrong_position++;
					if (first_wrong.empty())
						first_wrong = e.token + " at position " + std::to_string(e.position) + " (" + e.stream +
									  "@" + std::to_string(e.version) + "), its writer was told " +
									  std::to_string(c->second->position) + " (" + c->second->stream + "@" +
									  std::to_string(c->second->version) + ")";
				}
				continue;
			}
			auto nc = not_committed.find(e.token);
			if (nc != not_committed.end() && nc->second == Fate::Unknown) {
				extra_unknown++;	// its commit outcome was lost: seeing it is fine
				continue;
			}
			if (nc != not_committed.end()) {
				extra_not_committed++;
				extra_by_fate[nc->second]++;
			} else {
				extra_foreign++;
			}
			if (first_extra.empty())
				first_extra = "token '" + e.token + "' at position " + std::to_string(e.position) +
							  (nc != not_committed.end()
								   ? std::string(", an event ") + fate_name(nc->second)
								   : std::string(", never written by this run"));
		}
		std::vector<int64_t> missing_positions;
		for (const auto &kv : committed)
			if (!seen_tokens.count(kv.first)) {
				missing++;
				missing_positions.push_back(kv.second->position);
			}
		std::sort(missing_positions.begin(), missing_positions.end());
		if (!missing_positions.empty()) {
			first_missing = "missing positions:";
			for (size_t i = 0; i < missing_positions.size() && i < 10; i++)
				first_missing += " " + std::to_string(missing_positions[i]);
			if (missing_positions.size() > 10)
				first_missing += " ...";
		}

		if (opt.interruptions)
			note(opt, who + ": " + std::to_string(f.disconnects) + " reads lost to interruptions, " +
						  std::to_string(others) + " events of other sessions ignored");
		if (f.connection_failed || f.errors > 0)
			tap.check(false, who + " read without errors", std::to_string(f.errors) + " errors; first: " + f.first_error);
		tap.check(f.caught_up, who + " caught up with safe_position() after the writers stopped",
				  "gave up at checkpoint " + std::to_string(f.checkpoint) + ", safe_position " + std::to_string(safe));
		tap.check(f.order_violations == 0, who + " read positions in strictly increasing order",
				  std::to_string(f.order_violations) + " violations; first: " + f.first_order_violation);
		tap.check(missing == 0,
				  who + " saw every committed event (" + std::to_string(committed.size() - missing) + " of " +
					  std::to_string(committed.size()) + ", missed " + std::to_string(missing) + ")",
				  first_missing);
		tap.check(twice == 0, who + " saw no event twice", std::to_string(twice) + " duplicates");
		tap.check(extra_not_committed == 0 && extra_foreign == 0,
				  who + " saw no rolled-back event (" + std::to_string(extra_by_fate[Fate::RolledBack]) +
					  " rolled back, " + std::to_string(extra_by_fate[Fate::SavepointRolledBack]) +
					  " savepoint, " + std::to_string(extra_by_fate[Fate::Failed]) + " failed, " +
					  std::to_string(extra_foreign) + " unknown tokens)",
				  first_extra);
		tap.check(wrong_position == 0,
				  who + " saw each event at the position and version its writer was told",
				  std::to_string(wrong_position) + " differ; first: " + first_wrong);
		tap.check(f.seen_while_writing > 0, who + " saw events while the writers were running (" +
												   std::to_string(f.seen_while_writing) + ")",
				  "the horizon did not move during the run");
	}

	// --- one more read of all of $all, and the streams' versions in $all order
	{
		std::vector<SeenEvent> all;
		int64_t from = 1;
		bool ok = true;
		std::string why;
		for (;;) {
			Result r = exec_params(main_conn,
								   "SELECT position, data->>'token', stream, version FROM everest.read_all_forward($1, 10000)",
								   {std::to_string(from)});
			if (!r.ok()) {
				ok = false;
				why = r.message();
				break;
			}
			for (int i = 0; i < r.rows(); i++)
				all.push_back(SeenEvent{r.i64(i, 0), r.null(i, 1) ? "" : r.get(i, 1), r.get(i, 2), r.i64(i, 3)});
			if (r.rows() == 0)
				break;
			from = all.back().position + 1;
		}
		long matched = 0, other = 0, theirs = 0;
		for (const auto &e : all) {
			if (!ours(e.stream)) {
				theirs++;
				continue;
			}
			auto c = committed.find(e.token);
			if (c != committed.end() && c->second->position == e.position)
				matched++;
			else if (!(not_committed.count(e.token) && not_committed[e.token] == Fate::Unknown))
				other++;
		}
		if (ok && (matched != (long) committed.size() || other != 0)) {
			ok = false;
			why = std::to_string(all.size()) + " events read, " + std::to_string(matched) +
				  " match the committed ones, " + std::to_string(other) + " others";
		}
		tap.check(ok, "a final read of $all returns exactly the committed events (" + std::to_string(all.size() - theirs) + ")", why);

		std::unordered_map<std::string, int64_t> next_version;
		long gaps = 0;
		std::string first_gap;
		for (const auto &e : all) {
			int64_t &nv = next_version[e.stream];
			if (e.version != nv) {
				gaps++;
				if (first_gap.empty())
					first_gap = e.stream + " has version " + std::to_string(e.version) + " at position " +
								std::to_string(e.position) + ", expected " + std::to_string(nv);
			}
			nv = e.version + 1;
		}
		tap.check(gaps == 0,
				  "every stream's versions run 0, 1, 2, ... in $all order (" + std::to_string(next_version.size()) +
					  " streams)",
				  first_gap);
	}

	PQfinish(main_conn);
	std::printf("1..%d\n", tap.passed + tap.failed);
	std::printf("# %d passed, %d failed\n", tap.passed, tap.failed);
	return tap.failed == 0 ? 0 : 1;
}
