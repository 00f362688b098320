/*
 * Reads (README.md, "Reading"): one stream by version, $all, $ce-<category> and $et-<type> by
 * position. Reads by position never go past safe_position(), which is computed before the
 * query so that the query's READ COMMITTED snapshot sees every commit at or below it.
 */
#include "everest_pg.h"

#include "catalog/pg_type.h"
#include "executor/tstoreReceiver.h"
#include "funcapi.h"
#include "access/genam.h"
#include "access/nbtree.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#define EV_EVENT_COLUMNS \
	"stream, version, position, id, type, data, metadata, created_at FROM everest.events "

static SPIPlanPtr plan_stream_fwd, plan_stream_bwd;
static SPIPlanPtr plan_all_fwd, plan_all_bwd;
static SPIPlanPtr plan_cat_fwd, plan_cat_bwd, plan_stream_by_position, plan_type_fwd, plan_type_bwd;

ev_stream_kind
ev_classify_read(const char *stream, size_t len, const char **category, size_t *category_len)
{
	ev_error	err;
	ev_stream_kind kind;

	ev_check(ev_classify_stream_for_read(stream, len, &kind, category, category_len, &err), &err);
	return kind;
}

/*
 * Where read results are kept. A read of 1,000 events needs a few hundred kilobytes for its
 * result set. In the query's own memory context those blocks go back to glibc when the query
 * ends, glibc returns them to the kernel (brk), and the next read faults the same pages in again:
 * two system calls and a page fault per 4 KB on every read, measured at about half of what
 * read_all_forward cost above a plain SELECT (bench/, read_all_1000).
 *
 * So one backend-lifetime context, whose first block (EV_RESULT_KEEP_BYTES) survives resets,
 * holds one result set at a time. It is released (reset) when the memory of the query that
 * consumes the result is reset or deleted, which also happens on error. While it is in use, a
 * second result (two reads in one query, a cursor left open) goes to the query's context as
 * PostgreSQL's own set-returning functions do. The cost: up to EV_RESULT_KEEP_BYTES stay
 * allocated in each backend that has read; only the pages a read touched are resident.
 */
#define EV_RESULT_KEEP_BYTES (1024 * 1024)

static MemoryContext result_cxt;
static bool result_cxt_in_use;

static void
ev_release_result_cxt(void *arg)
{
	MemoryContextReset(result_cxt);
	result_cxt_in_use = false;
}

/*
 * InitMaterializedSRF, with the tuplestore in result_cxt when it is free. The row type comes
 * from the caller's expected descriptor when there is one (no catalog lookup per call).
 */
static void
ev_init_result(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext per_query;
	MemoryContext store_cxt;
	MemoryContext old;
	TupleDesc	desc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
	{
		/* what InitMaterializedSRF says in these cases */
		InitMaterializedSRF(fcinfo, 0);
		return;
	}
	per_query = rsinfo->econtext->ecxt_per_query_memory;
	store_cxt = per_query;
	if (!result_cxt_in_use)
	{
		MemoryContextCallback *release;

		if (result_cxt == NULL)
			result_cxt = AllocSetContextCreate(TopMemoryContext, "everest read results",
											   EV_RESULT_KEEP_BYTES, ALLOCSET_DEFAULT_INITSIZE,
											   ALLOCSET_DEFAULT_MAXSIZE);
		release = MemoryContextAlloc(per_query, sizeof(MemoryContextCallback));
		release->func = ev_release_result_cxt;
		release->arg = NULL;
		MemoryContextRegisterResetCallback(per_query, release);
		result_cxt_in_use = true;
		store_cxt = result_cxt;
	}

	old = MemoryContextSwitchTo(per_query);
	if (rsinfo->expectedDesc != NULL)
		desc = CreateTupleDescCopy(rsinfo->expectedDesc);
	else if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	MemoryContextSwitchTo(store_cxt);
	rsinfo->setResult = tuplestore_begin_heap((rsinfo->allowedModes & SFRM_Materialize_Random) != 0,
											  false, work_mem);
	MemoryContextSwitchTo(old);
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setDesc = desc;
}

/*
 * Runs a read plan with its rows going straight into the function's materialized result: the
 * executor's slots are stored in the result tuplestore, with no SPI tuple table in between.
 */
