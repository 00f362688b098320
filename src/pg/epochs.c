/*
 * Position epochs (docs/topologies.md, "Failover"): epoch e hands out positions from
 * e * 2^40 + 1. A node notes, at its first append, whether it is the node that appended last (the
 * latest row of everest.epochs names its system identifier and timeline). If not (a promoted
 * standby, a mirror after cutover, a restore into another cluster), it starts the next epoch
 * above everything assigned before and records the range after the last horizon it received as
 * never completed here. Reads and saves from a checkpoint in such a range fail with EV006, as do,
 * on a primary, checkpoints beyond anything the store assigned. The core decides both
 * (plan_epoch, check_completed); this file gathers the facts and acts.
 */
#include "everest_pg.h"

#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lockdefs.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/memutils.h"

static SPIPlanPtr plan_latest, plan_facts, plan_present, plan_insert, plan_ranges;

/* This backend's node is the one the latest epoch row names (or there is none); valid when
 * ev_latest_valid and the system identifier and timeline are still these. */
static bool ev_latest_valid = false;
static bool ev_latest_exists = false;	/* the epochs table has a row */
static bool ev_epoch_current = false;
static int64 ev_epoch_sysid;
static TimeLineID ev_epoch_tli;

/* The lost ranges, loaded once and forgotten on an invalidation of everest.epochs. */
static ev_lost_range *ev_ranges = NULL;
static int	ev_nranges = 0;
static bool ev_ranges_valid = false;
static Oid	ev_ranges_relid = InvalidOid;
static bool ev_epoch_callback = false;

static void
ev_epochs_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == ev_ranges_relid)
	{
		ev_ranges_valid = false;
		ev_latest_valid = false;
		ev_epoch_current = false;
	}
}

static void
ev_epochs_register(Oid relid)
{
	ev_ranges_relid = relid;
	if (!ev_epoch_callback)
	{
		CacheRegisterRelcacheCallback(ev_epochs_invalidate, (Datum) 0);
		ev_epoch_callback = true;
	}
}

