/*
 * Handler checkpoints (DESIGN.md section 2, Handlers): position and state saved in the caller's
 * transaction, EV004 when a position does not move forward, and a session lease per handler.
 */
#include "everest_pg.h"
#include "compat.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/uuid.h"

/* One plan per schema: [1] a database on 0.5.0 (a row per member), [0] one still on 0.4.0. */
static SPIPlanPtr plan_get[2], plan_lock[2], plan_group[2], plan_update_position[2], plan_update_state[2],
			plan_insert_position[2], plan_insert_state[2], plan_reset[2], plan_reset_insert[2], plan_prune,
			plan_lease_facts;

/* Which of two queries fits this database's handlers table (catalog.c: handlers_grouped). */
#define EV_BY_SCHEMA(grouped_sql, legacy_sql) (ev_catalog()->handlers_grouped ? (grouped_sql) : (legacy_sql))
#define EV_SCHEMA_INDEX (ev_catalog()->handlers_grouped ? 1 : 0)

/*
 * A handler member's stored checkpoint: position (0 when there is none), whether the row exists,
 * its row version (xmin: every save and reset writes a new one, so a reset back to the same
 * position still counts as a move), the group's size and whether it has floors
 * (docs/groups.md), and, if asked, its state. `lock`: FOR UPDATE, for a save.
 */
typedef struct EvCheckpoint
{
	int64		position;
	bool		exists;
	TransactionId xmin;
	int32		members;
	bool		floors;
} EvCheckpoint;

static void ev_require_member(const char *handler, size_t len, int32 member, const EvCheckpoint *cp);

#define EV_FLOORS_EXIST "EXISTS (SELECT FROM everest.handler_floors AS f WHERE f.handler OPERATOR(pg_catalog.=) $1)"

static EvCheckpoint
ev_handler_checkpoint_row(const char *handler, size_t len, int32 member, bool lock, Datum *state,
						  bool *state_null)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2];
	EvCheckpoint cp = {0, false, InvalidTransactionId, 1, false};
	int			i = EV_SCHEMA_INDEX;
	bool		isnull;
	int			rc;

	if (state_null)
		*state_null = true;
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = Int32GetDatum(member);
	rc = SPI_execute_plan(lock
						  ? ev_prepare(&plan_lock[i], EV_BY_SCHEMA(
									   "SELECT position, NULL::pg_catalog.jsonb, xmin, members, " EV_FLOORS_EXIST
									   " FROM everest.handlers WHERE handler OPERATOR(pg_catalog.=) $1 "
									   "AND member OPERATOR(pg_catalog.=) $2 FOR UPDATE",
									   "SELECT position, NULL::pg_catalog.jsonb, xmin, 1, false FROM everest.handlers "
									   "WHERE handler OPERATOR(pg_catalog.=) $1 AND $2 OPERATOR(pg_catalog.=) 0 FOR UPDATE"),
									   2, types)
						  : ev_prepare(&plan_get[i], EV_BY_SCHEMA(
									   "SELECT position, state, xmin, members, " EV_FLOORS_EXIST
									   " FROM everest.handlers WHERE handler OPERATOR(pg_catalog.=) $1 "
									   "AND member OPERATOR(pg_catalog.=) $2",
									   "SELECT position, state, xmin, 1, false FROM everest.handlers "
									   "WHERE handler OPERATOR(pg_catalog.=) $1 AND $2 OPERATOR(pg_catalog.=) 0"),
									   2, types),
						  args, NULL, false, 1);
	ev_spi_check(rc, "reading a handler");
	if (SPI_processed == 1)
	{
		HeapTuple	row = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;

		cp.exists = true;
		cp.position = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
		cp.xmin = DatumGetTransactionId(SPI_getbinval(row, desc, 3, &isnull));
		cp.members = DatumGetInt32(SPI_getbinval(row, desc, 4, &isnull));
		cp.floors = DatumGetBool(SPI_getbinval(row, desc, 5, &isnull));
		if (state)
		{
			Datum		d = SPI_getbinval(row, desc, 2, state_null);

			if (!*state_null)
				*state = SPI_datumTransfer(d, false, -1);
		}
		return cp;
	}
	if (!ev_catalog()->handlers_grouped)
		return cp;
	/* No row for this member: the group's size from any row (none: a group of one). */
	rc = SPI_execute_plan(ev_prepare(&plan_group[i],
									 "SELECT members, " EV_FLOORS_EXIST " FROM everest.handlers "
									 "WHERE handler OPERATOR(pg_catalog.=) $1 LIMIT 1", 1, types),
						  args, NULL, false, 1);
	ev_spi_check(rc, "reading a handler");
	if (SPI_processed == 1)
	{
		cp.members = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		cp.floors = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	}
	return cp;
}

