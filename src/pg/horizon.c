/*
 * The $all horizon (DESIGN.md section 4).
 *
 * Shared memory holds one slot per backend: the database it appends in and the lowest $all
 * position its transaction still holds in flight (0: none). Positions are drawn from
 * everest.position_seq only here, under the horizon lock held exclusively, and the slot is
 * published under the same lock; so a reader that holds the lock shared sees every drawn
 * position either in a slot or, once its transaction ended, in the table. The lock is held for
 * a few microseconds per append and never until commit: appends to different streams do not
 * wait for each other.
 *
 *   safe_position() = (lowest position in flight in this database) - 1,
 *                     or the sequence's last value when nothing is in flight.
 *
 * A slot is cleared by the transaction callback at COMMIT, which PostgreSQL calls after the
 * transaction became visible (ProcArrayEndTransaction), and at ABORT; ROLLBACK TO SAVEPOINT
 * releases the positions of that subtransaction only (the core's InFlightPositions). A backend
 * that dies takes its slot with it: after a crash the postmaster reinitialises shared memory.
 * PREPARE TRANSACTION after an append is refused with 0A000 (the slot could not follow the
 * prepared transaction), which rolls the append back.
 */
#include "everest_pg.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/sequence.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "compat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "utils/wait_event.h"
#include "storage/ipc.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

typedef struct EvSlot
{
	Oid			dbid;
	int			pid;
	pg_atomic_uint64 lowest;	/* lowest in-flight position, 0 when none */
} EvSlot;

typedef struct EvHorizonShared
{
	LWLock	   *lock;
	ConditionVariable moved;	/* broadcast when a transaction's positions leave flight */
	pg_atomic_uint32 waiters;	/* sessions in wait_for_position (the notifier rations wake-ups by it) */
	int			nslots;
	EvSlot		slots[FLEXIBLE_ARRAY_MEMBER];
} EvHorizonShared;

static EvHorizonShared *ev_shared = NULL;

/*
 * Who hears about the horizon (set by everest.c at load, so that this file needs none of them):
 * `publisher` makes sure a process will publish the horizon and says whether one will (false:
 * this transaction publishes it at commit); `moved` is told whenever it may have moved.
 */
static bool (*ev_publisher) (void) = NULL;
static void (*ev_moved) (void) = NULL;
static int64 (*ev_announced) (void) = NULL;	/* what the notifier last announced (0: none) */

void
ev_horizon_set_listeners(bool (*publisher) (void), void (*moved) (void), int64 (*announced) (void))
{
	ev_publisher = publisher;
	ev_moved = moved;
	ev_announced = announced;
}

/*
 * The horizon may have moved: tell the notifier. Waiters of wait_for_position are woken by the
 * notifier after each of its rounds (ev_horizon_wake_waiters), coalesced as notifications are,
 * so that twenty waiting sessions do not each wake at every commit; only a transaction with no
 * notifier to do it wakes them itself.
 */
static void
ev_horizon_moved(bool no_notifier)
{
	if (ev_moved)
		ev_moved();
	if (no_notifier)
		ConditionVariableBroadcast(&ev_shared->moved);
}

void
ev_horizon_wake_waiters(void)
{
	if (ev_shared != NULL)
		ConditionVariableBroadcast(&ev_shared->moved);
}

/* How many sessions wait in wait_for_position now, in every database (one condition variable). */
int
ev_horizon_waiters(void)
{
	return ev_shared == NULL ? 0 : (int) pg_atomic_read_u32(&ev_shared->waiters);
}

static void
ev_waiter_leave(int code, Datum arg)
{
	ConditionVariableCancelSleep();
	pg_atomic_fetch_sub_u32(&ev_shared->waiters, 1);
}

/* Batches larger than this draw their positions in one step (ev_draw_positions). */
#define EV_DRAW_ONE_BY_ONE 64

/* Testing only (everest.debug_fail_tracker): fail right after a slot was published. */
bool		ev_debug_fail_tracker = false;

/* No publisher could be had: this transaction publishes the horizon at PRE_COMMIT. */
static bool ev_publish_at_commit = false;

/* This backend's transaction: its positions in flight, by subtransaction. */
static ev_in_flight *ev_tracker = NULL;

