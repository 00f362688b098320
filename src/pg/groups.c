/*
 * Consumer groups and poison events (docs/groups.md): resize_handler, drop_handler, park_event,
 * unpark_event. The core plans a resize (plan_resize) and checks members; this file gathers the
 * checkpoints under the group lock and writes what the plan says.
 */
#include "everest_pg.h"

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/uuid.h"

static SPIPlanPtr plan_attempt, plan_members, plan_end_leases, plan_floors, plan_ungroup, plan_regroup, plan_drop, plan_park, plan_unpark;

static void
ev_require_groups(void)
{
	if (!OidIsValid(ev_catalog()->handler_floors) || !OidIsValid(ev_catalog()->parked) ||
		!OidIsValid(ev_catalog()->attempts))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this database's everest has no handler groups"),
				 errhint("ALTER EXTENSION everest UPDATE;")));
}

/*
 * resize_handler(handler, members): under the group lock, the members' checkpoints become the
 * floors of a new generation (when they differ), every lease of the group ends (a save naming one
 * then fails with EV005), and the new members start at the lowest checkpoint, state NULL.
 */
PG_FUNCTION_INFO_V1(everest_resize_handler);
Datum
everest_resize_handler(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	int32		members;
	int32		old_members = 1;
	int64	   *positions;
	Datum		args[3];
	Oid			types[3] = {TEXTOID, INT4OID, INT8OID};
	ev_resize_plan plan;
	ev_error	err;
	int			rc;

	ev_require_arg(fcinfo, 1, "members");
	members = PG_GETARG_INT32(1);
	ev_require_groups();
	ev_lock_handler_group(handler, len, true);
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_members,
									 "SELECT position, members FROM everest.handlers "
									 "WHERE handler OPERATOR(pg_catalog.=) $1", 1, types),
						  args, NULL, false, 0);
	ev_spi_check(rc, "reading a handler group");
	positions = palloc(sizeof(int64) * (SPI_processed + 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		positions[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		old_members = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
	}
	ev_check(ev_plan_resize(handler, len, old_members, members, positions, SPI_processed, &plan, &err), &err);
	if (plan.change)
	{
		args[1] = Int32GetDatum(members);
		args[2] = Int64GetDatum(plan.start);
		/* leases and attempt counts end; parked events go to the member that now has their stream */
		rc = SPI_execute_plan(ev_prepare(&plan_end_leases,
										 "WITH a AS (DELETE FROM everest.attempts WHERE handler OPERATOR(pg_catalog.=) $1), "
										 "p AS (UPDATE everest.parked SET member = everest.stream_partition(stream, $2) "
										 "WHERE handler OPERATOR(pg_catalog.=) $1) "
										 "DELETE FROM everest.leases WHERE handler OPERATOR(pg_catalog.=) $1",
										 2, types), args, NULL, false, 0);
		ev_spi_check(rc, "ending a group's leases");
		if (plan.floors)
		{
			rc = SPI_execute_plan(ev_prepare(&plan_floors,
											 "INSERT INTO everest.handler_floors (handler, generation, members, member, position) "
											 "SELECT $1, COALESCE((SELECT pg_catalog.max(generation) FROM everest.handler_floors "
											 "WHERE handler OPERATOR(pg_catalog.=) $1), 0) OPERATOR(pg_catalog.+) 1, "
											 "h.members, h.member, h.position FROM everest.handlers AS h "
											 "WHERE h.handler OPERATOR(pg_catalog.=) $1 AND h.position OPERATOR(pg_catalog.>) $3",
											 3, types), args, NULL, false, 0);
			ev_spi_check(rc, "keeping a group's floors");
		}
		rc = SPI_execute_plan(ev_prepare(&plan_ungroup,
										 "DELETE FROM everest.handlers WHERE handler OPERATOR(pg_catalog.=) $1",
										 1, types), args, NULL, false, 0);
		ev_spi_check(rc, "resizing a handler group");
		rc = SPI_execute_plan(ev_prepare(&plan_regroup,
										 "INSERT INTO everest.handlers (handler, member, members, position) "
										 "SELECT $1, m, $2, $3 FROM pg_catalog.generate_series(0, $2 OPERATOR(pg_catalog.-) 1) AS m",
										 3, types), args, NULL, false, 0);
		ev_spi_check(rc, "resizing a handler group");
	}
	SPI_finish();
	ev_forget_handler_reads(handler, len);
	PG_RETURN_VOID();
}

/* drop_handler(handler): its checkpoints, state, floors, leases and parked events; true if any. */
PG_FUNCTION_INFO_V1(everest_drop_handler);
Datum
everest_drop_handler(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	Datum		args[1];
	Oid			types[1] = {TEXTOID};
	bool		isnull;
	bool		found;
	int			rc;

	ev_require_groups();
	ev_lock_handler_group(handler, len, true);
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_drop,
									 "WITH h AS (DELETE FROM everest.handlers WHERE handler OPERATOR(pg_catalog.=) $1 RETURNING 1), "
									 "f AS (DELETE FROM everest.handler_floors WHERE handler OPERATOR(pg_catalog.=) $1 RETURNING 1), "
									 "l AS (DELETE FROM everest.leases WHERE handler OPERATOR(pg_catalog.=) $1 RETURNING 1), "
									 "p AS (DELETE FROM everest.parked WHERE handler OPERATOR(pg_catalog.=) $1 RETURNING 1), "
									 "a AS (DELETE FROM everest.attempts WHERE handler OPERATOR(pg_catalog.=) $1 RETURNING 1) "
									 "SELECT EXISTS (SELECT FROM h) OR EXISTS (SELECT FROM f) OR EXISTS (SELECT FROM l) "
									 "OR EXISTS (SELECT FROM p) OR EXISTS (SELECT FROM a)", 1, types),
						  args, NULL, false, 1);
	ev_spi_check(rc, "dropping a handler");
	found = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	ev_forget_handler_reads(handler, len);
	PG_RETURN_BOOL(found);
}