/*
 * The size of the handler's group (1 for a handler with no row), whether it has floors, and the
 * checkpoint of `member` (22023 unless the group has it).
 */
int32
ev_handler_group_members(const char *handler, size_t len, int32 member, bool *floors, int64 *position)
{
	EvCheckpoint cp;

	SPI_connect();
	cp = ev_handler_checkpoint_row(handler, len, member, false, NULL, NULL);
	SPI_finish();
	if (floors)
		*floors = cp.floors;
	if (position)
	{
		ev_require_member(handler, len, member, &cp);
		*position = cp.position;
	}
	return cp.members;
}


/*
 * The member's lease row (leases.c), locked FOR SHARE: is it `lease`'s, and is it live? A save
 * decides under this lock, so an acquire of the member waits for the saving transaction.
 */
static void
ev_lease_facts(const char *handler, size_t len, int32 member, const pg_uuid_t *lease,
			   bool *row_matches, bool *live)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		args[2];
	int			rc;

	*row_matches = false;
	*live = false;
	if (!OidIsValid(ev_catalog()->leases))
		return;					/* a database still on 0.3.0 has no leases */
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = Int32GetDatum(member);
	rc = SPI_execute_plan(ev_prepare(&plan_lease_facts,
									 "SELECT lease, expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp() "
									 "FROM everest.leases WHERE handler OPERATOR(pg_catalog.=) $1 "
									 "AND member OPERATOR(pg_catalog.=) $2 FOR SHARE",
									 2, types),
						  args, NULL, false, 1);
	ev_spi_check(rc, "reading a lease");
	if (SPI_processed == 1)
	{
		bool		isnull;
		pg_uuid_t  *token = DatumGetUUIDP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		*live = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		*row_matches = lease != NULL && memcmp(token->data, lease->data, UUID_LEN) == 0;
	}
}

/* 22023 unless member is one of the group's (its size is in cp). */
static void
ev_require_member(const char *handler, size_t len, int32 member, const EvCheckpoint *cp)
{
	ev_error	err;

	ev_check(ev_check_member(handler, len, member, cp->members, &err), &err);
}

/*
 * Changes to a group's shape (resize_handler, reset_handler, drop_handler) take the handler's
 * group lock exclusively until the transaction ends; saves and parks take it shared, so that a
 * save either commits before a resize reads the checkpoints or sees the new group (and fails).
 */
void
ev_lock_handler_group(const char *handler, size_t len, bool exclusive)
{
	LOCKTAG		tag;
	uint64		key = ev_lock_key(handler, len);

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key, EV_LOCK_HANDLER_GROUP);
	(void) LockAcquire(&tag, exclusive ? ExclusiveLock : ShareLock, false, false);
}

/*
 * What this transaction read handlers' events from (docs/topologies.md, "Exactly once without a
 * lease"): per handler member, the checkpoint row the first read_handler_events of the
 * transaction started from, replaced by the row each of its own saves wrote. A save compares it
 * with the row it locks. It lives in the transaction's memory and is forgotten at its end, so a
 * pooler never hands it to another client; a subtransaction that rolls back a save restores the
 * row it replaced.
 */
typedef struct EvHandlerRead
{
	char	   *handler;
	size_t		len;
	int32		member;
	bool		exists;
	TransactionId xmin;
	SubTransactionId saved_in;	/* the subtransaction of the last save; Invalid: a read */
	bool		prev_exists;
	TransactionId prev_xmin;
	SubTransactionId prev_saved_in;
	struct EvHandlerRead *next;
} EvHandlerRead;

