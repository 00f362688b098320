/*
 * Counters for operators (README, "Metrics"; docs/operations.md): per database, in shared memory,
 * shown by the view everest.stats and reset by everest.reset_stats().
 *
 * Shared memory holds EV_STATS_SLOTS slots, one per database that used everest since the server
 * started. A backend finds (or claims) its database's slot once and keeps the pointer, so a count
 * costs one atomic add and takes no lock. Claiming takes a spinlock, because two backends of one
 * database must not claim two slots. When every slot is taken, a slot whose database was dropped
 * is claimed again; when there is none, this database is not counted (its row shows NULL
 * counters) and the server log says so once.
 *
 * Counters are not transactional: an append counts when it wrote, even if its transaction rolls
 * back later, and rejections count when they are raised. A reset writes zeros while others may be
 * adding; an add that races the reset may survive it.
 *
 * Built with -DEV_NO_STATS (make clean; make EV_NO_STATS=1), the counting calls compile to
 * nothing (everest_pg.h) and the view shows zeros: that build exists to measure what counting
 * costs.
 */
#include "everest_pg.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

typedef struct EvStatsSlot
{
	pg_atomic_uint32 dbid;		/* InvalidOid: free */
	pg_atomic_uint64 reset_at;	/* TimestampTz: claimed, or last reset_stats() */
	pg_atomic_uint64 counters[EV_NSTATS];
} EvStatsSlot;

typedef struct EvStatsShared
{
	slock_t		claim;			/* taken only to claim a slot */
	pg_atomic_uint32 overflow_logged;
	EvStatsSlot slots[EV_STATS_SLOTS];
} EvStatsShared;

static EvStatsShared *ev_stats = NULL;
static EvStatsSlot *ev_my_stats = NULL;
static bool ev_stats_looked_up = false;

Size
ev_stats_shmem_size(void)
{
	return sizeof(EvStatsShared);
}

/* From the shmem startup hook, under AddinShmemInitLock. */
void
ev_stats_shmem_startup(void)
{
	bool		found;

	ev_stats = ShmemInitStruct("everest stats", sizeof(EvStatsShared), &found);
	if (!found)
	{
		SpinLockInit(&ev_stats->claim);
		pg_atomic_init_u32(&ev_stats->overflow_logged, 0);
		for (int i = 0; i < EV_STATS_SLOTS; i++)
		{
			pg_atomic_init_u32(&ev_stats->slots[i].dbid, InvalidOid);
			pg_atomic_init_u64(&ev_stats->slots[i].reset_at, 0);
			for (int c = 0; c < EV_NSTATS; c++)
				pg_atomic_init_u64(&ev_stats->slots[i].counters[c], 0);
		}
	}
}

static void
ev_stats_zero(EvStatsSlot *slot)
{
	for (int c = 0; c < EV_NSTATS; c++)
		pg_atomic_write_u64(&slot->counters[c], 0);
	pg_atomic_write_u64(&slot->reset_at, (uint64) GetCurrentTimestamp());
}

static EvStatsSlot *
ev_stats_find(Oid db)
{
	for (int i = 0; i < EV_STATS_SLOTS; i++)
		if (pg_atomic_read_u32(&ev_stats->slots[i].dbid) == db)
			return &ev_stats->slots[i];
	return NULL;
}

/*
 * This database's slot, found or claimed on the first call of the backend (needs a transaction
 * when every slot is taken: dropped databases are looked up in the catalog). NULL without
 * shared memory (not preloaded) or when no slot is left.
 */