Size
ev_horizon_shmem_size(void)
{
	return add_size(offsetof(EvHorizonShared, slots),
					mul_size(MaxBackends + 1, sizeof(EvSlot)));
}

/* From the shmem_startup_hook (everest.c), under AddinShmemInitLock; returns the horizon lock. */
LWLock *
ev_horizon_shmem_startup(void)
{
	bool		found;

	ev_shared = ShmemInitStruct("everest horizon", ev_horizon_shmem_size(), &found);
	if (!found)
	{
		ev_shared->lock = &(GetNamedLWLockTranche("everest"))->lock;
		ConditionVariableInit(&ev_shared->moved);
		pg_atomic_init_u32(&ev_shared->waiters, 0);
		ev_shared->nslots = MaxBackends + 1;
		for (int i = 0; i < ev_shared->nslots; i++)
		{
			ev_shared->slots[i].dbid = InvalidOid;
			ev_shared->slots[i].pid = 0;
			pg_atomic_init_u64(&ev_shared->slots[i].lowest, 0);
		}
	}
	return ev_shared->lock;
}

static EvSlot *
ev_my_slot(void)
{
	int			me = ev_my_backend_number();

	if (me < 0 || me >= ev_shared->nslots)
		elog(ERROR, "everest: no horizon slot for this process");
	return &ev_shared->slots[me];
}

/* Publishes the tracker's lowest position; raising or clearing it never needs the lock. */
static void
ev_publish_lowest(void)
{
	int			me = ev_my_backend_number();

	if (ev_shared == NULL || me < 0 || ev_tracker == NULL)
		return;
	pg_atomic_write_u64(&ev_shared->slots[me].lowest,
						(uint64) ev_in_flight_lowest(ev_tracker));
}

/*
 * The transaction ended: its positions leave flight. The slot is cleared whenever it is set, even
 * if the tracker does not know why (a failure between publishing the slot and recording the
 * positions), so a slot never holds the horizon past its transaction.
 */
static void
ev_end_of_transaction(bool no_notifier)
{
	int			me = ev_my_backend_number();
	EvSlot	   *slot = ev_shared != NULL && me >= 0 && me < ev_shared->nslots ? &ev_shared->slots[me] : NULL;

	if ((slot == NULL || pg_atomic_read_u64(&slot->lowest) == 0) &&
		(ev_tracker == NULL || ev_in_flight_lowest(ev_tracker) == 0))
		return;
	if (ev_tracker != NULL)
		ev_in_flight_clear(ev_tracker);
	if (slot != NULL)
		pg_atomic_write_u64(&slot->lowest, 0);
	ev_horizon_moved(no_notifier);
}

/*
 * Without a notifier (no worker slot), an appending transaction publishes the horizon itself, at
 * PRE_COMMIT: it locks the row, which queues the commits of concurrent appenders of
 * the database (a degraded mode, logged), then computes the horizon as it will be once this
 * transaction commits: every other session's positions in flight stay excluded, its own are
 * included, and the row commits together with its events. The last committer of a burst so
 * publishes everything, and standbys never freeze for want of a worker.
 */
static SPIPlanPtr plan_publish_lock;

static void
ev_publish_horizon_at_commit(void)
{
	int			rc;

	if (!OidIsValid(ev_catalog()->horizon))
		return;
	PushActiveSnapshot(GetTransactionSnapshot());
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_publish_lock,
									 "INSERT INTO everest.horizon AS h (position) VALUES (0) "
									 "ON CONFLICT (singleton) DO UPDATE SET position = h.position RETURNING position",
									 0, NULL),
						  NULL, NULL, false, 0);
	ev_spi_check(rc, "locking the published horizon");
	SPI_finish();
	ev_publish_horizon(ev_safe_position_at_own_commit(), false);
	PopActiveSnapshot();
}

static void
ev_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (ev_publish_at_commit && ev_tracker != NULL && ev_in_flight_lowest(ev_tracker) != 0)
				ev_publish_horizon_at_commit();
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (ev_tracker != NULL && ev_in_flight_lowest(ev_tracker) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that appended events"),
						 errdetail("Its $all positions would hold the horizon of every reader until COMMIT PREPARED."),
						 errhint("Append outside of two-phase transactions.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			{
				bool		no_notifier = ev_publish_at_commit;

				ev_publish_at_commit = false;
				ev_end_of_transaction(no_notifier);
				break;
			}
		default:
			break;
	}
}

