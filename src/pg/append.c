/*
 * Appends (DESIGN.md section 2, Append).
 *
 *   1. arguments and the batch are validated by the core, fed straight from jsonb;
 *   2. the stream is locked (streams.c): writers to one stream queue here, writers to other
 *      streams do not notice; its version and tombstone are read;
 *   3. ids the client gave are looked up: all stored as that very batch is an idempotent retry
 *      (the original result, nothing written), any other reuse is EV003;
 *   4. the expected version is checked (EV001), positions are drawn (horizon.c), rows inserted.
 */
#include "everest_pg.h"
#include "compat.h"

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "funcapi.h"
#include "port.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

/* What the glue keeps of each event beside the core's view of it. */
typedef struct EvPayload
{
	Datum		data;
	Datum		metadata;
	bool		metadata_null;
} EvPayload;

static SPIPlanPtr plan_find_ids;

/* Looks up the batch's client ids; when any is stored, decides the retry or raises EV003. */
static bool
ev_idempotent_retry(const char *stream, size_t len, ev_batch *batch, int64 expected,
					ev_append_result *result)
{
	size_t		n = ev_batch_size(batch);
	Datum	   *ids = palloc(n * sizeof(Datum));
	int			nids = 0;
	Oid			types[2] = {UUIDARRAYOID, TEXTOID};
	Datum		args[2];
	ev_stored_event *stored;
	ev_error	err;
	int			rc;

	for (size_t i = 0; i < n; i++)
	{
		pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));

		if (ev_batch_id(batch, i, id->data))
			ids[nids++] = UUIDPGetDatum(id);
	}
	args[0] = PointerGetDatum(construct_array(ids, nids, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR));
	args[1] = PointerGetDatum(cstring_to_text_with_len(stream, len));
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_find_ids,
									 "SELECT id, stream OPERATOR(pg_catalog.=) $2, version, position "
									 "FROM everest.events WHERE id OPERATOR(pg_catalog.=) ANY ($1)",
									 2, types),
						  args, NULL, false, 0);
	ev_spi_check(rc, "looking up event ids");
	if (SPI_processed == 0)
	{
		SPI_finish();
		return false;
	}

	stored = palloc(SPI_processed * sizeof(ev_stored_event));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	row = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;

		memcpy(stored[i].id, DatumGetUUIDP(SPI_getbinval(row, desc, 1, &isnull))->data, UUID_LEN);
		stored[i].same_stream = DatumGetBool(SPI_getbinval(row, desc, 2, &isnull));
		stored[i].version = DatumGetInt64(SPI_getbinval(row, desc, 3, &isnull));
		stored[i].position = DatumGetInt64(SPI_getbinval(row, desc, 4, &isnull));
	}
	ev_check(ev_match_idempotent_retry(stream, len, batch, expected, stored, SPI_processed,
									   result, &err), &err);
	SPI_finish();
	return true;
}

/*
 * Inserts the batch straight into everest.events and its indexes, as the executor's INSERT
 * would (heap insert, then every index with its unique checks), without planning or starting an
 * executor per append. A concurrent insert of the same id makes the unique check raise 23505,
 * which becomes EV003 here.
 */
static inline void
ev_set_column(TupleTableSlot *slot, const AttrNumber *attnum, EvEventColumn column, Datum value)
{
	slot->tts_values[attnum[column] - 1] = value;
}