/*
 * park_event(handler, position, reason, member, lease): a save of `position` with its rules (the
 * lease, what the transaction read, moving forward), which must be the member's next event: the
 * first event after its checkpoint that the member receives (its partition, above its floors;
 * before any filter of types or source, so a filtered reader saves up to the event first). The
 * event is recorded in everest.parked with the reason.
 */
PG_FUNCTION_INFO_V1(everest_park_event);
Datum
everest_park_event(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	int64		position = ev_position_arg(fcinfo, 1);
	size_t		reason_len;
	char	   *reason = ev_text_arg(fcinfo, 2, "reason", &reason_len);
	int32		member;
	pg_uuid_t  *lease = PG_NARGS() > 4 && !PG_ARGISNULL(4) ? PG_GETARG_UUID_P(4) : NULL;
	int64		before;
	EvHandlerFilter filter;
	Datum		args[8];
	int64		next = 0;
	int			rc;

	ev_require_arg(fcinfo, 3, "member");
	member = PG_GETARG_INT32(3);
	ev_require_groups();

	/* The member's next event after its checkpoint, before anything moves it. */
	memset(&filter, 0, sizeof(filter));
	filter.handler = handler;
	filter.handler_len = len;
	filter.member = member;
	filter.types = (Datum) 0;
	filter.members = ev_handler_group_members(handler, len, member, &filter.floors, &before);
	if (before < position)
	{
		ev_handler_read_args(args, EV_STREAM_ALL, NULL, 0, NULL, 0, before + 1, Min(position, ev_safe_position()),
							 1, &filter);
		SPI_connect();
		rc = SPI_execute_plan(ev_handler_read_plan(EV_STREAM_ALL, &filter), args, NULL, true, 1);
		ev_spi_check(rc, "finding the member's next event");
		if (SPI_processed == 1)
		{
			bool		isnull;

			next = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		}
		SPI_finish();
	}
	/* The save's rules, and the checkpoint must still be the one the next event was found from. */
	(void) ev_save_member(handler, len, position, member, lease, true, before, false, (Datum) 0, true);
	if (next != position)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("position " INT64_FORMAT " is not the next event of handler \"%s\" member %d",
						position, handler, member),
				 next != 0 ? errdetail("Its next event after its checkpoint " INT64_FORMAT " is at " INT64_FORMAT ".",
									   before, next)
				 : errdetail("No event of this member lies after its checkpoint " INT64_FORMAT " up to that position.",
							 before),
				 errhint("Save the checkpoint up to the event before it, then park the event.")));
	SPI_connect();
	{
		Datum		pargs[4];
		Oid			ptypes[4] = {TEXTOID, INT4OID, INT8OID, TEXTOID};

		pargs[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
		pargs[1] = Int32GetDatum(member);
		pargs[2] = Int64GetDatum(position);
		pargs[3] = PointerGetDatum(cstring_to_text_with_len(reason, reason_len));
		rc = SPI_execute_plan(ev_prepare(&plan_park,
										 "INSERT INTO everest.parked (handler, member, position, stream, version, type, reason) "
										 "SELECT $1, $2, e.position, e.stream, e.version, e.type, $4 FROM everest.events AS e "
										 "WHERE e.position OPERATOR(pg_catalog.=) $3", 4, ptypes),
							  pargs, NULL, false, 0);
		ev_spi_check(rc, "parking an event");
	}
	SPI_finish();
	PG_RETURN_VOID();
}