static void
ev_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					SubTransactionId parentSubid, void *arg)
{
	if (ev_tracker == NULL)
		return;
	switch (event)
	{
		case SUBXACT_EVENT_COMMIT_SUB:
			ev_in_flight_subcommit(ev_tracker, mySubid, parentSubid);
			break;
		case SUBXACT_EVENT_ABORT_SUB:
			{
				int64		before = ev_in_flight_lowest(ev_tracker);

				ev_in_flight_subabort(ev_tracker, mySubid);
				if (ev_in_flight_lowest(ev_tracker) != before)
				{
					ev_publish_lowest();
					ev_horizon_moved(ev_publish_at_commit);
				}
				break;
			}
		default:
			break;
	}
}

static void
ev_on_exit(int code, Datum arg)
{
	int			me = ev_my_backend_number();

	if (ev_shared != NULL && me >= 0)
	{
		pg_atomic_write_u64(&ev_shared->slots[me].lowest, 0);
		ConditionVariableBroadcast(&ev_shared->moved);
	}
}

void
ev_horizon_init(void)
{
	RegisterXactCallback(ev_xact_callback, NULL);
	RegisterSubXactCallback(ev_subxact_callback, NULL);
}

/*
 * The primary's horizon needs shared memory; a hot standby reads the published one
 * (ev_published_horizon) and needs none.
 */
void
ev_require_horizon(void)
{
	if (RecoveryInProgress())
		return;
	if (ev_shared == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("everest must be loaded through shared_preload_libraries"),
				 errdetail("Appends and reads of $all keep their positions in flight in shared memory."),
				 errhint("Add 'everest' to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Reads bounded by the horizon need a snapshot taken after the horizon was computed, which
 * READ COMMITTED gives every query; a REPEATABLE READ snapshot could predate a commit below it.
 */
void
ev_require_read_committed(void)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("reading $all, a category or a handler's events requires READ COMMITTED"),
				 errdetail("A transaction snapshot taken earlier could miss events below safe_position()."),
				 errhint("Read in a READ COMMITTED transaction; appends and stream reads work at any level.")));
}

/*
 * Draws n positions for this transaction and marks them in flight. Positions are strictly
 * increasing; they are consecutive unless someone called nextval on the sequence by hand.
 */
void
ev_draw_positions(int n, int64 *positions)
{
	Oid			seq;
	EvSlot	   *slot;
	ev_error	err;

	ev_require_horizon();
	if (ev_tracker == NULL)
	{
		ev_tracker = ev_in_flight_new(&err);
		if (ev_tracker == NULL)
			ev_raise(&err);
		before_shmem_exit(ev_on_exit, (Datum) 0);
	}
	if (ev_in_flight_lowest(ev_tracker) == 0 && !(ev_publisher && ev_publisher()))
		ev_publish_at_commit = true;	/* no notifier: this transaction publishes the horizon */
	ev_epoch_ensure();			/* a new epoch after a promotion or cutover; a no-op otherwise */
	if (!ev_catalog()->position_seq_ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("everest.position_seq must have CACHE 1, a positive INCREMENT and NO CYCLE"),
				 errdetail("Otherwise positions could be handed out below ones readers have passed."),
				 errhint("ALTER SEQUENCE everest.position_seq CACHE 1 INCREMENT 1 NO CYCLE;")));
	seq = ev_catalog()->position_seq;
	/* Take the heavyweight lock before the LWLock, so that nothing waits while holding it. */
	LockRelationOid(seq, RowExclusiveLock);
	slot = ev_my_slot();

	/*
	 * Under the lock, a bounded amount of work whatever n is: a large batch takes its first
	 * position and moves the sequence past the rest in one step (other databases' appends wait
	 * on this lock too).
	 */
	LWLockAcquire(ev_shared->lock, LW_EXCLUSIVE);
	positions[0] = nextval_internal(seq, false);
	if (n <= EV_DRAW_ONE_BY_ONE)
		for (int i = 1; i < n; i++)
			positions[i] = nextval_internal(seq, false);
	else
	{
		DirectFunctionCall3(setval3_oid, ObjectIdGetDatum(seq), Int64GetDatum(positions[0] + n - 1),
							BoolGetDatum(true));
		for (int i = 1; i < n; i++)
			positions[i] = positions[0] + i;
	}
	if (pg_atomic_read_u64(&slot->lowest) == 0)
	{
		slot->dbid = MyDatabaseId;
		slot->pid = MyProcPid;
		pg_atomic_write_u64(&slot->lowest, (uint64) positions[0]);
	}
	LWLockRelease(ev_shared->lock);

	/*
	 * If recording fails (out of memory), the subtransaction that drew the positions aborts with
	 * them, and the slot, which the tracker then does not know of, is cleared when the
	 * transaction ends at the latest (ev_end_of_transaction): it never outlives it.
	 */
	if (ev_debug_fail_tracker)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("everest: injected failure recording positions in flight (everest.debug_fail_tracker)")));
	ev_check(ev_in_flight_drawn(ev_tracker, GetCurrentSubTransactionId(), positions[0], &err), &err);
}