static void
ev_insert_events(const char *stream, size_t len, ev_batch *batch, const EvPayload *payloads,
				 int64 first_version, const int64 *positions)
{
	size_t		n = ev_batch_size(batch);
	MemoryContext caller = CurrentMemoryContext;
	Relation	rel = table_open(ev_catalog()->events, RowExclusiveLock);
	EState	   *estate = CreateExecutorState();
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	TupleTableSlot *slot;
	Datum		stream_text = PointerGetDatum(cstring_to_text_with_len(stream, len));
	Datum		created_at = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	CommandId	cid = GetCurrentCommandId(true);
	/* Unix time in ms for generated (version 7) ids: PostgreSQL counts from 2000-01-01. */
	uint64		unix_ms = (uint64) (GetCurrentTimestamp() / 1000 +
									(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000);
	const AttrNumber *att = ev_catalog()->events_attnum;

	Assert(RelationGetDescr(rel)->natts == EV_EVENT_NCOLUMNS);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	slot = ExecInitExtraTupleSlot(estate, RelationGetDescr(rel), &TTSOpsVirtual);

	PG_TRY();
	{
		for (size_t i = 0; i < n; i++)
		{
			pg_uuid_t  *id = palloc(sizeof(pg_uuid_t));
			size_t		type_len;
			const char *type = ev_batch_type(batch, i, &type_len);

			CHECK_FOR_INTERRUPTS();	/* ... and while it is written */

			if (!ev_batch_id(batch, i, id->data))
			{
				uint8		random[UUID_LEN];

				if (!pg_strong_random(random, UUID_LEN))
					ereport(ERROR,
							(errcode(ERRCODE_INTERNAL_ERROR),
							 errmsg("could not generate random values for an event id")));
				ev_make_uuid_v7(unix_ms, random, id->data);
			}
			/* Columns by name: their order differs between 0.1.0 and 0.2.0 (EvCatalog). */
			ExecClearTuple(slot);
			memset(slot->tts_isnull, 0, EV_EVENT_NCOLUMNS * sizeof(bool));
			ev_set_column(slot, att, EV_COL_STREAM, stream_text);
			ev_set_column(slot, att, EV_COL_VERSION, Int64GetDatum(first_version + (int64) i));
			ev_set_column(slot, att, EV_COL_POSITION, Int64GetDatum(positions[i]));
			ev_set_column(slot, att, EV_COL_ID, UUIDPGetDatum(id));
			ev_set_column(slot, att, EV_COL_TYPE, PointerGetDatum(cstring_to_text_with_len(type, type_len)));
			ev_set_column(slot, att, EV_COL_DATA, payloads[i].data);
			ev_set_column(slot, att, EV_COL_METADATA, payloads[i].metadata);
			slot->tts_isnull[att[EV_COL_METADATA] - 1] = payloads[i].metadata_null;
			ev_set_column(slot, att, EV_COL_CREATED_AT, created_at);
			ExecStoreVirtualTuple(slot);

			table_tuple_insert(rel, slot, cid, 0, NULL);
			(void) ev_insert_index_tuples(rri, slot, estate);
			ResetPerTupleExprContext(estate);
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		/* The same id appended concurrently to another stream: the loser gets EV003. */
		if (edata->sqlerrcode == ERRCODE_UNIQUE_VIOLATION && edata->constraint_name != NULL &&
			strcmp(edata->constraint_name, "events_id_key") == 0)
		{
			ev_error	err;

			FlushErrorState();
			ev_duplicate_id_error(edata->detail, &err);
			ev_raise(&err);
		}
		FreeErrorData(edata);
		PG_RE_THROW();
	}
	PG_END_TRY();

	ExecCloseIndices(rri);
	ExecResetTupleTable(estate->es_tupleTable, false);
	FreeExecutorState(estate);
	table_close(rel, NoLock);
	CommandCounterIncrement();	/* later reads in this transaction see the events */
}

/* The common path of append_events and append_event. */
static ev_append_result
ev_append(const char *stream, size_t len, ev_batch *batch, const EvPayload *payloads,
		  int64 expected)
{
	ev_append_result result;
	ev_error	err;
	int64		version;
	bool		tombstoned;
	size_t		n = ev_batch_size(batch);
	int64	   *positions;

	ev_require_horizon();
	ev_lock_stream(stream, len);
	ev_stream_state(stream, len, true, &version, &tombstoned);
	ev_check(ev_check_not_tombstoned(stream, len, tombstoned, &err), &err);

	if (ev_batch_has_client_ids(batch) &&
		ev_idempotent_retry(stream, len, batch, expected, &result))
	{
		ev_stats_add(EV_STAT_IDEMPOTENT_RETRIES, 1);
		return result;
	}
	ev_check(ev_check_expected_version(stream, len, expected, version, &err), &err);
	if (ev_event_schemas_present())
	{
		/* EV007 before anything is written (a retry above returned without re-validating) */
		Datum	   *data = palloc(n * sizeof(Datum));

		for (size_t i = 0; i < n; i++)
			data[i] = payloads[i].data;
		ev_check_event_schemas(batch, data, n);
		pfree(data);
	}

	positions = palloc(n * sizeof(int64));
	ev_draw_positions((int) n, positions);
	ev_insert_events(stream, len, batch, payloads, version + 1, positions);
	ev_stats_add(EV_STAT_APPENDS, 1);
	ev_stats_add(EV_STAT_EVENTS_APPENDED, n);

	result.first_version = version + 1;
	result.last_version = version + (int64) n;
	result.first_position = positions[0];
	result.last_position = positions[n - 1];
	return result;
}

static Datum
ev_return_result(FunctionCallInfo fcinfo, const ev_append_result *r)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	ev_init_srf(fcinfo);
	values[0] = Int64GetDatum(r->first_version);
	values[1] = Int64GetDatum(r->last_version);
	values[2] = Int64GetDatum(r->first_position);
	values[3] = Int64GetDatum(r->last_position);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}

static ev_json_kind
ev_kind_of(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return EV_JSON_NULL;
		case jbvBool:
			return EV_JSON_BOOL;
		case jbvNumeric:
			return EV_JSON_NUMBER;
		case jbvString:
			return EV_JSON_STRING;
		case jbvBinary:
			return JsonContainerIsObject(v->val.binary.data) ? EV_JSON_OBJECT
				: JsonContainerIsScalar(v->val.binary.data) ? EV_JSON_NULL
				: EV_JSON_ARRAY;
		case jbvArray:
			return EV_JSON_ARRAY;
		case jbvObject:
			return EV_JSON_OBJECT;
		default:
			return EV_JSON_NULL;
	}
}