static EvStatsSlot *
ev_stats_slot(void)
{
	Oid			stale[EV_STATS_SLOTS];
	int			nstale = 0;
	EvStatsSlot *slot;

	if (ev_stats_looked_up)
		return ev_my_stats;
	if (ev_stats == NULL || !OidIsValid(MyDatabaseId))
		return NULL;
	slot = ev_stats_find(MyDatabaseId);
	if (slot == NULL && ev_stats_find(InvalidOid) == NULL && IsTransactionState())
	{
		/* full: the slots of databases that no longer exist can be taken */
		for (int i = 0; i < EV_STATS_SLOTS; i++)
		{
			Oid			db = pg_atomic_read_u32(&ev_stats->slots[i].dbid);

			stale[i] = InvalidOid;
			if (OidIsValid(db) && !SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(db)))
			{
				stale[i] = db;
				nstale++;
			}
		}
	}
	if (slot == NULL)
	{
		SpinLockAcquire(&ev_stats->claim);
		slot = ev_stats_find(MyDatabaseId);	/* another backend of this database may have won */
		if (slot == NULL)
		{
			slot = ev_stats_find(InvalidOid);
			for (int i = 0; slot == NULL && nstale > 0 && i < EV_STATS_SLOTS; i++)
				if (OidIsValid(stale[i]) && pg_atomic_read_u32(&ev_stats->slots[i].dbid) == stale[i])
					slot = &ev_stats->slots[i];
			if (slot != NULL)
			{
				ev_stats_zero(slot);
				pg_atomic_write_u32(&slot->dbid, MyDatabaseId);
			}
		}
		SpinLockRelease(&ev_stats->claim);
	}
	if (slot == NULL && pg_atomic_exchange_u32(&ev_stats->overflow_logged, 1) == 0)
		ereport(LOG,
				(errmsg("everest: all %d statistics slots are taken; database %u is not counted",
						EV_STATS_SLOTS, MyDatabaseId),
				 errhint("Slots are freed when their database is dropped or the server restarts.")));
	ev_my_stats = slot;
	ev_stats_looked_up = true;
	return slot;
}

#ifndef EV_NO_STATS
void
ev_stats_add(EvStat stat, uint64 n)
{
	EvStatsSlot *slot = ev_stats_looked_up ? ev_my_stats : ev_stats_slot();

	if (slot != NULL)
		pg_atomic_fetch_add_u64(&slot->counters[stat], n);
}

/* A read entry point's result: one read, and the rows it returned. */
void
ev_stats_read(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	EvStatsSlot *slot = ev_stats_looked_up ? ev_my_stats : ev_stats_slot();

	if (slot == NULL)
		return;
	pg_atomic_fetch_add_u64(&slot->counters[EV_STAT_READS], 1);
	if (rsinfo != NULL && IsA(rsinfo, ReturnSetInfo) && rsinfo->setResult != NULL)
		pg_atomic_fetch_add_u64(&slot->counters[EV_STAT_EVENTS_READ],
								(uint64) tuplestore_tuple_count(rsinfo->setResult));
}

/* An error of everest's own (EV001..EV007), from ev_raise. */
void
ev_stats_error(const char *sqlstate)
{
	if (sqlstate[0] == 'E' && sqlstate[1] == 'V' && sqlstate[2] == '0' && sqlstate[3] == '0' &&
		sqlstate[4] >= '1' && sqlstate[4] <= '7' && sqlstate[5] == '\0')
		ev_stats_add((EvStat) (EV_STAT_EV001 + (sqlstate[4] - '1')), 1);
}
#endif

/*
 * On a hot standby or a logical mirror: how many replayed events lie above the horizon it may
 * read (published by the primary), and how long ago the primary published that horizon.
 */
static void
ev_stats_standby(int64 *trail, double *age)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;
	Datum		d;

	SPI_connect();
	ev_spi_check(SPI_execute_plan(ev_prepare(&plan,
											 "SELECT GREATEST((SELECT pg_catalog.max(position) FROM everest.events) "
											 "OPERATOR(pg_catalog.-) COALESCE((SELECT position FROM everest.horizon), 0), 0), "
											 "(SELECT pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() "
											 "OPERATOR(pg_catalog.-) published_at) FROM everest.horizon)",
											 0, NULL),
								  NULL, NULL, true, 1),
				 "measuring the standby's horizon");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	*trail = isnull ? 0 : DatumGetInt64(d);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*age = isnull ? -1 : DatumGetFloat8(d);
	SPI_finish();
}