int64
ev_safe_position(void)
{
	Oid			seq;
	int64		lowest = 0;
	int64		safe;

	if (RecoveryInProgress())
		return ev_published_horizon();
	if (ev_is_mirror())
		return ev_mirror_synced() ? ev_published_horizon() : 0;
	ev_require_horizon();
	seq = ev_catalog()->position_seq;
	LockRelationOid(seq, RowExclusiveLock);

	LWLockAcquire(ev_shared->lock, LW_SHARED);
	for (int i = 0; i < ev_shared->nslots; i++)
	{
		EvSlot	   *slot = &ev_shared->slots[i];
		int64		low = (int64) pg_atomic_read_u64(&slot->lowest);

		if (low != 0 && slot->dbid == MyDatabaseId && (lowest == 0 || low < lowest))
			lowest = low;
	}
	safe = lowest != 0 ? lowest - 1 : ev_sequence_last(seq);
	LWLockRelease(ev_shared->lock);
	/*
	 * A node that took over (a promoted standby, a former mirror) stays at the horizon it received
	 * until its first append starts the next epoch (epochs.c): everything at or below it is here,
	 * and its sequence says nothing (a standby's is up to 32 ahead, a mirror's was never moved).
	 */
	if (!ev_epoch_is_current())
		safe = lowest != 0 ? Min(safe, ev_published_horizon()) : ev_published_horizon();
	return safe;
}

PG_FUNCTION_INFO_V1(everest_safe_position);
Datum
everest_safe_position(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT64(ev_safe_position());
}

/*
 * safe_position() as it will be once this transaction commits: its own positions count as done,
 * every other session's in flight still holds the horizon back.
 */
int64
ev_safe_position_at_own_commit(void)
{
	Oid			seq = ev_catalog()->position_seq;
	int64		lowest = 0;
	int64		safe;

	LockRelationOid(seq, RowExclusiveLock);
	LWLockAcquire(ev_shared->lock, LW_SHARED);
	for (int i = 0; i < ev_shared->nslots; i++)
	{
		EvSlot	   *slot = &ev_shared->slots[i];
		int64		low = (int64) pg_atomic_read_u64(&slot->lowest);

		if (i != ev_my_backend_number() && low != 0 && slot->dbid == MyDatabaseId && (lowest == 0 || low < lowest))
			lowest = low;
	}
	safe = lowest != 0 ? lowest - 1 : ev_sequence_last(seq);
	LWLockRelease(ev_shared->lock);
	return safe;
}

/* The pids of this database's sessions holding the horizon (at most max). */
int
ev_horizon_holder_pids(int *pids, int max)
{
	int			n = 0;

	if (ev_shared == NULL)
		return 0;
	LWLockAcquire(ev_shared->lock, LW_SHARED);
	for (int i = 0; i < ev_shared->nslots && n < max; i++)
		if (pg_atomic_read_u64(&ev_shared->slots[i].lowest) != 0 && ev_shared->slots[i].dbid == MyDatabaseId)
			pids[n++] = ev_shared->slots[i].pid;
	LWLockRelease(ev_shared->lock);
	return n;
}

