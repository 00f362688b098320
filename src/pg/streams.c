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

#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

static SPIPlanPtr plan_tombstoned;

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
	Relation	rel = table_open(ev_catalog()->tombstones, AccessShareLock);
	bool		empty = RelationGetNumberOfBlocks(rel) == 0;

	table_close(rel, AccessShareLock);
	return empty;
}

/*
 * The stream's last version under `snapshot`, -1 when it has none: one step backward in the
 * unique (stream, version) index, without the executor.
 */
static int64
ev_last_version(text *stream, Snapshot snapshot)
{
	const EvCatalog *cat = ev_catalog();
	Relation	heap = table_open(cat->events, AccessShareLock);
	Relation	index = index_open(cat->events_stream_version, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	AttrNumber	version_att = 3;	/* events.version, see sql/everest--0.1.0.sql */
	ScanKeyData key;
	IndexScanDesc scan;
	int64		version = -1;

	Assert(strcmp(NameStr(TupleDescAttr(RelationGetDescr(heap), version_att - 1)->attname), "version") == 0);
	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(stream));
	scan = index_beginscan(heap, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	if (index_getnext_slot(scan, BackwardScanDirection, slot))
	{
		bool		isnull;

		version = DatumGetInt64(slot_getattr(slot, version_att, &isnull));
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	return version;
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
	{
		Snapshot	snapshot = RegisterSnapshot(GetTransactionSnapshot());

		*version = ev_last_version(DatumGetTextPP(args[0]), snapshot);
		UnregisterSnapshot(snapshot);
	}
	if (for_write && IsolationUsesXactSnapshot() &&
		ev_last_version(DatumGetTextPP(args[0]), GetLatestSnapshot()) != *version)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent append to stream \"%s\"", stream)));
}
