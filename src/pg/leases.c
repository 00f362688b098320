/*
 * Leases in a table (docs/topologies.md, "Leases that work everywhere"): acquire_lease,
 * renew_lease, release_lease, and the facts a save needs about the member's lease.
 *
 * A lease is a row of everest.leases per handler member with a random token and an expiry on the
 * clock (clock_timestamp(), not the transaction's start). Acquiring takes a member whose row is
 * absent or expired, by an upsert whose WHERE is evaluated on the row's latest version. A save
 * locks the member's lease row FOR SHARE before it decides (handlers.c, ev_lease_facts), so an
 * acquire (an UPDATE of that row) waits for the saving transaction to end: a holder that paused
 * past its lease either committed before the new holder read the checkpoint, or fails with EV005.
 */
#include "everest_pg.h"

#include "catalog/pg_type.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

static SPIPlanPtr plan_acquire, plan_live, plan_renew, plan_release;

static void
ev_require_leases(void)
{
	if (!OidIsValid(ev_catalog()->leases))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("this database's everest has no leases table"),
				 errhint("ALTER EXTENSION everest UPDATE;")));
}

static Interval *
ev_ttl_arg(FunctionCallInfo fcinfo, int argno)
{
	Interval   *ttl;
	ev_error	err;

	ev_require_arg(fcinfo, argno, "ttl");
	ttl = PG_GETARG_INTERVAL_P(argno);
	ev_check(ev_check_lease_ttl(ttl->time + (int64) ttl->day * USECS_PER_DAY, ttl->month != 0, &err), &err);
	return ttl;
}

static pg_uuid_t *
ev_random_token(void)
{
	pg_uuid_t  *token = palloc(sizeof(pg_uuid_t));

	if (!pg_strong_random(token->data, UUID_LEN))
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not generate a lease token")));
	ev_make_uuid_v4(token->data, token->data);
	return token;
}

/* acquire_lease(handler, ttl, member): a free member (absent or expired lease), or zero rows. */
PG_FUNCTION_INFO_V1(everest_acquire_lease);
Datum
everest_acquire_lease(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	Interval   *ttl = ev_ttl_arg(fcinfo, 1);
	int32		first = 0;
	int32		last;
	Oid			types[4] = {TEXTOID, INT4OID, UUIDOID, INTERVALOID};
	Datum		args[4];
	bool	   *live = NULL;

	ev_require_leases();
	/* a resize in progress ends every lease: wait for it, then take a member of the new group */
	ev_lock_handler_group(handler, len, false);
	last = ev_handler_group_members(handler, len, 0, NULL, NULL) - 1;
	if (!PG_ARGISNULL(2))
	{
		ev_error	err;

		first = PG_GETARG_INT32(2);
		ev_check(ev_check_member(handler, len, first, last + 1, &err), &err);
		last = first;
	}
	ev_init_srf(fcinfo);
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[3] = PointerGetDatum(ttl);
	SPI_connect();
	if (first < last)
	{
		/* Members whose lease looks live are skipped without touching (and so waiting for) their
		 * rows, which a saving holder keeps locked until it commits. */
		Oid			ltypes[1] = {TEXTOID};
		int			rc = SPI_execute_plan(ev_prepare(&plan_live,
													 "SELECT member FROM everest.leases WHERE handler OPERATOR(pg_catalog.=) $1 "
													 "AND expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()",
													 1, ltypes),
										  args, NULL, true, 0);

		ev_spi_check(rc, "reading leases");
		live = palloc0(sizeof(bool) * (last + 1));
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int32		m = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));

			if (m >= 0 && m <= last)
				live[m] = true;
		}
	}
	for (int32 m = first; m <= last; m++)
	{
		int			rc;

		if (live != NULL && live[m])
			continue;
		args[1] = Int32GetDatum(m);
		args[2] = UUIDPGetDatum(ev_random_token());
		rc = SPI_execute_plan(ev_prepare(&plan_acquire,
										 "INSERT INTO everest.leases AS l (handler, member, lease, acquired_at, expires_at, "
										 "holder_pid, holder_user, holder_application, holder_address) "
										 "VALUES ($1, $2, $3, pg_catalog.clock_timestamp(), "
										 "pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $4, "
										 "pg_catalog.pg_backend_pid(), SESSION_USER, "
										 "pg_catalog.current_setting('application_name'), pg_catalog.inet_client_addr()) "
										 "ON CONFLICT (handler, member) DO UPDATE SET lease = excluded.lease, "
										 "acquired_at = excluded.acquired_at, expires_at = excluded.expires_at, "
										 "holder_pid = excluded.holder_pid, holder_user = excluded.holder_user, "
										 "holder_application = excluded.holder_application, "
										 "holder_address = excluded.holder_address "
										 "WHERE l.expires_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp() "
										 "RETURNING member, lease",
										 4, types),
							  args, NULL, false, 0);
		ev_spi_check(rc, "acquiring a lease");
		if (SPI_processed == 1)
		{
			Datum		values[2];
			bool		nulls[2] = {false, false};

			values[0] = Int32GetDatum(m);
			values[1] = args[2];
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			break;
		}
	}
	SPI_finish();
	return (Datum) 0;
}

/* renew_lease(handler, lease, ttl): true while the lease is live; false once it is not. */
PG_FUNCTION_INFO_V1(everest_renew_lease);
Datum
everest_renew_lease(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	Interval   *ttl;
	Oid			types[3] = {TEXTOID, UUIDOID, INTERVALOID};
	Datum		args[3];
	int			rc;
	bool		renewed;

	ev_require_arg(fcinfo, 1, "lease");
	ttl = ev_ttl_arg(fcinfo, 2);
	ev_require_leases();
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = PG_GETARG_DATUM(1);
	args[2] = PointerGetDatum(ttl);
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_renew,
									 "UPDATE everest.leases SET expires_at = pg_catalog.clock_timestamp() OPERATOR(pg_catalog.+) $3 "
									 "WHERE handler OPERATOR(pg_catalog.=) $1 AND lease OPERATOR(pg_catalog.=) $2 "
									 "AND expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()",
									 3, types),
						  args, NULL, false, 0);
	ev_spi_check(rc, "renewing a lease");
	renewed = SPI_processed == 1;
	SPI_finish();
	PG_RETURN_BOOL(renewed);
}

/* release_lease(handler, lease): ends the lease; true when it was live. */
PG_FUNCTION_INFO_V1(everest_release_lease);
Datum
everest_release_lease(PG_FUNCTION_ARGS)
{
	size_t		len;
	char	   *handler = ev_handler_arg(fcinfo, &len);
	Oid			types[2] = {TEXTOID, UUIDOID};
	Datum		args[2];
	int			rc;
	bool		released = false;

	ev_require_arg(fcinfo, 1, "lease");
	ev_require_leases();
	args[0] = PointerGetDatum(cstring_to_text_with_len(handler, len));
	args[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	rc = SPI_execute_plan(ev_prepare(&plan_release,
									 "DELETE FROM everest.leases WHERE handler OPERATOR(pg_catalog.=) $1 "
									 "AND lease OPERATOR(pg_catalog.=) $2 "
									 "RETURNING expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()",
									 2, types),
						  args, NULL, false, 0);
	ev_spi_check(rc, "releasing a lease");
	if (SPI_processed == 1)
	{
		bool		isnull;

		released = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	PG_RETURN_BOOL(released);
}