static void
ev_run_into_result(FunctionCallInfo fcinfo, SPIPlanPtr plan, const Datum *args)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			nargs = SPI_getargcount(plan);
	ParamListInfo params = makeParamList(nargs);
	DestReceiver *dest = CreateDestReceiver(DestTuplestore);
	SPIExecuteOptions options = {0};
	int			rc;

	for (int i = 0; i < nargs; i++)
	{
		params->params[i].value = args[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = SPI_getargtypeid(plan, i);
	}
	SetTuplestoreDestReceiverParams(dest, rsinfo->setResult, rsinfo->econtext->ecxt_per_query_memory,
									false, NULL, NULL);
	options.params = params;
	options.read_only = false;	/* a fresh READ COMMITTED snapshot, taken after the horizon */
	options.dest = dest;
	rc = SPI_execute_plan_extended(plan, &options);
	ev_spi_check(rc, "reading events");
	dest->rDestroy(dest);
}

/*
 * Reads up to max_count events in `direction` of one index of everest.events, restricted by
 * `keys`, straight into the result: no SPI, plan or executor per call, and rows are copied as
 * stored (the table's columns are recorded_event's since 0.2.0). Like an SPI query in a volatile
 * function, it sees this transaction's earlier writes and, in READ COMMITTED, takes a snapshot
 * now, which for $all is after the horizon was computed.
 */
static void
ev_scan_into_result(FunctionCallInfo fcinfo, Oid index_oid, ScanKey keys, int nkeys,
					ScanDirection direction, int64 max_count)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Relation	heap = table_open(ev_catalog()->events, AccessShareLock);
	Relation	index = index_open(index_oid, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(heap, NULL);
	Snapshot	snapshot;
	IndexScanDesc scan;
	int64		count = 0;

	CommandCounterIncrement();
	snapshot = RegisterSnapshot(GetTransactionSnapshot());
	scan = index_beginscan(heap, index, snapshot, nkeys, 0);
	index_rescan(scan, keys, nkeys, NULL, 0);
	while (count < max_count && index_getnext_slot(scan, direction, slot))
	{
		CHECK_FOR_INTERRUPTS();
		tuplestore_puttupleslot(rsinfo->setResult, slot);
		count++;
	}
	index_endscan(scan);
	UnregisterSnapshot(snapshot);
	ExecDropSingleTupleTableSlot(slot);
	index_close(index, AccessShareLock);
	table_close(heap, AccessShareLock);
}

/*
 * A regular stream's or $all's read by direct index scan, when the table has the result's
 * column order (a database not yet updated from 0.1.0 goes through SPI). False: not done here.
 * `exact` reads the one event at version or position `from` with equality keys: a range key
 * would make the btree check every entry of the stream (or $all) on the page.
 */
static bool
ev_read_direct(FunctionCallInfo fcinfo, ev_stream_kind kind, const char *stream, size_t stream_len,
			   int64 from, int64 upto, bool forward, bool exact, int64 max_count)
{
	const EvCatalog *cat = ev_catalog();
	ScanKeyData keys[2];
	ScanDirection direction = forward ? ForwardScanDirection : BackwardScanDirection;

	if (!cat->events_in_result_order)
		return false;
	if (kind == EV_STREAM_REGULAR)
	{
		/* (stream, version): version >= from forward; version <= upto backward */
		ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid, C_COLLATION_OID,
							   F_TEXTEQ, PointerGetDatum(cstring_to_text_with_len(stream, stream_len)));
		if (exact)
			ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(from));
		else if (forward)
			ScanKeyInit(&keys[1], 2, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(from));
		else
			ScanKeyInit(&keys[1], 2, BTLessEqualStrategyNumber, F_INT8LE, Int64GetDatum(upto));
		ev_scan_into_result(fcinfo, cat->events_stream_version, keys, 2, direction, max_count);
		return true;
	}
	if (kind == EV_STREAM_ALL)
	{
		/* (position): from <= position <= upto; exact: position = from (the caller checked upto) */
		if (exact)
		{
			ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_INT8EQ, Int64GetDatum(from));
			ev_scan_into_result(fcinfo, cat->events_pkey, keys, 1, direction, max_count);
			return true;
		}
		ScanKeyInit(&keys[0], 1, BTGreaterEqualStrategyNumber, F_INT8GE, Int64GetDatum(forward ? from : 0));
		ScanKeyInit(&keys[1], 1, BTLessEqualStrategyNumber, F_INT8LE, Int64GetDatum(upto));
		ev_scan_into_result(fcinfo, cat->events_pkey, keys, 2, direction, max_count);
		return true;
	}
	return false;
}