static ev_json_kind
ev_kind_of_jsonb(Jsonb *jb)
{
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbExtractScalar(&jb->root, &v);
		return ev_kind_of(&v);
	}
	return JB_ROOT_IS_OBJECT(jb) ? EV_JSON_OBJECT : EV_JSON_ARRAY;
}

/* Walks the jsonb batch once, feeding the core's validator and keeping data and metadata. */
static EvPayload *
ev_read_batch(Jsonb *events, ev_batch *batch, Datum empty_object)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	EvPayload  *payloads;
	int			i = 0;
	ev_error	err;

	if (JB_ROOT_IS_SCALAR(events) || !JB_ROOT_IS_ARRAY(events))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be a non-empty JSON array"),
				 errhint("Pass at least one event, e.g. '[{\"type\": \"Opened\"}]'.")));
	payloads = palloc0(Max(JB_ROOT_COUNT(events), 1) * sizeof(EvPayload));

	it = JsonbIteratorInit(&events->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		is_object;

		if (tok != WJB_ELEM)
			continue;
		CHECK_FOR_INTERRUPTS();	/* a batch of 500,000 events can be cancelled while parsed */
		is_object = v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data);
		ev_check(ev_batch_begin_event(batch, is_object, &err), &err);
		payloads[i].data = empty_object;
		payloads[i].metadata_null = true;
		if (is_object)
		{
			JsonbIterator *fields = JsonbIteratorInit(v.val.binary.data);
			JsonbValue	key;
			JsonbValue	val;

			while ((tok = JsonbIteratorNext(&fields, &key, true)) != WJB_DONE)
			{
				ev_json_kind kind;

				if (tok != WJB_KEY)
					continue;
				tok = JsonbIteratorNext(&fields, &val, true);
				kind = ev_kind_of(&val);
				ev_check(ev_batch_field(batch, key.val.string.val, key.val.string.len, kind,
										val.type == jbvString ? val.val.string.val : NULL,
										val.type == jbvString ? val.val.string.len : 0, &err),
						 &err);
				if (key.val.string.len == 4 && memcmp(key.val.string.val, "data", 4) == 0)
					payloads[i].data = JsonbPGetDatum(JsonbValueToJsonb(&val));
				else if (key.val.string.len == 8 && memcmp(key.val.string.val, "metadata", 8) == 0 &&
						 kind == EV_JSON_OBJECT)
				{
					payloads[i].metadata = JsonbPGetDatum(JsonbValueToJsonb(&val));
					payloads[i].metadata_null = false;
				}
			}
		}
		ev_check(ev_batch_end_event(batch, &err), &err);
		i++;
	}
	ev_check(ev_batch_finish(batch, &err), &err);
	return payloads;
}