static EvHandlerRead *ev_reads = NULL;
static bool ev_reads_callbacks = false;

static void
ev_reads_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			ev_reads = NULL;	/* its memory goes with TopTransactionContext */
			break;
		default:
			break;
	}
}

static void
ev_reads_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	for (EvHandlerRead *r = ev_reads; r != NULL; r = r->next)
	{
		if (r->saved_in != mySubid || r->saved_in == InvalidSubTransactionId)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			r->saved_in = parentSubid;
		else if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			r->exists = r->prev_exists;
			r->xmin = r->prev_xmin;
			r->saved_in = r->prev_saved_in;
		}
	}
}

static EvHandlerRead *
ev_find_read(const char *handler, size_t len, int32 member)
{
	for (EvHandlerRead *r = ev_reads; r != NULL; r = r->next)
		if (r->member == member && r->len == len && memcmp(r->handler, handler, len) == 0)
			return r;
	return NULL;
}

/*
 * Records a read (only the first of the transaction counts; before = cp) or a save (always:
 * `before` is the row the save replaced, `cp` the row it wrote).
 */
static void
ev_record_checkpoint(const char *handler, size_t len, int32 member, EvCheckpoint before,
					 EvCheckpoint cp, bool save)
{
	EvHandlerRead *r = ev_find_read(handler, len, member);

	if (!ev_reads_callbacks)
	{
		RegisterXactCallback(ev_reads_xact_callback, NULL);
		RegisterSubXactCallback(ev_reads_subxact_callback, NULL);
		ev_reads_callbacks = true;
	}
	if (r != NULL && !save)
		return;
	if (r == NULL)
	{
		r = MemoryContextAllocZero(TopTransactionContext, sizeof(EvHandlerRead));
		r->handler = MemoryContextAlloc(TopTransactionContext, len + 1);
		memcpy(r->handler, handler, len);
		r->handler[len] = '\0';
		r->len = len;
		r->member = member;
		r->next = ev_reads;
		ev_reads = r;
		r->prev_exists = before.exists;
		r->prev_xmin = before.xmin;
		r->prev_saved_in = InvalidSubTransactionId;
	}
	else
	{
		r->prev_exists = r->exists;
		r->prev_xmin = r->xmin;
		r->prev_saved_in = r->saved_in;
	}
	r->exists = cp.exists;
	r->xmin = cp.xmin;
	r->saved_in = save ? GetCurrentSubTransactionId() : InvalidSubTransactionId;
}

/* reset_handler rewinds on purpose, resize_handler and drop_handler start the group again: what
 * the transaction read before no longer binds it. */
void
ev_forget_handler_reads(const char *handler, size_t len)
{
	for (EvHandlerRead *r = ev_reads; r != NULL; r = r->next)
		if (r->len == len && memcmp(r->handler, handler, len) == 0)
			r->member = -1;
}


int64
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

/* A member argument: not NULL (whether the group has it is checked against its row). */
static int32
ev_member_arg(FunctionCallInfo fcinfo, int argno)
{
	if (argno >= PG_NARGS())
		return 0;				/* a database still on 0.4.0: the old signature */
	ev_require_arg(fcinfo, argno, "member");
	return PG_GETARG_INT32(argno);
}

PG_FUNCTION_INFO_V1(everest_stream_partition);
Datum
everest_stream_partition(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *stream = ev_text_arg(fcinfo, 0, "stream", &len);
	int32		partition;
	ev_error	err;

	ev_require_arg(fcinfo, 1, "members");
	ev_check(ev_stream_partition(stream, len, PG_GETARG_INT32(1), &partition, &err), &err);
	PG_RETURN_INT32(partition);
}

PG_FUNCTION_INFO_V1(everest_handler_position);
Datum
everest_handler_position(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	int32		member = ev_member_arg(fcinfo, 1);
	EvCheckpoint cp;

	SPI_connect();
	cp = ev_handler_checkpoint_row(handler, len, member, false, NULL, NULL);
	SPI_finish();
	ev_require_member(handler, len, member, &cp);
	PG_RETURN_INT64(cp.position);
}

