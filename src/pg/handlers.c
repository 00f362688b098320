/*
 * Handler checkpoints (DESIGN.md section 2, Handlers): position and state saved in the caller's
 * transaction, EV004 when a position does not move forward, and a session lease per handler.
 */
#include "everest_pg.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

static SPIPlanPtr plan_get, plan_save_position, plan_save_state, plan_reset;

/* The handler's stored position (0 when unknown) and, if asked, its state. */
static int64
ev_handler_checkpoint(const char *handler, size_t len, Datum *state, bool *state_null)
{
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	int64		position = 0;
	int			rc;

	if (state_null)
		*state_null = true;
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	rc = SPI_execute_plan(ev_prepare(&plan_get,
									 "SELECT position, state FROM everest.handlers "
									 "WHERE handler OPERATOR(pg_catalog.=) $1",
									 1, types),
						  args, NULL, false, 1);
	ev_spi_check(rc, "reading a handler");
	if (SPI_processed == 1)
	{
		bool		isnull;

		position = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		if (state)
		{
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, state_null);

			if (!*state_null)
				*state = SPI_datumTransfer(d, false, -1);
		}
	}
	return position;
}

static char *
ev_handler_arg(FunctionCallInfo fcinfo, size_t *len)
{
	char	   *handler = ev_text_arg(fcinfo, 0, "handler", len);

	if (*len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("handler name must not be empty")));
	return handler;
}

static int64
ev_position_arg(FunctionCallInfo fcinfo, int argno)
{
	int64		position;

	ev_require_arg(fcinfo, argno, "position");
	position = PG_GETARG_INT64(argno);
	if (position < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("handler position must be >= 0, got " INT64_FORMAT, position)));
	return position;
}

PG_FUNCTION_INFO_V1(everest_handler_position);
Datum
everest_handler_position(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	int64		position;

	SPI_connect();
	position = ev_handler_checkpoint(handler, len, NULL, NULL);
	SPI_finish();
	PG_RETURN_INT64(position);
}

PG_FUNCTION_INFO_V1(everest_handler_state);
Datum
everest_handler_state(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	Datum		state = (Datum) 0;
	bool		state_null;

	SPI_connect();
	ev_handler_checkpoint(handler, len, &state, &state_null);
	SPI_finish();
	if (state_null)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(state);
}

/*
 * Saves a checkpoint that must move forward. The upsert's WHERE is evaluated on the row as it
 * is once any concurrent saver committed, so two deliveries of one batch cannot both pass.
 */
static void
ev_save_checkpoint(FunctionCallInfo fcinfo, bool with_state)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	int64		position = ev_position_arg(fcinfo, 1);
	Oid			types[3] = {TEXTOID, INT8OID, JSONBOID};
	Datum		args[3];
	char		nulls[3] = {' ', ' ', ' '};
	int			rc;
	uint64		saved = 0;

	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = Int64GetDatum(position);
	args[2] = (Datum) 0;
	if (with_state)
	{
		if (PG_ARGISNULL(2))
			nulls[2] = 'n';
		else
			args[2] = PG_GETARG_DATUM(2);
	}

	SPI_connect();
	if (position > 0)
	{
		rc = SPI_execute_plan(with_state
							  ? ev_prepare(&plan_save_state,
										   "INSERT INTO everest.handlers AS h (handler, position, state) "
										   "VALUES ($1, $2, $3) ON CONFLICT (handler) DO UPDATE "
										   "SET position = excluded.position, state = excluded.state, "
										   "updated_at = pg_catalog.now() "
										   "WHERE h.position OPERATOR(pg_catalog.<) excluded.position",
										   3, types)
							  : ev_prepare(&plan_save_position,
										   "INSERT INTO everest.handlers AS h (handler, position) "
										   "VALUES ($1, $2) ON CONFLICT (handler) DO UPDATE "
										   "SET position = excluded.position, updated_at = pg_catalog.now() "
										   "WHERE h.position OPERATOR(pg_catalog.<) excluded.position",
										   2, types),
							  args, nulls, false, 0);
		ev_spi_check(rc, "saving a handler checkpoint");
		saved = SPI_processed;
	}
	if (saved == 0)
	{
		int64		stored = ev_handler_checkpoint(handler, len, NULL, NULL);

		ereport(ERROR,
				(errcode(MAKE_SQLSTATE('E', 'V', '0', '0', '4')),
				 errmsg("handler \"%s\" position " INT64_FORMAT " does not move forward from " INT64_FORMAT,
						handler, position, stored),
				 errdetail("This batch was most likely applied already; roll back this transaction."),
				 errhint("Use everest.reset_handler() to rewind on purpose.")));
	}
	SPI_finish();
}

PG_FUNCTION_INFO_V1(everest_save_handler_position);
Datum
everest_save_handler_position(PG_FUNCTION_ARGS)
{
	ev_save_checkpoint(fcinfo, false);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(everest_save_handler_state);
Datum
everest_save_handler_state(PG_FUNCTION_ARGS)
{
	ev_save_checkpoint(fcinfo, true);
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(everest_reset_handler);
Datum
everest_reset_handler(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	int64		position = ev_position_arg(fcinfo, 1);
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		args[2];
	int			rc;

	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = Int64GetDatum(position);
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_reset,
									 "INSERT INTO everest.handlers AS h (handler, position) VALUES ($1, $2) "
									 "ON CONFLICT (handler) DO UPDATE SET position = excluded.position, "
									 "state = NULL, updated_at = pg_catalog.now()",
									 2, types),
						  args, NULL, false, 0);
	ev_spi_check(rc, "resetting a handler");
	SPI_finish();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(everest_read_handler_events);
Datum
everest_read_handler_events(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	size_t		source_len;
	char	   *source = ev_text_arg(fcinfo, 1, "source", &source_len);
	const char *category;
	size_t		category_len;
	ev_stream_kind kind = ev_classify_read(source, source_len, &category, &category_len);
	int64		max_count = ev_max_count_arg(fcinfo, 2);
	int64		position;

	ev_require_horizon();
	ev_require_read_committed();
	SPI_connect();
	position = ev_handler_checkpoint(handler, len, NULL, NULL);
	SPI_finish();

	ev_read_into(fcinfo, kind == EV_STREAM_REGULAR ? EV_STREAM_REGULAR_BY_POSITION : kind, source,
				 source_len, category, category_len, position + 1, true, max_count);
	return (Datum) 0;
}

/* Session leases: an advisory lock of everest's own kind (field 4 = 3), per database. */
static void
ev_lease_tag(LOCKTAG *tag, const char *handler, size_t len)
{
	uint64		key = ev_lock_key(handler, len);

	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key, 3);
}

PG_FUNCTION_INFO_V1(everest_try_acquire_handler);
Datum
everest_try_acquire_handler(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	LOCKTAG		tag;
	LockAcquireResult res;

	ev_lease_tag(&tag, handler, len);
	res = LockAcquire(&tag, ExclusiveLock, true, true);
	if (res == LOCKACQUIRE_ALREADY_HELD)
		LockRelease(&tag, ExclusiveLock, true);	/* keep one hold per session */
	PG_RETURN_BOOL(res != LOCKACQUIRE_NOT_AVAIL);
}

PG_FUNCTION_INFO_V1(everest_release_handler);
Datum
everest_release_handler(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	LOCKTAG		tag;

	ev_lease_tag(&tag, handler, len);
	if (!LockHeldByMe(&tag, ExclusiveLock))
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(LockRelease(&tag, ExclusiveLock, true));
}
