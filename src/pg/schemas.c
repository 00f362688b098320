/*
 * Event contracts (docs/schemas.md): set_event_schema, drop_event_schema, and the check of every
 * appended event's data against its type's schema (EV007).
 *
 * The core compiles and validates (src/core/schema.cpp). This file walks jsonb into the core's
 * checker, and only when that fails into its JSON builder, whose document the validator words
 * the violation from (no text round trip either way). It keeps the compiled schemas of this
 * backend in a hash by type. set_event_schema and drop_event_schema send a relcache
 * invalidation of everest.schemas, which every backend receives at the change's commit: the
 * callback only marks the cache stale (an append may be validating with it), and the next append
 * reloads it. So a change applies to appends that start after it, and a store without schemas
 * pays one flag test per append.
 */
#include "everest_pg.h"

#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#define EV_TYPE_KEY_BYTES 513	/* kMaxEventTypeBytes + 1 */

typedef struct EvSchemaEntry
{
	char		type[EV_TYPE_KEY_BYTES];	/* the hash key */
	ev_schema  *schema;
	char	   *unusable;		/* why a stored schema does not compile here (UTF-8), or NULL */
} EvSchemaEntry;

static HTAB *ev_schema_cache = NULL;
static bool ev_schemas_valid = false;
static bool ev_schemas_callback = false;
static ev_json_builder *ev_builder = NULL;
static ev_json_check *ev_checker = NULL;
static SPIPlanPtr plan_load, plan_set, plan_drop;

static Oid	ev_schemas_relid = InvalidOid;	/* everest.schemas when the cache was loaded */

/* A relcache callback: no catalog access here, only the flag. */
static void
ev_schemas_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == ev_schemas_relid)
		ev_schemas_valid = false;
}

static ev_json_builder *
ev_fresh_builder(void)
{
	ev_error	err;

	if (ev_builder == NULL)
	{
		ev_builder = ev_json_builder_new(&err);
		if (ev_builder == NULL)
			ev_raise(&err);
	}
	ev_check(ev_json_builder_reset(ev_builder, &err), &err);
	return ev_builder;
}

/*
 * The core reads UTF-8 (JSON Schema's strings are Unicode: minLength counts code points, RE2
 * matches them). A database in another encoding converts keys and strings on the way in, and
 * the core's messages, which quote them, on the way out (docs/schemas.md). SQL_ASCII declares no
 * encoding: its bytes go as they are.
 */
static bool
ev_converts(void)
{
	int			enc = GetDatabaseEncoding();

	return enc != PG_UTF8 && enc != PG_SQL_ASCII;
}

static const char *
ev_to_utf8(const char *s, int len, int *out_len)
{
	char	   *c;

	*out_len = len;
	if (!ev_converts())
		return s;
	c = pg_server_to_any(s, len, PG_UTF8);
	if (c != s)
		*out_len = strlen(c);
	return c;
}

static void
ev_check_from_utf8(bool ok, ev_error *err)
{
	if (!ok && ev_converts())
	{
		char	   *fields[] = {err->message, err->detail, err->hint};
		size_t		sizes[] = {sizeof(err->message), sizeof(err->detail), sizeof(err->hint)};

		for (int i = 0; i < 3; i++)
		{
			char	   *c = pg_any_to_server(fields[i], strlen(fields[i]), PG_UTF8);

			if (c != fields[i])
				strlcpy(fields[i], c, sizes[i]);
		}
	}
	ev_check(ok, err);
}