PG_FUNCTION_INFO_V1(everest_handler_state);
Datum
everest_handler_state(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	Datum		state = (Datum) 0;
	bool		state_null;
	int32		member = ev_member_arg(fcinfo, 1);
	EvCheckpoint cp;

	SPI_connect();
	cp = ev_handler_checkpoint_row(handler, len, member, false, &state, &state_null);
	SPI_finish();
	ev_require_member(handler, len, member, &cp);
	if (state_null)
		PG_RETURN_NULL();
	PG_RETURN_DATUM(state);
}

/* Writes the member's checkpoint row (locked, or absent) and returns it; exists = false: someone
 * else inserted it first. args: handler, position, state, member. */
static EvCheckpoint
ev_write_checkpoint(Datum *args, char *nulls, bool with_state, bool exists)
{
	Oid			types[4] = {TEXTOID, INT8OID, JSONBOID, INT4OID};
	EvCheckpoint cp = {DatumGetInt64(args[1]), false, InvalidTransactionId, 1, false};
	int			i = EV_SCHEMA_INDEX;
	SPIPlanPtr	plan;
	int			rc;

	if (exists)
		plan = with_state
			? ev_prepare(&plan_update_state[i], EV_BY_SCHEMA(
						 "UPDATE everest.handlers SET position = $2, state = $3, updated_at = pg_catalog.now() "
						 "WHERE handler OPERATOR(pg_catalog.=) $1 AND member OPERATOR(pg_catalog.=) $4 RETURNING xmin",
						 "UPDATE everest.handlers SET position = $2, state = $3, updated_at = pg_catalog.now() "
						 "WHERE handler OPERATOR(pg_catalog.=) $1 RETURNING xmin"), 4, types)
			: ev_prepare(&plan_update_position[i], EV_BY_SCHEMA(
						 "UPDATE everest.handlers SET position = $2, updated_at = pg_catalog.now() "
						 "WHERE handler OPERATOR(pg_catalog.=) $1 AND member OPERATOR(pg_catalog.=) $4 RETURNING xmin",
						 "UPDATE everest.handlers SET position = $2, updated_at = pg_catalog.now() "
						 "WHERE handler OPERATOR(pg_catalog.=) $1 RETURNING xmin"), 4, types);
	else
		/* only a group of one has members without a row (resize_handler writes them all) */
		plan = with_state
			? ev_prepare(&plan_insert_state[i], EV_BY_SCHEMA(
						 "INSERT INTO everest.handlers (handler, member, position, state) VALUES ($1, $4, $2, $3) "
						 "ON CONFLICT (handler, member) DO NOTHING RETURNING xmin",
						 "INSERT INTO everest.handlers (handler, position, state) VALUES ($1, $2, $3) "
						 "ON CONFLICT (handler) DO NOTHING RETURNING xmin"), 4, types)
			: ev_prepare(&plan_insert_position[i], EV_BY_SCHEMA(
						 "INSERT INTO everest.handlers (handler, member, position) VALUES ($1, $4, $2) "
						 "ON CONFLICT (handler, member) DO NOTHING RETURNING xmin",
						 "INSERT INTO everest.handlers (handler, position) VALUES ($1, $2) "
						 "ON CONFLICT (handler) DO NOTHING RETURNING xmin"), 4, types);
	rc = SPI_execute_plan(plan, args, nulls, false, 0);
	ev_spi_check(rc, "saving a handler checkpoint");
	if (SPI_processed == 1)
	{
		bool		isnull;

		cp.exists = true;
		cp.xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	return cp;
}

/*
 * A resize's floors (docs/groups.md) are dropped, a generation at a time, once every member's
 * checkpoint has passed them: nothing they hold back can be delivered any more.
 */
static void
ev_prune_floors(Datum handler)
{
	Oid			types[1] = {TEXTOID};
	int			rc;

	rc = SPI_execute_plan(ev_prepare(&plan_prune,
									 "DELETE FROM everest.handler_floors AS f WHERE f.handler OPERATOR(pg_catalog.=) $1 "
									 "AND f.generation OPERATOR(pg_catalog.=) ANY (ARRAY("
									 "SELECT g.generation FROM everest.handler_floors AS g "
									 "WHERE g.handler OPERATOR(pg_catalog.=) $1 GROUP BY g.generation "
									 "HAVING pg_catalog.max(g.position) OPERATOR(pg_catalog.<=) ("
									 "SELECT pg_catalog.min(h.position) FROM everest.handlers AS h "
									 "WHERE h.handler OPERATOR(pg_catalog.=) $1)))", 1, types),
						  &handler, NULL, false, 0);
	ev_spi_check(rc, "dropping passed floors");
}

/*
 * The save of a handler member's checkpoint (save_handler_position, save_handler_state,
 * park_event; docs/topologies.md, docs/groups.md): under the group lock (shared) and the locks of
 * the member's lease row and checkpoint row, the core decides from the facts (the member, the
 * lease, the expected position, what this transaction read from, moving forward); then the row
 * is written. Two first-ever saves race on the insert: the loser finds the row and decides again.
 */
int64
ev_save_member(const char *handler, size_t len, int64 position, int32 member, const pg_uuid_t *lease,
			   bool expected_given, int64 expected, bool with_state, Datum state, bool state_null)
{
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	ev_save_facts facts;
	ev_error	err;

	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = Int64GetDatum(position);
	args[2] = state;
	if (!with_state || state_null)
		nulls[2] = 'n';
	args[3] = Int32GetDatum(member);

	memset(&facts, 0, sizeof(facts));
	facts.handler = handler;
	facts.handler_len = len;
	facts.member = member;
	facts.position = position;
	facts.lease_given = lease != NULL;
	facts.expected_given = expected_given;
	facts.expected = expected;

	ev_require_completed(position, -1);	/* EV006: lost in a failover, or never assigned */
	ev_lock_handler_group(handler, len, false);
	SPI_connect();
	ev_lease_facts(handler, len, member, lease, &facts.lease_row_matches, &facts.lease_live);
	for (;;)
	{
		EvCheckpoint before = ev_handler_checkpoint_row(handler, len, member, true, NULL, NULL);
		EvHandlerRead *read = ev_find_read(handler, len, member);
		EvCheckpoint after;

		facts.members = before.members;
		facts.stored = before.position;
		facts.read_in_transaction = read != NULL;
		facts.moved_since_read = read != NULL &&
			(read->exists != before.exists || (before.exists && read->xmin != before.xmin));
		ev_check(ev_check_save(&facts, &err), &err);
		after = ev_write_checkpoint(args, nulls, with_state, before.exists);
		if (after.exists)
		{
			ev_record_checkpoint(handler, len, member, before, after, true);
			if (before.floors)
				ev_prune_floors(args[0]);
			break;
		}
		CHECK_FOR_INTERRUPTS();
	}
	SPI_finish();
	return facts.stored;
}

static void
ev_save_checkpoint(FunctionCallInfo fcinfo, bool with_state)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	int64		position = ev_position_arg(fcinfo, 1);
	int			next_arg = with_state ? 3 : 2;
	int32		member = ev_member_arg(fcinfo, next_arg);
	bool		lease_given = next_arg + 1 < PG_NARGS() && !PG_ARGISNULL(next_arg + 1);
	bool		expected_given = next_arg + 2 < PG_NARGS() && !PG_ARGISNULL(next_arg + 2);

	(void) ev_save_member(handler, len, position, member, lease_given ? PG_GETARG_UUID_P(next_arg + 1) : NULL,
				   expected_given, expected_given ? ev_position_arg(fcinfo, next_arg + 2) : 0,
				   with_state, with_state && !PG_ARGISNULL(2) ? PG_GETARG_DATUM(2) : (Datum) 0,
				   !with_state || PG_ARGISNULL(2));
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
	int			i;
	int			rc;

	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = Int64GetDatum(position);
	ev_lock_handler_group(handler, len, true);
	SPI_connect();
	i = EV_SCHEMA_INDEX;
	/* every member of the group rewinds; its floors go (they would hide what is to be redone) */
	rc = SPI_execute_plan(ev_prepare(&plan_reset[i], EV_BY_SCHEMA(
									 "WITH floors AS (DELETE FROM everest.handler_floors WHERE handler OPERATOR(pg_catalog.=) $1) "
									 "UPDATE everest.handlers SET position = $2, state = NULL, updated_at = pg_catalog.now() "
									 "WHERE handler OPERATOR(pg_catalog.=) $1",
									 "UPDATE everest.handlers SET position = $2, state = NULL, updated_at = pg_catalog.now() "
									 "WHERE handler OPERATOR(pg_catalog.=) $1"), 2, types),
						  args, NULL, false, 0);
	ev_spi_check(rc, "resetting a handler");
	if (SPI_processed == 0)
	{
		rc = SPI_execute_plan(ev_prepare(&plan_reset_insert[i], EV_BY_SCHEMA(
										 "INSERT INTO everest.handlers AS h (handler, member, position) VALUES ($1, 0, $2) "
										 "ON CONFLICT (handler, member) DO UPDATE SET position = excluded.position, "
										 "state = NULL, updated_at = pg_catalog.now()",
										 "INSERT INTO everest.handlers AS h (handler, position) VALUES ($1, $2) "
										 "ON CONFLICT (handler) DO UPDATE SET position = excluded.position, "
										 "state = NULL, updated_at = pg_catalog.now()"), 2, types),
							  args, NULL, false, 0);
		ev_spi_check(rc, "resetting a handler");
	}
	SPI_finish();
	ev_forget_handler_reads(handler, len);
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
	int32		member = ev_member_arg(fcinfo, 3);
	bool		types_given = PG_NARGS() > 4 && !PG_ARGISNULL(4);
	Datum		types = types_given ? PG_GETARG_DATUM(4) : (Datum) 0;
	bool		after_given = PG_NARGS() > 5 && !PG_ARGISNULL(5);
	int64		position = after_given ? PG_GETARG_INT64(5) : 0;
	ev_error	err;
	EvCheckpoint cp;
	EvHandlerFilter filter;

	if (types_given)
	{
		ArrayType  *array = DatumGetArrayTypeP(types);

		types = PointerGetDatum(array);
		ev_check(ev_check_handler_read(after_given, position, true,
									   ArrayGetNItems(ARR_NDIM(array), ARR_DIMS(array)),
									   array_contains_nulls(array), &err), &err);
	}
	else
		ev_check(ev_check_handler_read(after_given, position, false, 0, false, &err), &err);
	ev_require_horizon();
	ev_require_read_committed();
	SPI_connect();
	cp = ev_handler_checkpoint_row(handler, len, member, false, NULL, NULL);
	SPI_finish();
	ev_require_member(handler, len, member, &cp);
	if (!after_given)
	{
		/* From the stored checkpoint, which a later save of this transaction compares with. */
		position = cp.position;
		ev_record_checkpoint(handler, len, member, cp, cp, false);
	}
	/* Before position++: a checkpoint at the bigint maximum is beyond anything assigned. */
	ev_require_completed(position, -1);

	if (position == PG_INT64_MAX)
		max_count = 0;			/* nothing comes after it (where EV006 cannot know: a standby) */
	else
		position++;
	if (kind == EV_STREAM_REGULAR)
		kind = EV_STREAM_REGULAR_BY_POSITION;
	filter.handler = handler;
	filter.handler_len = len;
	filter.types = types;
	filter.members = cp.members;
	filter.member = member;
	filter.floors = cp.floors;
	ev_read_handler_into(fcinfo, kind, source, source_len, category, category_len, position, max_count,
						 &filter);
	ev_stats_read(fcinfo);
	return (Datum) 0;
}