/*
 * What every read starts with: the horizon checks, the (empty) result, and in *upto the highest
 * position a $all, category or handler read may return (safe_position()), or PG_INT64_MAX for a
 * stream read by version. False when max_count is 0: nothing to read.
 */
static bool
ev_read_begin(FunctionCallInfo fcinfo, ev_stream_kind kind, int64 max_count, int64 *upto)
{
	*upto = PG_INT64_MAX;
	if (kind != EV_STREAM_REGULAR)
		ev_require_horizon();
	ev_init_result(fcinfo);
	if (max_count == 0)
		return false;
	if (kind != EV_STREAM_REGULAR)
	{
		ev_require_read_committed();
		*upto = ev_safe_position();
	}
	return true;
}

/*
 * Reads into the materialized result of fcinfo. For a regular stream `from` is a version
 * (-1 backward: from the end); for $all and categories a position (-1 backward: from the
 * horizon), capped at safe_position().
 */
void
ev_read_into(FunctionCallInfo fcinfo, ev_stream_kind kind, const char *stream, size_t stream_len,
			 const char *category, size_t category_len, int64 from, bool forward, int64 max_count)
{
	Datum		args[4];
	SPIPlanPtr	plan;
	int64		upto;

	if (!ev_read_begin(fcinfo, kind, max_count, &upto))
		return;
	/* A forward read of positions starts after a checkpoint: EV006 if it was never completed. */
	if (forward && kind != EV_STREAM_REGULAR)
		ev_require_completed(from - 1, upto);
	if (!ev_read_window(forward, from, &upto))
		return;
	if (ev_read_direct(fcinfo, kind, stream, stream_len, from, upto, forward, false, max_count))
		return;

	SPI_connect();
	switch ((int) kind)
	{
		case EV_STREAM_REGULAR:
			{
				Oid			types[3] = {TEXTOID, INT8OID, INT8OID};

				plan = forward
					? ev_prepare(&plan_stream_fwd, "SELECT " EV_EVENT_COLUMNS
								 "WHERE stream OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.>=) $2 "
								 "ORDER BY version LIMIT $3", 3, types)
					: ev_prepare(&plan_stream_bwd, "SELECT " EV_EVENT_COLUMNS
								 "WHERE stream OPERATOR(pg_catalog.=) $1 AND version OPERATOR(pg_catalog.<=) $2 "
								 "ORDER BY version DESC LIMIT $3", 3, types);
				args[0] = PointerGetDatum(cstring_to_text_with_len(stream, stream_len));
				args[1] = Int64GetDatum(forward ? from : upto);
				args[2] = Int64GetDatum(max_count);
				break;
			}
		case EV_STREAM_ALL:
			{
				Oid			types[3] = {INT8OID, INT8OID, INT8OID};

				plan = forward
					? ev_prepare(&plan_all_fwd, "SELECT " EV_EVENT_COLUMNS
								 "WHERE position OPERATOR(pg_catalog.>=) $1 AND position OPERATOR(pg_catalog.<=) $2 "
								 "ORDER BY position LIMIT $3", 3, types)
					: ev_prepare(&plan_all_bwd, "SELECT " EV_EVENT_COLUMNS
								 "WHERE position OPERATOR(pg_catalog.>=) $1 AND position OPERATOR(pg_catalog.<=) $2 "
								 "ORDER BY position DESC LIMIT $3", 3, types);
				args[0] = Int64GetDatum(forward ? from : 0);
				args[1] = Int64GetDatum(upto);
				args[2] = Int64GetDatum(max_count);
				break;
			}
		case EV_STREAM_REGULAR_BY_POSITION:
			{
				/* Within a stream, positions grow with versions: version order is position order. */
				Oid			types[4] = {TEXTOID, INT8OID, INT8OID, INT8OID};

				Assert(forward);
				plan = ev_prepare(&plan_stream_by_position, "SELECT " EV_EVENT_COLUMNS
								  "WHERE stream OPERATOR(pg_catalog.=) $1 "
								  "AND position OPERATOR(pg_catalog.>=) $2 AND position OPERATOR(pg_catalog.<=) $3 "
								  "ORDER BY version LIMIT $4", 4, types);
				args[0] = PointerGetDatum(cstring_to_text_with_len(stream, stream_len));
				args[1] = Int64GetDatum(from);
				args[2] = Int64GetDatum(upto);
				args[3] = Int64GetDatum(max_count);
				break;
			}
		case EV_STREAM_TYPE:
			{
				Oid			types[4] = {TEXTOID, INT8OID, INT8OID, INT8OID};

				/* the index (type, position), like a category's */
				plan = forward
					? ev_prepare(&plan_type_fwd, "SELECT " EV_EVENT_COLUMNS
								 "WHERE type OPERATOR(pg_catalog.=) $1 "
								 "AND position OPERATOR(pg_catalog.>=) $2 AND position OPERATOR(pg_catalog.<=) $3 "
								 "ORDER BY position LIMIT $4", 4, types)
					: ev_prepare(&plan_type_bwd, "SELECT " EV_EVENT_COLUMNS
								 "WHERE type OPERATOR(pg_catalog.=) $1 "
								 "AND position OPERATOR(pg_catalog.>=) $2 AND position OPERATOR(pg_catalog.<=) $3 "
								 "ORDER BY position DESC LIMIT $4", 4, types);
				args[0] = PointerGetDatum(cstring_to_text_with_len(category, category_len));
				args[1] = Int64GetDatum(forward ? from : 0);
				args[2] = Int64GetDatum(upto);
				args[3] = Int64GetDatum(max_count);
				break;
			}
		case EV_STREAM_CATEGORY:
		default:
			{
				Oid			types[4] = {TEXTOID, INT8OID, INT8OID, INT8OID};

				plan = forward
					? ev_prepare_opts(&plan_cat_fwd, "SELECT " EV_EVENT_COLUMNS
								 "WHERE pg_catalog.split_part(stream, '-', 1) OPERATOR(pg_catalog.=) $1 "
								 "AND position OPERATOR(pg_catalog.>=) $2 AND position OPERATOR(pg_catalog.<=) $3 "
								 "ORDER BY position LIMIT $4", 4, types, CURSOR_OPT_CUSTOM_PLAN)
					: ev_prepare_opts(&plan_cat_bwd, "SELECT " EV_EVENT_COLUMNS
								 "WHERE pg_catalog.split_part(stream, '-', 1) OPERATOR(pg_catalog.=) $1 "
								 "AND position OPERATOR(pg_catalog.>=) $2 AND position OPERATOR(pg_catalog.<=) $3 "
								 "ORDER BY position DESC LIMIT $4", 4, types, CURSOR_OPT_CUSTOM_PLAN);
				/* a custom plan: how rare the category is decides between its index and $all's */
				args[0] = PointerGetDatum(cstring_to_text_with_len(category, category_len));
				args[1] = Int64GetDatum(forward ? from : 0);
				args[2] = Int64GetDatum(upto);
				args[3] = Int64GetDatum(max_count);
				break;
			}
	}
	ev_run_into_result(fcinfo, plan, args);
	SPI_finish();
}