/* Feeds a jsonb value into the core's builder, token by token (keys and strings in UTF-8). */
static void
ev_jsonb_to_builder(Jsonb *jb, ev_json_builder *b)
{
	JsonbIterator *it = JsonbIteratorInit(&jb->root);
	JsonbIteratorToken tok;
	JsonbValue	v;
	ev_error	err;
	bool		ok = true;

	while (ok && (tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
				CHECK_FOR_INTERRUPTS();
				ok = ev_json_builder_begin_object(b, &err);
				break;
			case WJB_END_OBJECT:
				ok = ev_json_builder_end_object(b, &err);
				break;
			case WJB_BEGIN_ARRAY:
				CHECK_FOR_INTERRUPTS();
				if (!v.val.array.rawScalar)
					ok = ev_json_builder_begin_array(b, &err);
				break;
			case WJB_END_ARRAY:
				if (!v.val.array.rawScalar)
					ok = ev_json_builder_end_array(b, &err);
				break;
			case WJB_KEY:
				{
					int			len;
					const char *key = ev_to_utf8(v.val.string.val, v.val.string.len, &len);

					ok = ev_json_builder_key(b, key, len, &err);
					break;
				}
			case WJB_VALUE:
			case WJB_ELEM:
				switch (v.type)
				{
					case jbvNull:
						ok = ev_json_builder_null(b, &err);
						break;
					case jbvBool:
						ok = ev_json_builder_boolean(b, v.val.boolean, &err);
						break;
					case jbvString:
						{
							int			len;
							const char *str = ev_to_utf8(v.val.string.val, v.val.string.len, &len);

							ok = ev_json_builder_string(b, str, len, &err);
							break;
						}
					case jbvNumeric:
						{
							char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
																				   NumericGetDatum(v.val.numeric)));

							ok = ev_json_builder_number(b, text, strlen(text), &err);
							pfree(text);
							break;
						}
					default:
						elog(ERROR, "everest: unexpected jsonb value type %d", (int) v.type);
				}
				break;
			default:
				break;
		}
	}
	ev_check(ok, &err);
}

/*
 * The fast check of one event's data: the jsonb walked into the core's checker, nothing built.
 * Numbers are turned into text only where the schema reads them, and containers whose members no
 * rule reads are stepped over (the iterator's skipNested). True when the data passed; false means
 * a violation, or that the checker gave up: the caller then builds the value and validates it.
 */
static bool
ev_jsonb_passes(Jsonb *jb, const ev_schema *schema)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	v;
	bool		skip = false;

	if (ev_checker == NULL)
	{
		ev_error	err;

		ev_checker = ev_json_check_new(&err);
		if (ev_checker == NULL)
			ev_raise(&err);
	}
	ev_json_check_start(ev_checker, schema);
	it = JsonbIteratorInit(&jb->root);
	while (ev_json_check_ok(ev_checker) && (tok = JsonbIteratorNext(&it, &v, skip)) != WJB_DONE)
	{
		switch (tok)
		{
			case WJB_BEGIN_OBJECT:
				CHECK_FOR_INTERRUPTS();
				ev_json_check_begin_object(ev_checker);
				break;
			case WJB_END_OBJECT:
				ev_json_check_end_object(ev_checker);
				break;
			case WJB_BEGIN_ARRAY:
				CHECK_FOR_INTERRUPTS();
				if (!v.val.array.rawScalar)
					ev_json_check_begin_array(ev_checker);
				break;
			case WJB_END_ARRAY:
				if (!v.val.array.rawScalar)
					ev_json_check_end_array(ev_checker);
				break;
			case WJB_KEY:
				{
					int			len;
					const char *key = ev_to_utf8(v.val.string.val, v.val.string.len, &len);

					ev_json_check_key(ev_checker, key, len);
					break;
				}
			case WJB_VALUE:
			case WJB_ELEM:
				switch (v.type)
				{
					case jbvNull:
						ev_json_check_null(ev_checker);
						break;
					case jbvBool:
						ev_json_check_boolean(ev_checker, v.val.boolean);
						break;
					case jbvString:
						{
							int			len;
							const char *str = ev_to_utf8(v.val.string.val, v.val.string.len, &len);

							ev_json_check_string(ev_checker, str, len);
							break;
						}
					case jbvNumeric:
						if (ev_json_check_wants_number_text(ev_checker))
						{
							char	   *text = DatumGetCString(DirectFunctionCall1(numeric_out,
																				   NumericGetDatum(v.val.numeric)));

							ev_json_check_number(ev_checker, text, strlen(text));
							pfree(text);
						}
						else
							ev_json_check_number_unread(ev_checker);
						break;
					case jbvBinary:
						/* a container stepped over: only its kind is given */
						ev_json_check_opaque(ev_checker, JsonContainerIsObject(v.val.binary.data));
						break;
					default:
						elog(ERROR, "everest: unexpected jsonb value type %d", (int) v.type);
				}
				break;
			default:
				break;
		}
		/*
		 * Whether the next value, if a container, is walked into: asked where a value may come
		 * next with a schema of its own (after a key, at an array's start, after a nested
		 * container in an array). An array's items share one schema, so the answer holds for
		 * its scalar items too.
		 */
		if (tok == WJB_KEY || tok == WJB_BEGIN_ARRAY || tok == WJB_END_ARRAY || tok == WJB_END_OBJECT)
			skip = !ev_json_check_wants_contents(ev_checker);
	}
	return ev_json_check_passed(ev_checker);
}