static int64
ev_spi_int64(int row, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, col, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

/* The latest epoch row (SPI connected): whether there is one, its epoch, and whether it names
 * this node (system identifier and timeline). */
static void
ev_read_latest_epoch(int64 sysid, TimeLineID tli, bool *have, int32 *epoch, bool *same_node)
{
	int			rc = SPI_execute_plan(ev_prepare(&plan_latest,
												 "SELECT epoch::pg_catalog.int8, system_identifier, timeline::pg_catalog.int8 "
												 "FROM everest.epochs ORDER BY epoch DESC LIMIT 1", 0, NULL),
									  NULL, NULL, false, 1);

	ev_spi_check(rc, "reading the epochs");
	*have = SPI_processed == 1;
	*epoch = *have ? (int32) ev_spi_int64(0, 1) : 0;
	*same_node = *have && ev_spi_int64(0, 2) == sysid && ev_spi_int64(0, 3) == (int64) tli;
}

/*
 * Whether this node appends in the latest epoch, or no epoch is recorded yet. A promoted standby
 * or a mirror after cutover is not, until its first append starts the next epoch; until then its
 * safe_position() stays at the horizon it received (horizon.c), so that its readers never pass
 * the start of what will be recorded as lost. Cached until everest.epochs is invalidated.
 */
bool
ev_epoch_is_current(void)
{
	const EvCatalog *cat;
	int64		sysid;
	TimeLineID	tli;
	bool		have,
				same;
	int32		latest;

	if (RecoveryInProgress())
		return true;
	sysid = (int64) GetSystemIdentifier();
	tli = GetWALInsertionTimeLine();
	if (ev_latest_valid && ev_epoch_sysid == sysid && ev_epoch_tli == tli)
		return ev_epoch_current;
	cat = ev_catalog();
	if (!OidIsValid(cat->epochs))
		return true;
	ev_epochs_register(cat->epochs);
	SPI_connect();
	ev_read_latest_epoch(sysid, tli, &have, &latest, &same);
	ev_latest_exists = have;
	ev_epoch_current = !have || same;
	SPI_finish();
	ev_epoch_sysid = sysid;
	ev_epoch_tli = tli;
	ev_latest_valid = true;
	return ev_epoch_current;
}

void
ev_epoch_ensure(void)
{
	const EvCatalog *cat;
	int64		sysid;
	TimeLineID	tli;
	ev_epoch_facts facts;
	ev_epoch_plan plan;
	ev_error	err;
	int			rc;

	if (RecoveryInProgress())
		return;
	sysid = (int64) GetSystemIdentifier();
	tli = GetWALInsertionTimeLine();
	if (ev_latest_valid && ev_latest_exists && ev_epoch_current && ev_epoch_sysid == sysid && ev_epoch_tli == tli)
		return;
	cat = ev_catalog();
	if (!OidIsValid(cat->epochs))
		return;					/* a database still on 0.3.0 */
	ev_epochs_register(cat->epochs);

	memset(&facts, 0, sizeof(facts));
	SPI_connect();
	for (int attempt = 0; attempt < 2; attempt++)
	{
		ev_read_latest_epoch(sysid, tli, &facts.have_latest, &facts.latest_epoch, &facts.same_node);
		if (facts.same_node || attempt == 1)
			break;
		/* Another node appended last, or none yet: one appender at a time decides. */
		LockRelationOid(cat->epochs, ShareRowExclusiveLock);
		CommandCounterIncrement();
	}
	if (!facts.same_node)
	{
		rc = SPI_execute_plan(ev_prepare(&plan_facts,
										 "SELECT pg_catalog.max(position), "
										 "(SELECT h.position FROM everest.horizon h) FROM everest.events",
										 0, NULL),
							  NULL, NULL, false, 1);
		ev_spi_check(rc, "reading the last stored position");
		facts.published_horizon = ev_spi_int64(0, 2);
		facts.max_stored = Max(ev_spi_int64(0, 1), facts.published_horizon);
		/* the unbroken run of stored positions right above the horizon received */
		{
			Oid			types[1] = {INT8OID};
			Datum		args[1] = {Int64GetDatum(facts.published_horizon)};

			rc = SPI_execute_plan(ev_prepare(&plan_present,
											 "SELECT position FROM everest.events "
											 "WHERE position OPERATOR(pg_catalog.>) $1 ORDER BY position LIMIT 100000",
											 1, types),
								  args, NULL, true, 0);
			ev_spi_check(rc, "reading the positions above the horizon");
			facts.present_through = facts.published_horizon;
			for (uint64 i = 0; i < SPI_processed && ev_spi_int64(i, 1) == facts.present_through + 1; i++)
				facts.present_through++;
		}
		facts.sequence_last = ev_last_assigned();
		ev_check(ev_plan_epoch(&facts, &plan, &err), &err);

		if (plan.sequence_to > facts.sequence_last)
			DirectFunctionCall3(setval3_oid, ObjectIdGetDatum(cat->position_seq),
								Int64GetDatum(plan.sequence_to), BoolGetDatum(true));
		if (plan.insert)
		{
			Oid			types[5] = {INT4OID, INT8OID, INT8OID, INT8OID, INT4OID};
			Datum		args[5];
			char		nulls[5] = {' ', ' ', plan.lost ? ' ' : 'n', ' ', ' '};

			args[0] = Int32GetDatum(plan.epoch);
			args[1] = Int64GetDatum(plan.first_position);
			args[2] = Int64GetDatum(plan.lost_after);
			args[3] = Int64GetDatum(sysid);
			args[4] = Int32GetDatum((int32) tli);
			rc = SPI_execute_plan(ev_prepare(&plan_insert,
											 "INSERT INTO everest.epochs (epoch, first_position, lost_after, "
											 "system_identifier, timeline) VALUES ($1, $2, $3, $4, $5) "
											 "ON CONFLICT (epoch) DO UPDATE SET system_identifier = excluded.system_identifier, "
											 "timeline = excluded.timeline",
											 5, types),
								  args, nulls, false, 0);
			ev_spi_check(rc, "recording an epoch");
			if (plan.lost)
				ereport(LOG,
						(errmsg("everest: positions continue in epoch %d from " INT64_FORMAT
								"; positions after " INT64_FORMAT " were never completed here",
								plan.epoch, plan.first_position, plan.lost_after)));
		}
		CacheInvalidateRelcacheByRelid(cat->epochs);	/* readers reload the lost ranges */
	}
	SPI_finish();
	ev_epoch_current = true;
	ev_latest_exists = true;
	ev_latest_valid = true;
	ev_epoch_sysid = sysid;
	ev_epoch_tli = tli;
}

static void
ev_load_ranges(void)
{
	const EvCatalog *cat = ev_catalog();
	int			rc;

	ev_nranges = 0;
	if (!OidIsValid(cat->epochs))
	{
		ev_ranges_valid = true;
		return;
	}
	ev_epochs_register(cat->epochs);
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_ranges,
									 "SELECT lost_after, first_position FROM everest.epochs "
									 "WHERE lost_after IS NOT NULL ORDER BY epoch", 0, NULL),
						  NULL, NULL, true, 0);
	ev_spi_check(rc, "reading the lost ranges");
	if (SPI_processed > 0)
	{
		ev_ranges = ev_ranges
			? repalloc(ev_ranges, SPI_processed * sizeof(ev_lost_range))
			: MemoryContextAlloc(TopMemoryContext, SPI_processed * sizeof(ev_lost_range));
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			ev_ranges[i].after = ev_spi_int64(i, 1);
			ev_ranges[i].before = ev_spi_int64(i, 2);
		}
		ev_nranges = (int) SPI_processed;
	}
	SPI_finish();
	ev_ranges_valid = true;
}

/*
 * EV006 when `checkpoint` (the last position a reader or saver has) lies in a range this store
 * never completed, or, on a primary that is not a mirror, beyond anything it assigned. A standby
 * or mirror that lags is not an error. `known_safe` (or -1): the caller's safe_position(), which
 * saves reading the sequence in the common case of a checkpoint at or below it.
 */
void
ev_require_completed(int64 checkpoint, int64 known_safe)
{
	bool		know_assigned;
	int64		last = 0;
	ev_error	err;

	if (checkpoint <= 0)
		return;
	if (!ev_ranges_valid)
		ev_load_ranges();
	know_assigned = (known_safe < 0 || checkpoint > known_safe) && !RecoveryInProgress() && !ev_is_mirror();
	if (know_assigned)			/* a former mirror's sequence starts at 0: the horizon it received counts */
		last = Max(ev_last_assigned(), ev_published_horizon());
	ev_check(ev_check_completed(checkpoint, ev_ranges, ev_nranges, know_assigned, last, &err), &err);
}