/*
 * The query of a handler member's read (read_handler_events, park_event's check): the events of
 * `kind` (from $all, a category, or a regular stream by position) at positions $2..$3, at most
 * $4, filtered by what `filter` asks: types ($5), the member's partition ($8 of a group of $7),
 * and the floors a resize left for handler $6 (docs/groups.md). The filters are the query's, so
 * max_count counts the events taken. One cached plan per shape.
 */
SPIPlanPtr
ev_handler_read_plan(ev_stream_kind kind, const EvHandlerFilter *filter)
{
	static SPIPlanPtr plans[4][2][2][2];
	Oid			argtypes[8] = {TEXTOID, INT8OID, INT8OID, INT8OID, TEXTARRAYOID, TEXTOID, INT4OID, INT4OID};
	int			k = kind == EV_STREAM_ALL ? 0 : kind == EV_STREAM_CATEGORY ? 1 : kind == EV_STREAM_TYPE ? 3 : 2;
	bool		typed = filter->types != (Datum) 0;
	bool		grouped = filter->members > 1;
	SPIPlanPtr *cache = &plans[k][typed][grouped][filter->floors];
	StringInfoData sql;

	Assert(kind == EV_STREAM_ALL || kind == EV_STREAM_CATEGORY || kind == EV_STREAM_TYPE ||
		   kind == EV_STREAM_REGULAR_BY_POSITION);
	if (*cache != NULL)
		return ev_prepare(cache, NULL, 0, NULL);
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT " EV_EVENT_COLUMNS "AS e WHERE ");
	if (k == 1)
		appendStringInfoString(&sql, "pg_catalog.split_part(stream, '-', 1) OPERATOR(pg_catalog.=) $1 AND ");
	else if (k == 2)
		appendStringInfoString(&sql, "stream OPERATOR(pg_catalog.=) $1 AND ");
	else if (k == 3)
		appendStringInfoString(&sql, "type OPERATOR(pg_catalog.=) $1 AND ");
	appendStringInfoString(&sql, "position OPERATOR(pg_catalog.>=) $2 AND position OPERATOR(pg_catalog.<=) $3");
	if (typed)
		appendStringInfoString(&sql, " AND type OPERATOR(pg_catalog.=) ANY ($5)");
	if (grouped)
		appendStringInfoString(&sql, " AND everest.stream_partition(e.stream, $7) OPERATOR(pg_catalog.=) $8");
	if (filter->floors)
		appendStringInfoString(&sql, " AND NOT EXISTS (SELECT FROM everest.handler_floors AS f "
							   "WHERE f.handler OPERATOR(pg_catalog.=) $6 "
							   "AND f.member OPERATOR(pg_catalog.=) everest.stream_partition(e.stream, f.members) "
							   "AND e.position OPERATOR(pg_catalog.<=) f.position)");
	appendStringInfoString(&sql, k == 2 ? " ORDER BY version LIMIT $4" : " ORDER BY position LIMIT $4");
	/* a custom plan for categories: how rare the category is decides between its index and $all's */
	return ev_prepare_opts(cache, sql.data, 8, argtypes, k == 1 ? CURSOR_OPT_CUSTOM_PLAN : 0);
}

