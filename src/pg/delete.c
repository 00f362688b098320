/*
 * delete_stream (DESIGN.md section 2, Delete) and the trigger that keeps stored events
 * immutable: only delete_stream, through ev_deleting_stream, gets past it.
 */
#include "everest_pg.h"

#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "replication/logicalworker.h"
#include "utils/builtins.h"

bool		ev_deleting_stream = false;

static SPIPlanPtr plan_delete_events, plan_tombstone;

PG_FUNCTION_INFO_V1(everest_delete_stream);
Datum
everest_delete_stream(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *stream = ev_text_arg(fcinfo, 0, "stream", &len);
	int64		expected;
	bool		tombstone;
	int64		version;
	bool		tombstoned;
	uint64		deleted = 0;
	ev_error	err;
	Oid			types[1] = {TEXTOID};
	Datum		args[1];
	int			rc;

	ev_check(ev_check_writable_stream(stream, len, &err), &err);
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("expected_version must not be null")));
	expected = PG_GETARG_INT64(1);
	ev_check(ev_check_expected_version_value(expected, &err), &err);
	ev_require_arg(fcinfo, 2, "tombstone");
	tombstone = PG_GETARG_BOOL(2);

	SPI_connect();
	ev_lock_stream(stream, len);
	ev_stream_state(stream, len, true, &version, &tombstoned);
	if (tombstoned)
		version = -1;
	ev_check(ev_check_expected_version(stream, len, expected, version, &err), &err);
	if (!tombstoned)
	{
		args[0] = PointerGetDatum(cstring_to_text_with_len(stream, len));
		if (version >= 0)
		{
			ev_deleting_stream = true;
			PG_TRY();
			{
				rc = SPI_execute_plan(ev_prepare(&plan_delete_events,
												 "DELETE FROM everest.events WHERE stream OPERATOR(pg_catalog.=) $1",
												 1, types),
									  args, NULL, false, 0);
				ev_spi_check(rc, "deleting events");
				deleted = SPI_processed;
			}
			PG_FINALLY();
			{
				ev_deleting_stream = false;
			}
			PG_END_TRY();
		}
		if (tombstone)
		{
			rc = SPI_execute_plan(ev_prepare(&plan_tombstone,
											 "INSERT INTO everest.tombstones (stream) VALUES ($1)",
											 1, types),
								  args, NULL, false, 0);
			ev_spi_check(rc, "tombstoning a stream");
		}
	}
	SPI_finish();
	PG_RETURN_INT64((int64) deleted);
}

PG_FUNCTION_INFO_V1(everest_forbid_event_changes);
Datum
everest_forbid_event_changes(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("everest.forbid_event_changes() can only be called as a trigger")));
	if (ev_deleting_stream && TRIGGER_FIRED_BY_DELETE(trigger->tg_event))
		return PointerGetDatum(NULL);
	/* A subscriber's apply worker replays what the publisher's delete_stream removed. */
	if (IsLogicalWorker() && TRIGGER_FIRED_BY_DELETE(trigger->tg_event))
		return PointerGetDatum(NULL);
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("stored events are immutable"),
			 errdetail("everest.events accepts no %s.",
					   TRIGGER_FIRED_BY_UPDATE(trigger->tg_event) ? "UPDATE"
					   : TRIGGER_FIRED_BY_DELETE(trigger->tg_event) ? "DELETE" : "TRUNCATE"),
			 errhint("Remove a whole stream with everest.delete_stream().")));
	return PointerGetDatum(NULL);
}