/*
 * Session leases: an advisory lock of everest's own kind (field 4 = 3), per database. Each one is
 * an entry of the shared lock table, which every database shares: a session holds at most
 * EV_MAX_SESSION_LEASES (54000 beyond), and the leases a transaction took are released when it
 * (or the subtransaction that took them) rolls back, so a failing statement cannot leave
 * thousands behind (new connections to every database would then fail for lack of lock space).
 */
#define EV_MAX_SESSION_LEASES 64

typedef struct EvSessionLease
{
	LOCKTAG		tag;
	SubTransactionId taken_in;	/* InvalidSubTransactionId once its transaction committed */
} EvSessionLease;

static EvSessionLease ev_session_leases[EV_MAX_SESSION_LEASES];
static int	ev_n_session_leases = 0;
static bool ev_session_callbacks = false;

static void
ev_session_lease_forget(int i)
{
	ev_session_leases[i] = ev_session_leases[--ev_n_session_leases];
}

/* Releases the leases taken in `subid` (all of the transaction's, for Invalid) on rollback. */
static void
ev_session_leases_rollback(SubTransactionId subid, bool whole_transaction)
{
	for (int i = ev_n_session_leases - 1; i >= 0; i--)
	{
		SubTransactionId taken = ev_session_leases[i].taken_in;

		if (taken == InvalidSubTransactionId || (!whole_transaction && taken != subid))
			continue;
		LockRelease(&ev_session_leases[i].tag, ExclusiveLock, true);
		ev_session_lease_forget(i);
	}
}

