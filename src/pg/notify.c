/*
 * Notifications (DESIGN.md section 5): LISTEN everest receives {"position": N}, N being the new
 * safe_position() of the listener's database.
 *
 * Appending transactions never NOTIFY (PostgreSQL serializes the commits of all transactions
 * that do). Instead each database with appends gets a notifier, a background worker started on
 * demand by the first append there: committing and aborting appenders set its latch, and it
 * computes safe_position() and NOTIFYs when it moved. Many commits between two of its rounds
 * make one notification, and it pauses everest.notify_min_interval_ms between notifications, so
 * a burst of 10,000 appends produces a few dozen. Its position is safe by construction: it is
 * the horizon itself.
 *
 * A notifier idles out after ev_notifier_idle_ms() without work (so DROP DATABASE, which waits a
 * few seconds for other sessions to leave, is not blocked), and the next append starts it again;
 * the core decides its pacing (src/core/policy.cpp).
 * After a restart shared memory is new and the first append starts it again.
 */
#include "everest_pg.h"
#include "compat.h"

#include "access/xact.h"
#include "commands/async.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "catalog/pg_type.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#define EV_MAX_NOTIFIERS 64
#define EV_NOTIFIER_START_TIMEOUT_MS 10000

typedef struct EvNotifier
{
	Oid			dbid;			/* InvalidOid: free */
	int			pid;			/* 0 while starting */
	TimestampTz requested;		/* when a backend asked for it */
	Latch	   *latch;
	pg_atomic_uint32 incarnation;	/* odd while a notifier takes or leaves the slot */
	pg_atomic_uint64 announced; /* the safe_position() it last woke waiters for (0: none yet) */
} EvNotifier;

typedef struct EvNotifyShared
{
	LWLock	   *lock;
	EvNotifier	notifiers[EV_MAX_NOTIFIERS];
} EvNotifyShared;

static EvNotifyShared *ev_notify = NULL;

bool		ev_notify_enabled = true;
int			ev_notify_min_interval_ms = 10;
int			ev_waiter_wakeups_per_second = 300;
int			ev_horizon_idle_timeout_ms = 0;

/* This backend's notifier slot, remembered between appends. */
static int	ev_my_notifier = -1;

Size
ev_notify_shmem_size(void)
{
	return sizeof(EvNotifyShared);
}

void
ev_notify_shmem_startup(LWLock *lock)
{
	bool		found;

	ev_notify = ShmemInitStruct("everest notifiers", sizeof(EvNotifyShared), &found);
	if (!found)
	{
		memset(ev_notify, 0, sizeof(EvNotifyShared));
		ev_notify->lock = lock;
		for (int i = 0; i < EV_MAX_NOTIFIERS; i++)
		{
			pg_atomic_init_u32(&ev_notify->notifiers[i].incarnation, 0);
			pg_atomic_init_u64(&ev_notify->notifiers[i].announced, 0);
		}
	}
}