/* everest.in_flight_appends(): the sessions of this database holding the horizon. */
PG_FUNCTION_INFO_V1(everest_in_flight_appends);
Datum
everest_in_flight_appends(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	ev_require_horizon();
	ev_init_srf(fcinfo);

	LWLockAcquire(ev_shared->lock, LW_SHARED);
	for (int i = 0; i < ev_shared->nslots; i++)
	{
		EvSlot	   *slot = &ev_shared->slots[i];
		int64		low = (int64) pg_atomic_read_u64(&slot->lowest);
		Datum		values[2];
		bool		nulls[2] = {false, false};

		if (low == 0 || slot->dbid != MyDatabaseId)
			continue;
		values[0] = Int32GetDatum(slot->pid);
		values[1] = Int64GetDatum(low);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(ev_shared->lock);
	return (Datum) 0;
}

/*
 * wait_for_position(after, timeout_ms) (docs/topologies.md, "Waking up without LISTEN" and "What
 * waiting costs"): safe_position() as soon as it is greater than `after`, or when the timeout
 * passes. On a primary, the notifier broadcasts a condition variable after rounds in which the
 * horizon moved, rationed by the number of waiters (ev_plan_waiter_wake; without a notifier, the
 * committing transaction does), and the woken waiters take the value it announced. A waiter looks
 * again every EV_PRIMARY_RECHECK_MS (computing the horizon itself only when no notifier runs), and
 * computes it at the timeout; a standby or mirror has no such signal and looks at the published
 * horizon every EV_STANDBY_POLL_MS. Cancellable (the sleeps check for interrupts); a session
 * whose own append is in flight below `after` would wait for itself and gets 55000.
 */
#define EV_STANDBY_POLL_MS 10
#define EV_PRIMARY_RECHECK_MS 250	/* a bound should the notifier be gone */

static int64
ev_wait_primary(int64 after, TimestampTz deadline)
{
	int64		safe;

	for (;;)
	{
		long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
		int64		announced = ev_announced == NULL ? 0 : ev_announced();

		/*
		 * With a notifier, what it announced is a safe position, and one of its next rounds
		 * announces whatever commits now: the waiters it wakes take its value instead of each
		 * computing the horizon under the lock appenders take. Without one, and at the end,
		 * compute it.
		 */
		safe = announced;
		if (announced <= after && (announced == 0 || remaining <= 0))
			safe = Max(announced, ev_safe_position());
		if (safe > after || remaining <= 0)
			return safe;
		(void) ConditionVariableTimedSleep(&ev_shared->moved, Min(remaining, EV_PRIMARY_RECHECK_MS),
										   PG_WAIT_EXTENSION);
	}
}

PG_FUNCTION_INFO_V1(everest_wait_for_position);
Datum
everest_wait_for_position(PG_FUNCTION_ARGS)
{
	int64		after;
	int64		timeout_ms;
	int64		own = 0;
	bool		standby;
	TimestampTz deadline;
	int64		safe;
	ev_error	err;

	ev_require_arg(fcinfo, 0, "after");
	ev_require_arg(fcinfo, 1, "timeout_ms");
	after = PG_GETARG_INT64(0);
	timeout_ms = PG_GETARG_INT32(1);
	ev_require_horizon();
	standby = RecoveryInProgress() || ev_is_mirror();	/* no commits here move the horizon */
	if (!standby && ev_tracker != NULL)
		own = ev_in_flight_lowest(ev_tracker);
	ev_check(ev_check_wait(after, timeout_ms, own, &err), &err);

	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), timeout_ms);
	if (!standby)
	{
		/* counted while waiting, so that the notifier knows how many it wakes */
		pg_atomic_fetch_add_u32(&ev_shared->waiters, 1);
		PG_ENSURE_ERROR_CLEANUP(ev_waiter_leave, (Datum) 0);
		{
			ConditionVariablePrepareToSleep(&ev_shared->moved);
			safe = ev_wait_primary(after, deadline);
		}
		PG_END_ENSURE_ERROR_CLEANUP(ev_waiter_leave, (Datum) 0);
		ev_waiter_leave(0, (Datum) 0);
		PG_RETURN_INT64(safe);
	}
	for (;;)
	{
		long		remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);

		safe = ev_safe_position();
		if (safe > after || remaining <= 0)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(remaining, EV_STANDBY_POLL_MS), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_INT64(safe);
}