static void
ev_session_leases_xact(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		ev_session_leases_rollback(InvalidSubTransactionId, true);
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE)
		for (int i = 0; i < ev_n_session_leases; i++)
			ev_session_leases[i].taken_in = InvalidSubTransactionId;
}

static void
ev_session_leases_subxact(SubXactEvent event, SubTransactionId mySubid,
						  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		ev_session_leases_rollback(mySubid, false);
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
		for (int i = 0; i < ev_n_session_leases; i++)
			if (ev_session_leases[i].taken_in == mySubid)
				ev_session_leases[i].taken_in = parentSubid;
}

/*
 * The entry of a lease this session holds, or -1. Entries whose lock is gone (someone called
 * pg_advisory_unlock_all(), which releases everest's advisory locks too) are forgotten here.
 */
static int
ev_session_lease_find(const LOCKTAG *tag)
{
	for (int i = ev_n_session_leases - 1; i >= 0; i--)
		if (!ev_lock_held_by_me(&ev_session_leases[i].tag, ExclusiveLock))
			ev_session_lease_forget(i);
	for (int i = 0; i < ev_n_session_leases; i++)
		if (memcmp(&ev_session_leases[i].tag, tag, sizeof(LOCKTAG)) == 0)
			return i;
	return -1;
}

static void
ev_lease_tag(LOCKTAG *tag, const char *handler, size_t len)
{
	uint64		key = ev_lock_key(handler, len);

	memset(tag, 0, sizeof(LOCKTAG));
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32) (key >> 32), (uint32) key, EV_LOCK_SESSION_LEASE);
}

