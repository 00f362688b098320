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
 * lists retired names. Both are probed straight through their indexes, without the executor.
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


void
ev_lock_stream(const char *stream, size_t len)
{
	LOCKTAG		tag;
	uint64		key = ev_lock_key(stream, len);

	ev_require_writable_store();	/* not on a logical-replication mirror */
	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key, EV_LOCK_STREAM);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * The stream's last version under `snapshot`, -1 when it has none: one step backward in the
 * unique (stream, version) index, without the executor.
 */
static bool
ev_index_probe(Oid heap_oid, Oid index_oid, text *stream, ScanDirection direction,
			   Snapshot snapshot, AttrNumber attnum, Datum *value)
{
	Relation	heap = table_open(heap_oid, AccessShareLock);
	Relation	index = index_open(index_oid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	ScanKeyData key;
	IndexScanDesc scan;
	bool		found;

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   index->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(stream));
	scan = index_beginscan(heap, index, snapshot, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	found = index_getnext_slot(scan, direction, slot);
	if (found && attnum != InvalidAttrNumber)
	{
		bool		isnull;

		*value = slot_getattr(slot, attnum, &isnull);
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
	return found;
}

/* The stream's last version under `snapshot`, -1 when it has none. */
static int64
ev_last_version(text *stream, Snapshot snapshot)
{
	const EvCatalog *cat = ev_catalog();
	Datum		version;

	/* int8 is by value: the datum outlives the scan's slot */
	if (!ev_index_probe(cat->events, cat->events_stream_version, stream, BackwardScanDirection,
						snapshot, cat->events_attnum[EV_COL_VERSION], &version))
		return -1;
	return DatumGetInt64(version);
}

/*
 * The stream's version (-1 when it has no events) and whether it is tombstoned. A writer calls it with the stream locked (`for_write`): in READ COMMITTED every query has
 * a fresh snapshot, so the previous writer's commit is seen; at REPEATABLE READ or above, a
 * version that moved since the transaction's snapshot is a serialization failure, as an UPDATE
 * of a concurrently updated row would be.
 */
void
ev_stream_state(const char *stream, size_t len, bool for_write, int64 *version, bool *tombstoned)
{
	text	   *name = cstring_to_text_with_len(stream, len);
	Snapshot	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	const EvCatalog *cat = ev_catalog();

	*version = ev_last_version(name, snapshot);
	/* A tombstoned stream has no events: only a stream without events needs the probe. */
	*tombstoned = *version < 0 &&
		ev_index_probe(cat->tombstones, cat->tombstones_pkey, name, ForwardScanDirection,
					   snapshot, InvalidAttrNumber, NULL);
	UnregisterSnapshot(snapshot);
	if (!for_write || !IsolationUsesXactSnapshot())
		return;
	*tombstoned = *tombstoned ||
		ev_index_probe(cat->tombstones, cat->tombstones_pkey, name, ForwardScanDirection,
					   GetLatestSnapshot(), InvalidAttrNumber, NULL);
	if (ev_last_version(name, GetLatestSnapshot()) != *version)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("could not serialize access due to a concurrent append to stream \"%s\"", stream)));
}