void
ev_notify_define_settings(void)
{
	DefineCustomBoolVariable("everest.notify",
							 "Sends NOTIFY everest with the new safe_position() after appends commit.",
							 "A background worker per database sends them; appending transactions never do.",
							 &ev_notify_enabled, true, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("everest.horizon_idle_timeout",
							"Ends sessions that hold the $all horizon while idle in a transaction for this long.",
							"An append left open freezes $all for every follower of the database. Set in "
							"postgresql.conf (sighup): an application role cannot raise it. 0 turns it off.",
							&ev_horizon_idle_timeout_ms, 0, 0, INT_MAX, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("everest.notify_min_interval_ms",
							"Shortest pause between two notifications of one database.",
							"Appends committed meanwhile are announced together by the next one.",
							&ev_notify_min_interval_ms, 10, 0, 1000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("everest.waiter_wakeups_per_second",
							"How many wake-ups of sessions in wait_for_position a notifier makes a second, at most.",
							"All waiters are woken together; with more waiters than this allows at the "
							"notification interval, each is woken less often (at least once a second). 0: "
							"as often as notifications.",
							&ev_waiter_wakeups_per_second, 300, 0, 1000000, PGC_SIGHUP, 0,
							NULL, NULL, NULL);
}

static bool
ev_start_notifier(int slot)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "everest");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "everest_notifier_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "everest notifier for database %u", MyDatabaseId);
	snprintf(worker.bgw_type, BGW_MAXLEN, "everest notifier");
	worker.bgw_main_arg = Int32GetDatum(slot);
	worker.bgw_notify_pid = 0;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
	{
		ereport(LOG,
				(errmsg("everest: could not start a notifier for database %u", MyDatabaseId),
				 errhint("Raise max_worker_processes; until a notifier runs, appending transactions publish "
						 "the horizon for standbys themselves (their commits queue on it) and subscribers "
						 "catch up by polling.")));
		return false;
	}
	return true;
}

/*
 * Called by an appender before its first position: makes sure its database has a notifier, and
 * says whether one runs or is starting (false: none could be had, and the appender publishes the
 * horizon itself at commit, horizon.c). The common case (a notifier is running) reads two words
 * without a lock.
 */
bool
ev_notify_ensure_notifier(void)
{
	TimestampTz now;
	int			free_slot = -1;
	int			start = -1;

	if (ev_notify == NULL)
		return false;
	if (ev_my_notifier >= 0)
	{
		volatile EvNotifier *n = &ev_notify->notifiers[ev_my_notifier];

		if (n->dbid == MyDatabaseId && n->pid != 0)
			return true;
	}

	now = GetCurrentTimestamp();
	LWLockAcquire(ev_notify->lock, LW_EXCLUSIVE);
	for (int i = 0; i < EV_MAX_NOTIFIERS; i++)
	{
		EvNotifier *n = &ev_notify->notifiers[i];

		if (n->dbid == MyDatabaseId)
		{
			ev_my_notifier = i;
			/* Running, or asked for recently: nothing to do. */
			if (n->pid != 0 ||
				!TimestampDifferenceExceeds(n->requested, now, EV_NOTIFIER_START_TIMEOUT_MS))
			{
				LWLockRelease(ev_notify->lock);
				return true;
			}
			start = i;			/* asked for long ago and never came: ask again */
			break;
		}
		if (n->dbid == InvalidOid && free_slot < 0)
			free_slot = i;
	}
	if (start < 0)
		start = free_slot;
	if (start >= 0)
	{
		ev_notify->notifiers[start].dbid = MyDatabaseId;
		ev_notify->notifiers[start].pid = 0;
		ev_notify->notifiers[start].latch = NULL;
		ev_notify->notifiers[start].requested = now;
		ev_my_notifier = start;
	}
	LWLockRelease(ev_notify->lock);

	if (start < 0)
		return false;			/* every notifier slot is taken */
	if (ev_start_notifier(start))
		return true;
	/* No worker slot: free ours, so that the next appender asks again. */
	LWLockAcquire(ev_notify->lock, LW_EXCLUSIVE);
	if (ev_notify->notifiers[start].pid == 0 && ev_notify->notifiers[start].dbid == MyDatabaseId)
		ev_notify->notifiers[start].dbid = InvalidOid;
	LWLockRelease(ev_notify->lock);
	ev_my_notifier = -1;
	return false;
}

/* Called when this backend's positions in flight changed (commit, abort, savepoint rollback). */
void
ev_notify_wake(void)
{
	Latch	   *latch;

	if (ev_notify == NULL || ev_my_notifier < 0)
		return;
	latch = ((volatile EvNotifier *) &ev_notify->notifiers[ev_my_notifier])->latch;
	if (latch != NULL)
		SetLatch(latch);
}

static void
ev_notifier_leave(int code, Datum arg)
{
	int			slot = DatumGetInt32(arg);

	LWLockAcquire(ev_notify->lock, LW_EXCLUSIVE);
	if (ev_notify->notifiers[slot].pid == MyProcPid)
	{
		pg_atomic_fetch_add_u32(&ev_notify->notifiers[slot].incarnation, 1);
		ev_notify->notifiers[slot].latch = NULL;
		ev_notify->notifiers[slot].pid = 0;
		ev_notify->notifiers[slot].dbid = InvalidOid;
		pg_atomic_write_u64(&ev_notify->notifiers[slot].announced, 0);
		pg_atomic_fetch_add_u32(&ev_notify->notifiers[slot].incarnation, 1);
	}
	LWLockRelease(ev_notify->lock);
}

static bool ev_holders_seen = false;
static int	ev_notifier_slot = -1;	/* the notifier's own slot */
static int	ev_announced_slot = 0;	/* a waiter's guess where its database's notifier is */

/*
 * What this database's notifier last woke the waiters of wait_for_position for (0: no notifier
 * runs, or it has not woken them yet): a safe_position() that was exact when announced, and that
 * moves only when the waiters are woken (so that a waiter's own recheck does not return between
 * two rationed wake-ups), read without a lock, so that the
 * waiters it wakes (wait_for_position) do not all compute the horizon again under the lock every
 * appender takes. The slot's incarnation tells a value of another notifier from its own.
 */
int64
ev_notify_announced(void)
{
	if (ev_notify == NULL)
		return 0;
	for (int k = 0; k < EV_MAX_NOTIFIERS; k++)
	{
		int			i = (ev_announced_slot + k) % EV_MAX_NOTIFIERS;
		EvNotifier *n = &ev_notify->notifiers[i];
		uint32		before = pg_atomic_read_u32(&n->incarnation);
		uint64		value;

		pg_read_barrier();
		if ((before & 1) != 0 || ((volatile EvNotifier *) n)->dbid != MyDatabaseId ||
			((volatile EvNotifier *) n)->pid == 0)
			continue;
		value = pg_atomic_read_u64(&n->announced);
		pg_read_barrier();
		if (pg_atomic_read_u32(&n->incarnation) != before)
			continue;
		ev_announced_slot = i;
		return (int64) value;
	}
	return 0;
}	/* the last round saw sessions holding the horizon */

/*
 * everest.horizon_idle_timeout: a session of this database that holds positions in flight and has
 * been idle in its transaction longer than the timeout is terminated (as pg_terminate_backend
 * would), so that one forgotten transaction cannot freeze $all. Returns whether any session holds
 * the horizon (the notifier then stays to watch it).
 */
static bool
ev_enforce_horizon_idle_timeout(void)
{
	int			pids[64];
	int			n = ev_horizon_holder_pids(pids, lengthof(pids));
	TimestampTz now = GetCurrentTimestamp();
	int			nbackends;

	if (n == 0 || ev_horizon_idle_timeout_ms <= 0)
		return n > 0;
	nbackends = pgstat_fetch_stat_numbackends();
	for (int b = 1; b <= nbackends; b++)
	{
		LocalPgBackendStatus *local = ev_local_backend_status(b);
		PgBackendStatus *st = local ? &local->backendStatus : NULL;

		if (st == NULL || (st->st_state != STATE_IDLEINTRANSACTION && st->st_state != STATE_IDLEINTRANSACTION_ABORTED))
			continue;
		for (int i = 0; i < n; i++)
			if (st->st_procpid == pids[i] &&
				TimestampDifferenceExceeds(st->st_state_start_timestamp, now, ev_horizon_idle_timeout_ms))
			{
				ereport(LOG,
						(errmsg("everest: terminating process %d, idle in a transaction that holds the $all horizon "
								"for more than everest.horizon_idle_timeout (%d ms)", pids[i], ev_horizon_idle_timeout_ms)));
				(void) kill(pids[i], SIGTERM);
			}
	}
	return true;
}

/*
 * One round: publish the horizon and NOTIFY it (unless everest.notify is off) if it moved.
 * Returns the position published, or `last`.
 */
static int64
ev_notifier_round(int64 last)
{
	int64		safe;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	pgstat_report_activity(STATE_RUNNING, "everest notifier: computing safe_position()");
	PushActiveSnapshot(GetTransactionSnapshot());
	safe = ev_safe_position();	/* ERROR (and exit) if the extension is gone */
	if (safe > last)
	{
		char		payload[64];
		ev_error	err;

		ev_publish_horizon(safe, true);
		if (ev_notify_enabled)
		{
			if (!ev_render_notification(safe, payload, sizeof(payload), &err))
				ev_raise(&err);
			Async_Notify("everest", payload);
			ev_stats_add(EV_STAT_NOTIFICATIONS, 1);
		}
	}
	ev_holders_seen = ev_enforce_horizon_idle_timeout();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	return safe > last ? safe : last;
}

PGDLLEXPORT void everest_notifier_main(Datum arg);

void
everest_notifier_main(Datum arg)
{
	int			slot = DatumGetInt32(arg);
	Oid			dbid;
	int64		last = 0;
	int64		woken_for = 0;	/* the horizon the waiters were last woken for */
	TimestampTz last_work;
	TimestampTz last_wake = 0;
	int			wake_due_ms = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	LWLockAcquire(ev_notify->lock, LW_EXCLUSIVE);
	dbid = ev_notify->notifiers[slot].dbid;
	if (!OidIsValid(dbid) || ev_notify->notifiers[slot].pid != 0)
	{
		LWLockRelease(ev_notify->lock);
		proc_exit(0);			/* the slot was given up or taken meanwhile */
	}
	pg_atomic_fetch_add_u32(&ev_notify->notifiers[slot].incarnation, 1);
	pg_atomic_write_u64(&ev_notify->notifiers[slot].announced, 0);
	ev_notify->notifiers[slot].pid = MyProcPid;
	ev_notify->notifiers[slot].latch = MyLatch;
	pg_atomic_fetch_add_u32(&ev_notify->notifiers[slot].incarnation, 1);
	ev_notifier_slot = slot;
	LWLockRelease(ev_notify->lock);
	before_shmem_exit(ev_notifier_leave, Int32GetDatum(slot));

	BackgroundWorkerInitializeConnectionByOid(dbid, InvalidOid, 0);
	last_work = GetCurrentTimestamp();

	for (;;)
	{
		int64		before = last;
		int			rc;
		ev_notifier_facts facts;
		ev_notifier_step step;

		ev_waiter_wake_facts wf;
		ev_waiter_wake wake;

		rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					   wake_due_ms > 0 ? Min(wake_due_ms, ev_notifier_idle_ms() / 4) : ev_notifier_idle_ms() / 4,
					   PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		last = ev_notifier_round(last);

		/* wait_for_position: woken together, rationed (docs/topologies.md, "What waiting costs") */
		wf.pending = last > woken_for;
		wf.waiters = ev_horizon_waiters();
		wf.ms_since_wake = last_wake == 0 ? INT64_MAX :
			TimestampDifferenceMilliseconds(last_wake, GetCurrentTimestamp());
		wf.min_interval_ms = ev_notify_min_interval_ms;
		wf.wakeups_per_second = ev_waiter_wakeups_per_second;
		ev_plan_waiter_wake(&wf, &wake);
		wake_due_ms = wake.due_in_ms;
		if (wake.wake)
		{
			pg_atomic_write_u64(&ev_notify->notifiers[ev_notifier_slot].announced, (uint64) last);
			ev_horizon_wake_waiters();
			woken_for = last;
			last_wake = GetCurrentTimestamp();
		}

		facts.moved = last != before;
		facts.woken = (rc & WL_LATCH_SET) != 0;
		facts.holders_seen = ev_holders_seen;
		facts.idle_timeout_enforced = ev_horizon_idle_timeout_ms > 0;
		facts.ms_since_work = TimestampDifferenceMilliseconds(last_work, GetCurrentTimestamp());
		facts.min_interval_ms = ev_notify_min_interval_ms;
		ev_plan_notifier_step(&facts, &step);
		if (step.worked)
			last_work = GetCurrentTimestamp();
		else if (step.leave)
			proc_exit(0);		/* idle: leave the database; the next append starts us again */
		if (step.pause_ms > 0)	/* coalesce: what commits meanwhile is announced together */
			(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, step.pause_ms, PG_WAIT_EXTENSION);
	}
}

/* everest.notifiers(): this database's notifier worker (one row, or none). */
PG_FUNCTION_INFO_V1(everest_notifiers);
Datum
everest_notifiers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	EvNotifier	copy[EV_MAX_NOTIFIERS];

	ev_require_horizon();
	ev_init_srf(fcinfo);
	LWLockAcquire(ev_notify->lock, LW_SHARED);
	memcpy(copy, ev_notify->notifiers, sizeof(copy));
	LWLockRelease(ev_notify->lock);
	for (int i = 0; i < EV_MAX_NOTIFIERS; i++)
	{
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if (copy[i].dbid != MyDatabaseId)
			continue;			/* this database's only: other databases are not the caller's business */
		values[0] = ObjectIdGetDatum(copy[i].dbid);
		values[1] = Int32GetDatum(copy[i].pid);
		nulls[1] = copy[i].pid == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