/* The arguments of ev_handler_read_plan's query. */
void
ev_handler_read_args(Datum *args, ev_stream_kind kind, const char *stream, size_t stream_len,
					 const char *category, size_t category_len, int64 from, int64 upto, int64 max_count,
					 const EvHandlerFilter *filter)
{
	/* every parameter gets a valid value, used or not (error reports may print them) */
	args[0] = kind == EV_STREAM_ALL ? PointerGetDatum(cstring_to_text(""))
		: kind == EV_STREAM_CATEGORY || kind == EV_STREAM_TYPE
		? PointerGetDatum(cstring_to_text_with_len(category, category_len))
		: PointerGetDatum(cstring_to_text_with_len(stream, stream_len));
	args[1] = Int64GetDatum(from);
	args[2] = Int64GetDatum(upto);
	args[3] = Int64GetDatum(max_count);
	args[4] = filter->types != (Datum) 0 ? filter->types : PointerGetDatum(construct_empty_array(TEXTOID));
	args[5] = PointerGetDatum(cstring_to_text_with_len(filter->handler, filter->handler_len));
	args[6] = Int32GetDatum(filter->members);
	args[7] = Int32GetDatum(filter->member);
}

/*
 * A handler member's read (read_handler_events) from `from` up to safe_position(): without a
 * filter, the plain read of its source; with one, ev_handler_read_plan's query.
 */
void
ev_read_handler_into(FunctionCallInfo fcinfo, ev_stream_kind kind, const char *stream, size_t stream_len,
					 const char *category, size_t category_len, int64 from, int64 max_count,
					 const EvHandlerFilter *filter)
{
	Datum		args[8];
	int64		upto;

	if (filter->types == (Datum) 0 && filter->members <= 1 && !filter->floors)
	{
		ev_read_into(fcinfo, kind, stream, stream_len, category, category_len, from, true, max_count);
		return;
	}
	if (!ev_read_begin(fcinfo, kind, max_count, &upto))
		return;
	ev_require_completed(from - 1, upto);
	if (!ev_read_window(true, from, &upto))
		return;
	ev_handler_read_args(args, kind, stream, stream_len, category, category_len, from, upto, max_count, filter);
	SPI_connect();
	ev_run_into_result(fcinfo, ev_handler_read_plan(kind, filter), args);
	SPI_finish();
}

/*
 * Reads one event: by version in a stream, by position in $all or a category; -1: the last.
 * The last event at or below `at`, kept when it is exactly `at`.
 */
