/*
 * Raising core errors with their SQLSTATE, and the argument and SPI helpers every entry
 * point uses.
 */
#include "everest_pg.h"

#include "funcapi.h"
#include "nodes/execnodes.h"
#include "utils/builtins.h"

/*
 * Who hears about the errors raised here (set by everest.c at load, so that this file, which every
 * other one uses, uses none of them): everest.stats counts EV001..EV007 here, where all are raised.
 */
static void (*ev_error_listener) (const char *sqlstate) = NULL;

void
ev_report_set_error_listener(void (*listener) (const char *sqlstate))
{
	ev_error_listener = listener;
}

void
ev_raise(const ev_error *err)
{
	const char *s = err->sqlstate;

	if (ev_error_listener)
		ev_error_listener(s);
	ereport(ERROR,
			(errcode(MAKE_SQLSTATE(s[0], s[1], s[2], s[3], s[4])),
			 errmsg_internal("%s", err->message),
			 err->detail[0] ? errdetail_internal("%s", err->detail) : 0,
			 err->hint[0] ? errhint("%s", err->hint) : 0));
	pg_unreachable();
}

void
ev_check(bool ok, const ev_error *err)
{
	if (!ok)
		ev_raise(err);
}

/*
 * InitMaterializedSRF, with the row type copied from the caller's expected descriptor when it
 * has one, instead of being rebuilt from pg_proc on every call (for a RETURNS TABLE function
 * that is a catalog lookup and array decoding per append).
 */
void
ev_init_srf(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, rsinfo != NULL && IsA(rsinfo, ReturnSetInfo) && rsinfo->expectedDesc != NULL
						? MAT_SRF_USE_EXPECTED_DESC : 0);
}

/* A NULL where a value is required: 22004. */
void
ev_require_arg(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/* A text argument as a palloc'd C string; NULL is 22004. */
char *
ev_text_arg(FunctionCallInfo fcinfo, int argno, const char *name, size_t *len)
{
	text	   *t;

	ev_require_arg(fcinfo, argno, name);
	t = PG_GETARG_TEXT_PP(argno);
	*len = VARSIZE_ANY_EXHDR(t);
	return text_to_cstring(t);
}

/* max_count: NULL or negative is 22023 (DESIGN.md section 2, Read). */
int64
ev_max_count_arg(FunctionCallInfo fcinfo, int argno)
{
	ev_error	err;
	int64		n;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("max_count must not be null")));
	n = PG_GETARG_INT32(argno);
	ev_check(ev_check_max_count(n, &err), &err);
	return n;
}

/*
 * A saved SPI plan, prepared once per backend. Every query of everest names its tables, functions
 * and operators with their schema, so no search_path can redirect it.
 */
SPIPlanPtr
ev_prepare(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	return ev_prepare_opts(cache, sql, nargs, argtypes, 0);
}

/*
 * The same with planner options: CURSOR_OPT_CUSTOM_PLAN where values decide the index.
 * Every query names everest.<relation>, which resolves by name when it is (re)planned: it runs
 * only while ev_catalog() finds the schema and those relations to be the extension's own
 * (catalog.c, docs/security.md). That check is cached, so this costs a test of a flag.
 */
SPIPlanPtr
ev_prepare_opts(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes, int options)
{
	(void) ev_catalog();
	if (*cache == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare_cursor(sql, nargs, argtypes, options);

		if (plan == NULL)
			elog(ERROR, "everest: SPI_prepare failed for \"%s\": %s", sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		*cache = plan;
	}
	return *cache;
}

void
ev_spi_check(int rc, const char *what)
{
	if (rc < 0)
		elog(ERROR, "everest: %s failed: %s", what, SPI_result_code_string(rc));
}

/* The handler argument (first): 22004 when NULL, 22023 when empty or over 512 bytes. */
char *
ev_handler_arg(FunctionCallInfo fcinfo, size_t *len)
{
	char	   *handler = ev_text_arg(fcinfo, 0, "handler", len);
	ev_error	err;

	ev_check(ev_check_handler_name(handler, *len, &err), &err);
	return handler;
}