static Datum
ev_empty_object(void)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
}

static int64
ev_expected_arg(FunctionCallInfo fcinfo, int argno)
{
	ev_error	err;
	int64		expected;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected_version must not be null"),
				 errhint("Use -2 (any), -1 (no stream), -4 (stream exists) or an exact version >= 0.")));
	expected = PG_GETARG_INT64(argno);
	ev_check(ev_check_expected_version_value(expected, &err), &err);
	return expected;
}

/* Frees the core's batch on every exit, error or not. */
static ev_batch *
ev_new_batch(void)
{
	ev_error	err;
	ev_batch   *batch = ev_batch_new(&err);

	if (batch == NULL)
		ev_raise(&err);
	return batch;
}

PG_FUNCTION_INFO_V1(everest_append_events);
Datum
everest_append_events(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *stream = ev_text_arg(fcinfo, 0, "stream", &len);
	Jsonb	   *events;
	int64		expected;
	ev_error	err;
	ev_batch   *volatile batch = NULL;
	ev_append_result result;

	ev_check(ev_check_writable_stream(stream, len, &err), &err);
	ev_require_arg(fcinfo, 1, "events");
	events = PG_GETARG_JSONB_P(1);
	expected = ev_expected_arg(fcinfo, 2);

	batch = ev_new_batch();
	PG_TRY();
	{
		EvPayload  *payloads = ev_read_batch(events, batch, ev_empty_object());

		result = ev_append(stream, len, batch, payloads, expected);
	}
	PG_FINALLY();
	{
		ev_batch_free(batch);
	}
	PG_END_TRY();
	return ev_return_result(fcinfo, &result);
}

PG_FUNCTION_INFO_V1(everest_append_event);
Datum
everest_append_event(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *stream = ev_text_arg(fcinfo, 0, "stream", &len);
	size_t		type_len;
	char	   *type;
	int64		expected;
	ev_error	err;
	ev_batch   *volatile batch = NULL;
	EvPayload	payload;
	ev_append_result result;

	ev_check(ev_check_writable_stream(stream, len, &err), &err);
	type = ev_text_arg(fcinfo, 1, "type", &type_len);
	ev_require_arg(fcinfo, 2, "data");
	expected = ev_expected_arg(fcinfo, 4);

	payload.data = PG_GETARG_DATUM(2);
	payload.metadata_null = true;
	payload.metadata = (Datum) 0;

	batch = ev_new_batch();
	PG_TRY();
	{
		bool		ok = ev_batch_begin_event(batch, true, &err) &&
			ev_batch_field(batch, "type", 4, EV_JSON_STRING, type, type_len, &err);

		if (ok && !PG_ARGISNULL(3))
		{
			Jsonb	   *metadata = PG_GETARG_JSONB_P(3);
			ev_json_kind kind = ev_kind_of_jsonb(metadata);

			ok = ev_batch_field(batch, "metadata", 8, kind, NULL, 0, &err);
			if (kind == EV_JSON_OBJECT)
			{
				payload.metadata = JsonbPGetDatum(metadata);
				payload.metadata_null = false;
			}
		}
		if (ok && !PG_ARGISNULL(5))
		{
			char	   *id = DatumGetCString(DirectFunctionCall1(uuid_out, PG_GETARG_DATUM(5)));

			ok = ev_batch_field(batch, "id", 2, EV_JSON_STRING, id, strlen(id), &err);
		}
		ok = ok && ev_batch_end_event(batch, &err) && ev_batch_finish(batch, &err);
		ev_check(ok, &err);
		result = ev_append(stream, len, batch, &payload, expected);
	}
	PG_FINALLY();
	{
		ev_batch_free(batch);
	}
	PG_END_TRY();
	return ev_return_result(fcinfo, &result);
}