static void
ev_schemas_clear(void)
{
	HASH_SEQ_STATUS seq;
	EvSchemaEntry *e;

	if (ev_schema_cache == NULL)
		return;
	hash_seq_init(&seq, ev_schema_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		ev_schema_free(e->schema);
		if (e->unusable)
			pfree(e->unusable);
	}
	hash_destroy(ev_schema_cache);
	ev_schema_cache = NULL;
}

/* Compiles a schema given as jsonb; 22023 names what is wrong. The caller frees it. */
static ev_schema *
ev_compile_jsonb(Jsonb *schema)
{
	ev_json_builder *b = ev_fresh_builder();
	ev_schema  *compiled = NULL;
	ev_error	err;

	ev_jsonb_to_builder(schema, b);
	ev_check_from_utf8(ev_schema_compile(b, &compiled, &err), &err);
	return compiled;
}

/* This backend's compiled schemas, (re)loaded when a change was committed since the last load. */
static HTAB *
ev_schemas(void)
{
	Oid			relid;

	relid = ev_catalog()->schemas;	/* takes in pending invalidations first */
	if (!OidIsValid(relid))
		return NULL;			/* a database still on 0.4.0 */
	if (!ev_schemas_callback)
	{
		CacheRegisterRelcacheCallback(ev_schemas_invalidate, (Datum) 0);
		ev_schemas_callback = true;
	}
	if (ev_schemas_valid && relid == ev_schemas_relid)
		return ev_schema_cache;
	ev_schemas_clear();
	ev_schemas_relid = relid;
	ev_schemas_valid = true;	/* an invalidation arriving during the load marks it stale again */
	SPI_connect();
	PG_TRY();
	{
		int			rc = SPI_execute_plan(ev_prepare(&plan_load, "SELECT type, schema FROM everest.schemas", 0, NULL),
										  NULL, NULL, true, 0);

		ev_spi_check(rc, "loading event schemas");
		if (SPI_processed > 0)
		{
			HASHCTL		ctl;

			memset(&ctl, 0, sizeof(ctl));
			ctl.keysize = EV_TYPE_KEY_BYTES;
			ctl.entrysize = sizeof(EvSchemaEntry);
			ev_schema_cache = hash_create("everest event schemas", 16, &ctl, HASH_ELEM | HASH_STRINGS);
		}
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bool		isnull;
			char	   *type = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
			Jsonb	   *schema = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
			EvSchemaEntry *e;

			if (strlen(type) >= EV_TYPE_KEY_BYTES)
				continue;		/* cannot be stored: set_event_schema bounds types */
			e = hash_search(ev_schema_cache, type, HASH_ENTER, NULL);
			e->schema = NULL;
			e->unusable = NULL;

			/*
			 * One that does not compile here (restored from a dump, or set under rules this
			 * version narrowed) stops the appends of its type only, naming it.
			 */
			{
				ev_json_builder *b = ev_fresh_builder();
				ev_error	err;

				ev_jsonb_to_builder(schema, b);
				if (!ev_schema_compile(b, &e->schema, &err))
				{
					e->schema = NULL;
					e->unusable = MemoryContextStrdup(TopMemoryContext, err.message);
				}
			}
		}
	}
	PG_CATCH();
	{
		ev_schemas_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	SPI_finish();
	return ev_schema_cache;
}

/* Whether any type has a schema (one flag test once the cache is loaded). */
bool
ev_event_schemas_present(void)
{
	return ev_schemas() != NULL;
}

/*
 * Before an append writes: every event whose type has a schema must satisfy it (EV007 names the
 * first that does not, by its index in the batch); nothing is written otherwise.
 */
