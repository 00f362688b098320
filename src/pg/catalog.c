/*
 * The OIDs of everest's relations in this database, and the attribute numbers of the columns of
 * everest.events, looked up once per backend and forgotten on any relcache invalidation of them
 * (DROP EXTENSION, ALTER EXTENSION UPDATE, a restore, ...).
 */
#include "everest_pg.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_sequence.h"
#include "utils/syscache.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

static EvCatalog ev_cached;
static bool ev_cached_valid = false;
static bool ev_callback_registered = false;

static void
ev_catalog_invalidate(Datum arg, Oid relid)
{
	if (!ev_cached_valid)
		return;
	if (relid == InvalidOid || relid == ev_cached.events || relid == ev_cached.events_stream_version ||
		relid == ev_cached.events_pkey ||
		relid == ev_cached.tombstones || relid == ev_cached.tombstones_pkey || relid == ev_cached.position_seq)
		ev_cached_valid = false;
}

static Oid
ev_relid(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("everest.%s is missing", name),
				 errhint("Recreate the extension: DROP EXTENSION everest; CREATE EXTENSION everest.")));
	return relid;
}

static const char *const ev_event_column_names[EV_EVENT_NCOLUMNS] = {
	"stream", "version", "position", "id", "type", "data", "metadata", "created_at"
};

static AttrNumber
ev_attnum(Oid relid, const char *name)
{
	AttrNumber	attnum = get_attnum(relid, name);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("everest.events has no column \"%s\"", name),
				 errhint("Recreate the extension: DROP EXTENSION everest; CREATE EXTENSION everest.")));
	return attnum;
}

/* The number of columns of a relation, dropped ones included. */
static int
ev_relnatts(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	int			natts;

	if (!HeapTupleIsValid(tuple))
		return -1;
	natts = ((Form_pg_class) GETSTRUCT(tuple))->relnatts;
	ReleaseSysCache(tuple);
	return natts;
}

/*
 * Positions must come out of the sequence in the order they are drawn under the horizon lock:
 * a per-backend CACHE, a negative INCREMENT or CYCLE would hand out a position below one that
 * readers have already passed.
 */
static bool
ev_sequence_is_plain(Oid seq)
{
	HeapTuple	tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seq));
	bool		plain;

	if (!HeapTupleIsValid(tuple))
		return false;
	plain = ((Form_pg_sequence) GETSTRUCT(tuple))->seqcache == 1 &&
		((Form_pg_sequence) GETSTRUCT(tuple))->seqincrement > 0 &&
		!((Form_pg_sequence) GETSTRUCT(tuple))->seqcycle;
	ReleaseSysCache(tuple);
	return plain;
}

const EvCatalog *
ev_catalog(void)
{
	if (!ev_cached_valid)
	{
		Oid			nsp = get_namespace_oid("everest", false);

		if (!ev_callback_registered)
		{
			CacheRegisterRelcacheCallback(ev_catalog_invalidate, (Datum) 0);
			ev_callback_registered = true;
		}
		ev_cached.events = ev_relid(nsp, "events");
		ev_cached.events_in_result_order = ev_relnatts(ev_cached.events) == EV_EVENT_NCOLUMNS;
		for (int c = 0; c < EV_EVENT_NCOLUMNS; c++)
		{
			ev_cached.events_attnum[c] = ev_attnum(ev_cached.events, ev_event_column_names[c]);
			if (ev_cached.events_attnum[c] != c + 1)
				ev_cached.events_in_result_order = false;
		}
		ev_cached.events_pkey = ev_relid(nsp, "events_pkey");
		ev_cached.events_stream_version = ev_relid(nsp, "events_stream_version_key");
		ev_cached.tombstones = ev_relid(nsp, "tombstones");
		ev_cached.tombstones_pkey = ev_relid(nsp, "tombstones_pkey");
		ev_cached.position_seq = ev_relid(nsp, "position_seq");
		ev_cached.position_seq_ok = ev_sequence_is_plain(ev_cached.position_seq);
		ev_cached_valid = true;
	}
	return &ev_cached;
}
