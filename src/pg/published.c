/*
 * The horizon as others see it (docs/topologies.md): the row the primary publishes in
 * everest.horizon, which hot standbys and logical mirrors read instead of shared memory; whether
 * this database is a logical-replication mirror; the last position the sequence handed out.
 * Below horizon.c (the primary's in-flight positions), epochs.c and notify.c, which all use it.
 */
#include "everest_pg.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/* The sequence's last drawn value, 0 before the first. */
int64
ev_sequence_last(Oid seq)
{
	LOCAL_FCINFO(fcinfo, 1);
	Datum		result;

	InitFunctionCallInfoData(*fcinfo, NULL, 1, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = ObjectIdGetDatum(seq);
	fcinfo->args[0].isnull = false;
	result = pg_sequence_last_value(fcinfo);
	return fcinfo->isnull ? 0 : DatumGetInt64(result);
}

/*
 * On a hot standby (docs/topologies.md): the horizon the primary's notifier last published in
 * everest.horizon, read with the latest snapshot. The row's commit follows, in the WAL, the
 * commits of every position at or below it, so a snapshot that sees the row sees them; the
 * caller's reads take their snapshot after this one. A standby has no positions in flight of its
 * own, and its sequence shows what the primary WAL-logged (up to 32 ahead), never what is safe.
 */
int64
ev_published_horizon(void)
{
	Oid			relid = ev_catalog()->horizon;
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	Snapshot	snapshot;
	int64		published = 0;

	if (!OidIsValid(relid))
	{
		if (!RecoveryInProgress())
			return 0;			/* a primary on 0.3.0: nothing published, nothing needed */
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this database's everest publishes no horizon for standbys"),
				 errhint("Run ALTER EXTENSION everest UPDATE on the primary.")));
	}
	rel = table_open(relid, AccessShareLock);
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snapshot, 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tuple, 2, RelationGetDescr(rel), &isnull);

		if (!isnull && DatumGetInt64(d) > published)
			published = DatumGetInt64(d);
	}
	table_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return published;
}

int64
ev_last_assigned(void)
{
	return ev_sequence_last(ev_catalog()->position_seq);
}

/*
 * A logical-replication mirror (docs/topologies.md): a database whose everest.events is a table
 * of one of its subscriptions. Its horizon is the one the publisher published, once every
 * subscribed everest table finished its initial copy ('r'eady): the copies are taken at different
 * snapshots, so a horizon row can arrive before the events it covers. Cached; pg_subscription_rel
 * changes invalidate it.
 */
static bool ev_mirror_valid = false;
static bool ev_mirror = false;
static bool ev_mirror_ready = false;
static bool ev_mirror_callback = false;
static SPIPlanPtr plan_mirror;

static void
ev_mirror_invalidate(Datum arg, int cacheid, uint32 hashvalue)
{
	ev_mirror_valid = false;
}

static void
ev_mirror_load(void)
{
	const EvCatalog *cat = ev_catalog();
	Oid			types[1] = {OIDARRAYOID};
	Datum		args[1];
	Datum		relids[4];
	int			n = 0;
	int			rc;
	bool		isnull;

	if (!ev_mirror_callback)
	{
		CacheRegisterSyscacheCallback(SUBSCRIPTIONRELMAP, ev_mirror_invalidate, (Datum) 0);
		ev_mirror_callback = true;
	}
	relids[n++] = ObjectIdGetDatum(cat->events);
	if (OidIsValid(cat->horizon))
		relids[n++] = ObjectIdGetDatum(cat->horizon);
	if (OidIsValid(cat->epochs))
		relids[n++] = ObjectIdGetDatum(cat->epochs);
	relids[n++] = ObjectIdGetDatum(cat->tombstones);	/* tombstoned streams read as empty */
	args[0] = PointerGetDatum(construct_array(relids, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_mirror,
									 "SELECT pg_catalog.bool_or(srrelid OPERATOR(pg_catalog.=) $1[1]), "
									 "pg_catalog.bool_and(srsubstate OPERATOR(pg_catalog.=) 'r') "
									 "AND pg_catalog.bool_or(srrelid OPERATOR(pg_catalog.=) $1[2]) "
									 "FROM pg_catalog.pg_subscription_rel WHERE srrelid OPERATOR(pg_catalog.=) ANY ($1)",
									 1, types),
						  args, NULL, true, 1);
	ev_spi_check(rc, "looking for subscriptions");
	ev_mirror = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
	ev_mirror_ready = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)) && !isnull;
	SPI_finish();
	ev_mirror_valid = true;
}

bool
ev_is_mirror(void)
{
	if (!ev_mirror_valid)
		ev_mirror_load();
	return ev_mirror;
}

/* A mirror whose subscribed everest tables all finished their initial copy. */
bool
ev_mirror_synced(void)
{
	return ev_is_mirror() && ev_mirror_ready;
}

/* Appends and deletes belong to the publisher: a mirror refuses them, as a standby does. */
void
ev_require_writable_store(void)
{
	if (!RecoveryInProgress() && ev_is_mirror())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot change events on a logical-replication mirror"),
				 errdetail("everest.events in this database is replicated from a publisher by a subscription."),
				 errhint("Append on the publisher. To make this database the primary, drop the subscription first "
						 "(docs/topologies.md, cutover).")));
}

/*
 * Publishes the horizon in everest.horizon, for hot standbys and logical mirrors
 * (docs/topologies.md). The notifier does it in its own transaction, so that appenders do not
 * queue on the row, and commits it with synchronous_commit = local: a synchronous standby that is
 * down must not stop the horizon (the row only ever trails the truth, so losing it in a crash is
 * safe). Without a notifier an appender does it at commit (horizon.c). A database not yet
 * updated to 0.4.0 has no such table.
 */
static SPIPlanPtr plan_publish;

void
ev_publish_horizon(int64 safe, bool own_transaction)
{
	Oid			types[1] = {INT8OID};
	Datum		args[1];

	if (!OidIsValid(ev_catalog()->horizon))
		return;
	if (own_transaction)		/* the notifier's; an appender's commit keeps its own setting */
		(void) set_config_option("synchronous_commit", "local", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_LOCAL, true, 0, false);
	args[0] = Int64GetDatum(safe);
	SPI_connect();
	ev_spi_check(SPI_execute_plan(ev_prepare(&plan_publish,
											 "INSERT INTO everest.horizon AS h (position) VALUES ($1) "
											 "ON CONFLICT (singleton) DO UPDATE SET position = excluded.position, "
											 "published_at = excluded.published_at "
											 "WHERE h.position OPERATOR(pg_catalog.<) excluded.position",
											 1, types),
								  args, NULL, false, 0),
				 "publishing the horizon");
	SPI_finish();
}