void
ev_check_event_schemas(ev_batch *batch, const Datum *data, size_t n)
{
	HTAB	   *cache = ev_schemas();

	if (cache == NULL)
		return;					/* no schemas: nothing to look up */
	for (size_t i = 0; i < n; i++)
	{
		size_t		type_len;
		const char *type = ev_batch_type(batch, i, &type_len);
		char		key[EV_TYPE_KEY_BYTES];
		EvSchemaEntry *e;
		ev_json_builder *b;
		ev_error	err;

		if (type_len >= EV_TYPE_KEY_BYTES)
			continue;
		memcpy(key, type, type_len);
		key[type_len] = '\0';
		e = hash_search(cache, key, HASH_FIND, NULL);
		if (e != NULL && e->unusable != NULL)
		{
			int			len;
			const char *utf8_type = ev_to_utf8(type, (int) type_len, &len);

			ev_check_from_utf8(ev_schema_unusable(utf8_type, len, e->unusable, &err), &err);
		}
		if (e == NULL || e->schema == NULL)
			continue;
		if (ev_jsonb_passes(DatumGetJsonbP(data[i]), e->schema))
			continue;
		/* it does not pass (or the checker gave up): build it, and the validator says why */
		b = ev_fresh_builder();
		ev_jsonb_to_builder(DatumGetJsonbP(data[i]), b);
		if (!ev_schema_validate(e->schema, b, type, type_len, i, &err))
		{
			int			len;
			const char *utf8_type = ev_to_utf8(type, (int) type_len, &len);

			/* again, to quote the type in UTF-8 like the rest (a failure is rare: no hot path) */
			if (utf8_type != type)
				(void) ev_schema_validate(e->schema, b, utf8_type, len, i, &err);
			ev_check_from_utf8(false, &err);
		}
	}
}

static char *
ev_type_arg(FunctionCallInfo fcinfo, size_t *len)
{
	char	   *type = ev_text_arg(fcinfo, 0, "type", len);
	ev_error	err;

	ev_check(ev_check_event_type(type, *len, &err), &err);
	return type;
}

static void
ev_require_schemas(void)
{
	if (!OidIsValid(ev_catalog()->schemas))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this database's everest has no event schemas"),
				 errhint("ALTER EXTENSION everest UPDATE;")));
}

/* set_event_schema(type, schema): compiled first (22023 names what is wrong), then stored. */
PG_FUNCTION_INFO_V1(everest_set_event_schema);
Datum
everest_set_event_schema(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *type = ev_type_arg(fcinfo, &len);
	Jsonb	   *schema;
	Datum		args[2];
	Oid			types[2] = {TEXTOID, JSONBOID};
	int			rc;

	ev_require_arg(fcinfo, 1, "schema");
	ev_require_schemas();
	schema = PG_GETARG_JSONB_P(1);
	ev_schema_free(ev_compile_jsonb(schema));
	args[0] = PointerGetDatum(cstring_to_text_with_len(type, len));
	args[1] = JsonbPGetDatum(schema);
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_set,
									 "INSERT INTO everest.schemas AS s (type, schema) VALUES ($1, $2) "
									 "ON CONFLICT (type) DO UPDATE SET schema = excluded.schema, updated_at = pg_catalog.now()",
									 2, types), args, NULL, false, 0);
	ev_spi_check(rc, "storing an event schema");
	SPI_finish();
	CacheInvalidateRelcacheByRelid(ev_catalog()->schemas);
	PG_RETURN_VOID();
}

/* drop_event_schema(type): true if the type had one. */
PG_FUNCTION_INFO_V1(everest_drop_event_schema);
Datum
everest_drop_event_schema(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *type = ev_type_arg(fcinfo, &len);
	Datum		args[1];
	Oid			types[1] = {TEXTOID};
	uint64		removed;
	int			rc;

	ev_require_schemas();
	args[0] = PointerGetDatum(cstring_to_text_with_len(type, len));
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_drop, "DELETE FROM everest.schemas WHERE type OPERATOR(pg_catalog.=) $1",
									 1, types), args, NULL, false, 0);
	ev_spi_check(rc, "dropping an event schema");
	removed = SPI_processed;
	SPI_finish();
	if (removed > 0)
		CacheInvalidateRelcacheByRelid(ev_catalog()->schemas);
	PG_RETURN_BOOL(removed > 0);
}