PG_FUNCTION_INFO_V1(everest_try_acquire_handler);
Datum
everest_try_acquire_handler(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	LOCKTAG		tag;
	LockAcquireResult res;

	if (!ev_session_callbacks)
	{
		RegisterXactCallback(ev_session_leases_xact, NULL);
		RegisterSubXactCallback(ev_session_leases_subxact, NULL);
		ev_session_callbacks = true;
	}
	ev_lease_tag(&tag, handler, len);
	if (ev_session_lease_find(&tag) >= 0)
		PG_RETURN_BOOL(true);	/* re-entrant: one hold per session */
	if (ev_n_session_leases >= EV_MAX_SESSION_LEASES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("this session holds %d handler leases, the most it may", EV_MAX_SESSION_LEASES),
				 errdetail("Each session lease takes an entry of the lock table every database shares."),
				 errhint("Release leases with everest.release_handler(), or use acquire_lease.")));
	res = LockAcquire(&tag, ExclusiveLock, true, true);
	if (res == LOCKACQUIRE_NOT_AVAIL)
		PG_RETURN_BOOL(false);
	ev_session_leases[ev_n_session_leases].tag = tag;
	ev_session_leases[ev_n_session_leases].taken_in = GetCurrentSubTransactionId();
	ev_n_session_leases++;
	PG_RETURN_BOOL(true);
}

PG_FUNCTION_INFO_V1(everest_release_handler);
Datum
everest_release_handler(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	LOCKTAG		tag;
	int			i;

	ev_lease_tag(&tag, handler, len);
	i = ev_session_lease_find(&tag);
	if (i < 0)
		PG_RETURN_BOOL(false);
	ev_session_lease_forget(i);
	PG_RETURN_BOOL(LockRelease(&tag, ExclusiveLock, true));
}