static void
ev_read_one(FunctionCallInfo fcinfo, const char *stream, size_t len, int64 at)
{
	const char *category;
	size_t		category_len;
	ev_stream_kind kind = ev_classify_read(stream, len, &category, &category_len);
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TupleTableSlot *slot;
	bool		keep = false;

	if (at < -1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("version must be -1 (the last event) or >= 0, got " INT64_FORMAT, at)));
	if (at >= 0 && (kind == EV_STREAM_REGULAR || kind == EV_STREAM_ALL) &&
		ev_catalog()->events_in_result_order)
	{
		/* one equality lookup */
		int64		upto;

		if (ev_read_begin(fcinfo, kind, 1, &upto) && ev_read_window(true, at, &upto))
			(void) ev_read_direct(fcinfo, kind, stream, len, at, upto, true, true, 1);
		return;
	}
	ev_read_into(fcinfo, kind, stream, len, category, category_len, at, false, 1);
	if (at == -1)
		return;

	slot = MakeSingleTupleTableSlot(rsinfo->setDesc, &TTSOpsMinimalTuple);
	if (tuplestore_gettupleslot(rsinfo->setResult, true, false, slot))
	{
		bool		isnull;

		/* recorded_event: version is column 2, position column 3 */
		keep = DatumGetInt64(slot_getattr(slot, kind == EV_STREAM_REGULAR ? 2 : 3, &isnull)) == at;
	}
	ExecDropSingleTupleTableSlot(slot);
	if (keep)
		tuplestore_rescan(rsinfo->setResult);
	else
		tuplestore_clear(rsinfo->setResult);
}

PG_FUNCTION_INFO_V1(everest_read_event);
Datum
everest_read_event(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *stream = ev_text_arg(fcinfo, 0, "stream", &len);

	ev_require_arg(fcinfo, 1, "version");
	ev_read_one(fcinfo, stream, len, PG_GETARG_INT64(1));
	ev_stats_read(fcinfo);
	return (Datum) 0;
}

/* A read's start: >= 0 forward; -1 (the end) or >= 0 backward; NULL is 22004. */
static int64
ev_start_arg(FunctionCallInfo fcinfo, int argno, const char *name, bool forward)
{
	int64		from;

	ev_require_arg(fcinfo, argno, name);
	from = PG_GETARG_INT64(argno);
	if (forward ? from < 0 : from < -1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 forward ? errmsg("%s must be >= 0, got " INT64_FORMAT, name, from)
				 : errmsg("%s must be -1 (the end) or >= 0, got " INT64_FORMAT, name, from)));
	return from;
}

static Datum
ev_read_stream(FunctionCallInfo fcinfo, bool forward)
{
	size_t		len;
	char	   *stream = ev_text_arg(fcinfo, 0, "stream", &len);
	const char *category;
	size_t		category_len;
	ev_stream_kind kind = ev_classify_read(stream, len, &category, &category_len);
	int64		from = ev_start_arg(fcinfo, 1, "from_version", forward);
	int64		max_count = ev_max_count_arg(fcinfo, 2);

	ev_read_into(fcinfo, kind, stream, len, category, category_len, from, forward, max_count);
	ev_stats_read(fcinfo);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(everest_read_stream_forward);
Datum
everest_read_stream_forward(PG_FUNCTION_ARGS)
{
	return ev_read_stream(fcinfo, true);
}

PG_FUNCTION_INFO_V1(everest_read_stream_backward);
Datum
everest_read_stream_backward(PG_FUNCTION_ARGS)
{
	return ev_read_stream(fcinfo, false);
}

static Datum
ev_read_all(FunctionCallInfo fcinfo, bool forward)
{
	int64		from = ev_start_arg(fcinfo, 0, "from_position", forward);
	int64		max_count = ev_max_count_arg(fcinfo, 1);

	ev_read_into(fcinfo, EV_STREAM_ALL, NULL, 0, NULL, 0, from, forward, max_count);
	ev_stats_read(fcinfo);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(everest_read_all_forward);
Datum
everest_read_all_forward(PG_FUNCTION_ARGS)
{
	return ev_read_all(fcinfo, true);
}

PG_FUNCTION_INFO_V1(everest_read_all_backward);
Datum
everest_read_all_backward(PG_FUNCTION_ARGS)
{
	return ev_read_all(fcinfo, false);
}

PG_FUNCTION_INFO_V1(everest_stream_version);
Datum
everest_stream_version(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *stream = ev_text_arg(fcinfo, 0, "stream", &len);
	int64		version;
	bool		tombstoned;
	const char *category;
	size_t		category_len;

	if (ev_classify_read(stream, len, &category, &category_len) != EV_STREAM_REGULAR)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" has positions, not a version", stream),
				 errhint("Use everest.safe_position() for the end of $all.")));
	ev_stream_state(stream, len, false, &version, &tombstoned);
	if (tombstoned)
		version = -1;
	PG_RETURN_INT64(version);
}
