/*
 * Streams: the per-stream lock writers take, and a stream's state (version, tombstone).
 *
 * The lock is a transaction-scoped heavyweight lock of everest's own kind (an advisory lock tag
 * with field 4 = 4, per database, keyed by a 64-bit hash of the name): it lives in the lock
 * manager's memory, writes nothing, takes part in deadlock detection, and is released after the
 * holder's commit became visible. Writers to one stream queue on it; writers to other streams
 * never meet (two names with the same 64-bit hash would merely queue together).
 *
 * A stream's version is read from the events themselves (the last version in the unique
 * (stream, version) index), so an append writes one row and nothing else. everest.tombstones
 * lists retired names; it is only probed when it is not empty.
 */
#include "everest_pg.h"

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

static SPIPlanPtr plan_last_version, plan_tombstoned;

void
ev_lock_stream(const char *stream, size_t len)
{
	LOCKTAG		tag;
	uint64		key = ev_handler_lease_key(stream, len);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key, 4);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/* True when everest.tombstones has no rows for sure (it has never had a page). */
static bool
ev_no_tombstones(void)
{
	Oid			nsp = get_namespace_oid("everest", false);
	Oid			relid = get_relname_relid("tombstones", nsp);
	Relation	rel;
	bool		empty;

	if (!OidIsValid(relid))
		return true;
	rel = relation_open(relid, AccessShareLock);
	empty = RelationGetNumberOfBlocks(rel) == 0;
	relation_close(rel, AccessShareLock);
	return empty;
}

static int64
ev_query_last_version(Datum *args, Snapshot snapshot)
{
	Oid			types[1] = {TEXTOID};
	SPIPlanPtr	plan = ev_prepare(&plan_last_version,
								  "SELECT version FROM everest.events WHERE stream OPERATOR(pg_catalog.=) $1 "
								  "ORDER BY version DESC LIMIT 1",
								  1, types);
	int			rc;
	bool		isnull;

	if (snapshot != InvalidSnapshot)
		rc = SPI_execute_snapshot(plan, args, NULL, snapshot, InvalidSnapshot, true, false, 1);
	else
		rc = SPI_execute_plan(plan, args, NULL, true, 1);
	ev_spi_check(rc, "reading a stream version");
	if (SPI_processed == 0)
		return -1;
	return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * The stream's version (-1 when it has no events) and whether it is tombstoned. Called inside
 * SPI. A writer calls it with the stream locked (`for_write`): in READ COMMITTED every query has
 * a fresh snapshot, so the previous writer's commit is seen; at REPEATABLE READ or above, a
 * version that moved since the transaction's snapshot is a serialization failure, as an UPDATE
 * of a concurrently updated row would be.
 */
void
ev_stream_state(const char *stream, size_t len, bool for_write, int64 *version, bool *tombstoned)
{
	Datum		args[1];

	args[0] = PointerGetDatum(cstring_to_text_with_len(stream, len));
	*tombstoned = false;
	if (!ev_no_tombstones())
	{
		Oid			types[1] = {TEXTOID};
		int			rc = SPI_execute_plan(ev_prepare(&plan_tombstoned,
													 "SELECT 1 FROM everest.tombstones WHERE stream OPERATOR(pg_catalog.=) $1",
													 1, types),
										  args, NULL, true, 1);

		ev_spi_check(rc, "reading a tombstone");
		*tombstoned = SPI_processed > 0;
	}
	*version = ev_query_last_version(args, InvalidSnapshot);
	if (for_write && IsolationUsesXactSnapshot() &&
		ev_query_last_version(args, GetLatestSnapshot()) != *version)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent append to stream \"%s\"", stream)));
}