/* unpark_event(handler, position): removes the record; true if there was one. */
PG_FUNCTION_INFO_V1(everest_unpark_event);
Datum
everest_unpark_event(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	int64		position = ev_position_arg(fcinfo, 1);
	Datum		args[2];
	Oid			types[2] = {TEXTOID, INT8OID};
	uint64		removed;
	int			rc;

	ev_require_groups();
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = Int64GetDatum(position);
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_unpark,
									 "DELETE FROM everest.parked WHERE handler OPERATOR(pg_catalog.=) $1 "
									 "AND position OPERATOR(pg_catalog.=) $2", 2, types),
						  args, NULL, false, 0);
	ev_spi_check(rc, "unparking an event");
	removed = SPI_processed;
	SPI_finish();
	PG_RETURN_BOOL(removed > 0);
}

/*
 * note_attempt(handler, position, member): one more attempt at the member's event at `position`,
 * counted in its own row whatever the caller's transaction does next (call it before applying,
 * in a transaction of its own, so that a crash counts too). Returns the attempts so far; a
 * position other than the one counted starts again at 1.
 */
PG_FUNCTION_INFO_V1(everest_note_attempt);
Datum
everest_note_attempt(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	int64		position = ev_position_arg(fcinfo, 1);
	int32		member;
	int32		attempts;
	Datum		args[3];
	Oid			types[3] = {TEXTOID, INT4OID, INT8OID};
	bool		isnull;
	int			rc;

	ev_require_arg(fcinfo, 2, "member");
	member = PG_GETARG_INT32(2);
	ev_require_groups();
	ev_lock_handler_group(handler, len, false);	/* a resize clears the counts: not halfway through */
	{
		int64		checkpoint;	/* 22023 for a member the group does not have */

		(void) ev_handler_group_members(handler, len, member, NULL, &checkpoint);
	}
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = Int32GetDatum(member);
	args[2] = Int64GetDatum(position);
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_attempt,
									 "INSERT INTO everest.attempts AS a (handler, member, position, attempts) "
									 "VALUES ($1, $2, $3, 1) ON CONFLICT (handler, member) DO UPDATE "
									 "SET attempts = CASE WHEN a.position OPERATOR(pg_catalog.=) excluded.position "
									 "THEN a.attempts OPERATOR(pg_catalog.+) 1 ELSE 1 END, "
									 "position = excluded.position, updated_at = pg_catalog.now() RETURNING attempts",
									 3, types), args, NULL, false, 1);
	ev_spi_check(rc, "counting an attempt");
	attempts = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
	PG_RETURN_INT32(attempts);
}