/* Seconds since the oldest transaction holding the horizon began (0 when none does). */
static double
ev_stats_oldest_holder(int *holders)
{
	static SPIPlanPtr plan = NULL;
	int		   *pids = palloc(sizeof(int) * MaxBackends);
	int			n = ev_horizon_holder_pids(pids, MaxBackends);
	Datum	   *elems = palloc(sizeof(Datum) * (n > 0 ? n : 1));
	Datum		args[1];
	Oid			types[1] = {INT4ARRAYOID};
	double		age = 0;
	bool		isnull;
	Datum		d;

	*holders = n;
	if (n == 0)
		return 0;
	for (int i = 0; i < n; i++)
		elems[i] = Int32GetDatum(pids[i]);
	args[0] = PointerGetDatum(construct_array(elems, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
	SPI_connect();
	ev_spi_check(SPI_execute_plan(ev_prepare(&plan,
											 "SELECT pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() "
											 "OPERATOR(pg_catalog.-) pg_catalog.min(xact_start)) "
											 "FROM pg_catalog.pg_stat_activity WHERE pid OPERATOR(pg_catalog.=) ANY ($1)",
											 1, types),
								  args, NULL, true, 1),
				 "finding the oldest horizon holder");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		age = DatumGetFloat8(d);
	SPI_finish();
	return age > 0 ? age : 0;
}

/* everest.stats_counters(): this database's row of everest.stats. */
PG_FUNCTION_INFO_V1(everest_stats_counters);
Datum
everest_stats_counters(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[EV_NSTATS + 6];
	bool		nulls[EV_NSTATS + 6];
	EvStatsSlot *slot;
	int			col = 0;
	int			holders;
	double		age;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (desc->natts != EV_NSTATS + 6)
		elog(ERROR, "everest.stats_counters() returns %d columns, the library has %d", desc->natts,
			 EV_NSTATS + 6);
	memset(nulls, 0, sizeof(nulls));
	(void) ev_catalog();
	slot = ev_stats_slot();

	values[col++] = DirectFunctionCall1(namein, CStringGetDatum(get_database_name(MyDatabaseId)));
	for (int c = 0; c < EV_NSTATS; c++, col++)
	{
		if (slot == NULL)
			nulls[col] = true;
		else
			values[col] = Int64GetDatum((int64) pg_atomic_read_u64(&slot->counters[c]));
	}
	age = ev_stats_oldest_holder(&holders);
	values[col++] = Int32GetDatum(holders);
	values[col++] = Float8GetDatum(age);
	if (RecoveryInProgress() || ev_is_mirror())
	{
		int64		trail;
		double		published_age;

		ev_stats_standby(&trail, &published_age);
		values[col++] = Int64GetDatum(trail);
		nulls[col] = published_age < 0;
		values[col++] = Float8GetDatum(published_age);
	}
	else
	{
		nulls[col++] = true;
		nulls[col++] = true;
	}
	if (slot == NULL)
		nulls[col++] = true;
	else
		values[col++] = TimestampTzGetDatum((TimestampTz) pg_atomic_read_u64(&slot->reset_at));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* everest.reset_stats(): zero this database's counters; stats_reset becomes now. */
PG_FUNCTION_INFO_V1(everest_reset_stats);
Datum
everest_reset_stats(PG_FUNCTION_ARGS)
{
	EvStatsSlot *slot;

	(void) ev_catalog();
	slot = ev_stats_slot();
	if (slot == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this database has no everest statistics to reset"),
				 errhint(ev_stats == NULL
						 ? "Add everest to shared_preload_libraries and restart the server."
						 : "Every statistics slot is taken; see the server log.")));
	ev_stats_zero(slot);
	PG_RETURN_VOID();
}
