/*
 * The OIDs of everest's relations in this database, and the attribute numbers of the columns of
 * everest.events, looked up once per backend and forgotten on any relcache invalidation of them
 * or any change to a schema (DROP EXTENSION, ALTER EXTENSION UPDATE, a restore, a rename, ...).
 *
 * Trust (docs/security.md): the functions run as a superuser and their SPI queries name
 * everest.<table>, so the schema of that name must be one nobody else can rename or write to, and
 * each relation must be the extension's own. The schema is owned by a superuser (0.3.0's install
 * creates it; a 0.2.0 install adopted whatever existed) and every relation used is a member of
 * the extension, or nothing runs (55000).
 */
#include "everest_pg.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "catalog/dependency.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_sequence.h"
#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"		/* ACL_NUM and ACL_DAT need it; 17's acl.h no longer includes it */
#include "utils/syscache.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"

static EvCatalog ev_cached;
static bool ev_cached_valid = false;
static bool ev_callback_registered = false;

static void
ev_catalog_invalidate(Datum arg, Oid relid)
{
	if (!ev_cached_valid)
		return;
	if (relid == InvalidOid || relid == ev_cached.events || relid == ev_cached.events_stream_version ||
		relid == ev_cached.events_pkey ||
		relid == ev_cached.tombstones || relid == ev_cached.tombstones_pkey || relid == ev_cached.position_seq ||
		relid == ev_cached.handlers || relid == ev_cached.leases || relid == ev_cached.horizon ||
		relid == ev_cached.epochs || relid == ev_cached.handler_floors || relid == ev_cached.parked ||
		relid == ev_cached.attempts || relid == ev_cached.schemas)
		ev_cached_valid = false;
}

/* A schema renamed, created, dropped, given to another owner or granted; a role altered. */
static void
ev_catalog_namespace_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	ev_cached_valid = false;
}

static void
ev_untrusted(const char *what, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s", what),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

/* The schema everest, when it is one only a superuser controls. */
static Oid
ev_trusted_namespace(void)
{
	Oid			nsp = get_namespace_oid("everest", true);
	HeapTuple	tuple;
	Oid			owner;

	if (!OidIsValid(nsp))
		ev_untrusted("schema everest is missing",
					 "Extension everest is installed, but no schema is named everest.",
					 "Someone renamed or dropped it. Inspect the database, then recreate the extension.");
	tuple = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	if (!HeapTupleIsValid(tuple))
		elog(ERROR, "cache lookup failed for namespace %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tuple))->nspowner;
	{
		bool		isnull;
		Datum		acl_datum = SysCacheGetAttr(NAMESPACEOID, tuple, Anum_pg_namespace_nspacl, &isnull);
		bool		found = false;
		Oid			creator = InvalidOid;

		/* Whoever may CREATE in the schema can plant an overload of a function callers use. */
		if (!isnull)
		{
			Acl		   *acl = DatumGetAclP(acl_datum);
			AclItem    *items = ACL_DAT(acl);

			for (int i = 0; i < ACL_NUM(acl) && !found; i++)
				if ((items[i].ai_privs & ACL_CREATE) && items[i].ai_grantee != owner &&
					(items[i].ai_grantee == ACL_ID_PUBLIC || !superuser_arg(items[i].ai_grantee)))
				{
					found = true;
					creator = items[i].ai_grantee;
				}
		}
		ReleaseSysCache(tuple);
		if (found)
			ev_untrusted(psprintf("schema everest grants CREATE to %s, which is not a superuser",
								  creator == ACL_ID_PUBLIC ? "PUBLIC" :
								  (GetUserNameFromId(creator, true) ? GetUserNameFromId(creator, true) : "a dropped role")),
						 "A role that may create objects in the schema can plant overloads of everest's functions "
						 "that superusers would call.",
						 "REVOKE CREATE ON SCHEMA everest FROM that role (or PUBLIC).");
	}
	if (!superuser_arg(owner))
		ev_untrusted(psprintf("schema everest is owned by role %s, which is not a superuser",
							  GetUserNameFromId(owner, true) ? GetUserNameFromId(owner, true) : "(dropped)"),
					 "Its owner could rename it and plant tables that everest's functions would use as a superuser.",
					 "Check every object in schema everest, give it to a superuser (ALTER SCHEMA everest OWNER TO ...), "
					 "then ALTER EXTENSION everest UPDATE.");
	return nsp;
}

static Oid
ev_relid(Oid nsp, const char *name)
{
	Oid			relid = get_relname_relid(name, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("everest.%s is missing", name),
				 errhint("Recreate the extension: DROP EXTENSION everest; CREATE EXTENSION everest.")));
	return relid;
}

/* A table or sequence of the extension: in the schema and a member of the extension. */
static Oid
ev_member_relid(Oid ext, Oid nsp, const char *name)
{
	Oid			relid = ev_relid(nsp, name);

	if (getExtensionOfObject(RelationRelationId, relid) != ext)
		ev_untrusted(psprintf("everest.%s is not a member of extension everest", name),
					 "The store uses only the relations its install created.",
					 "Someone replaced it. Inspect schema everest, then recreate the extension.");
	return relid;
}

/* An index of one of the extension's tables. */
static Oid
ev_index_relid(Oid nsp, const char *name, Oid table)
{
	Oid			relid = ev_relid(nsp, name);

	if (get_rel_relkind(relid) != RELKIND_INDEX || IndexGetRelation(relid, false) != table)
		ev_untrusted(psprintf("everest.%s is not the index the install created", name),
					 "The store uses only the relations its install created.",
					 "Someone replaced it. Inspect schema everest, then recreate the extension.");
	return relid;
}

static const char *const ev_event_column_names[EV_EVENT_NCOLUMNS] = {
	"stream", "version", "position", "id", "type", "data", "metadata", "created_at"
};

static AttrNumber
ev_attnum(Oid relid, const char *name)
{
	AttrNumber	attnum = get_attnum(relid, name);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("everest.events has no column \"%s\"", name),
				 errhint("Recreate the extension: DROP EXTENSION everest; CREATE EXTENSION everest.")));
	return attnum;
}

/* The number of columns of a relation, dropped ones included. */
static int
ev_relnatts(Oid relid)
{
	HeapTuple	tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	int			natts;

	if (!HeapTupleIsValid(tuple))
		return -1;
	natts = ((Form_pg_class) GETSTRUCT(tuple))->relnatts;
	ReleaseSysCache(tuple);
	return natts;
}

/*
 * The append path writes rows straight into everest.events (append.c): it fills exactly the
 * store's eight columns and runs neither triggers nor CHECK constraints. So the table must be as
 * the install made it (in 0.1.0's or 0.2.0's column order): an added column (appends would build
 * rows of the wrong width), a changed type (garbage), a CHECK constraint, a changed NOT NULL or a
 * trigger of someone else's would be ignored silently or worse. Anything else is refused here,
 * once per catalog load, with 55000.
 */
static void
ev_check_events_shape(Oid relid)
{
	static const Oid types[EV_EVENT_NCOLUMNS] = {
		TEXTOID, INT8OID, INT8OID, UUIDOID, TEXTOID, JSONBOID, JSONBOID, TIMESTAMPTZOID
	};
	Relation	rel = relation_open(relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	const char *problem = NULL;
	int			live = 0;

	for (int i = 0; i < desc->natts && problem == NULL; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		int			c;

		if (att->attisdropped)
		{
			problem = "it has a dropped column";
			continue;
		}
		live++;
		for (c = 0; c < EV_EVENT_NCOLUMNS; c++)
			if (strcmp(NameStr(att->attname), ev_event_column_names[c]) == 0)
				break;
		if (c == EV_EVENT_NCOLUMNS)
			problem = psprintf("it has a column \"%s\" the store does not fill", NameStr(att->attname));
		else if (att->atttypid != types[c])
			problem = psprintf("column \"%s\" has type %s", NameStr(att->attname), format_type_be(att->atttypid));
		else if (att->attnotnull != (c != EV_COL_METADATA))
			problem = psprintf("column \"%s\" has NOT NULL %s", NameStr(att->attname),
							   att->attnotnull ? "added" : "removed");
	}
	if (problem == NULL && live != EV_EVENT_NCOLUMNS)
		problem = "it lacks a column";
	if (problem == NULL && rel->rd_rel->relchecks > 0)
		problem = "it has CHECK constraints, which appends would not run";
	if (problem == NULL && rel->trigdesc != NULL)
	{
		for (int i = 0; i < rel->trigdesc->numtriggers && problem == NULL; i++)
		{
			Trigger    *t = &rel->trigdesc->triggers[i];

			if (!t->tgisinternal && strcmp(t->tgname, "events_are_immutable") != 0 &&
				strcmp(t->tgname, "events_are_not_truncated") != 0)
				problem = psprintf("it has a trigger \"%s\", which appends would not run", t->tgname);
		}
	}
	relation_close(rel, AccessShareLock);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("everest.events was altered: %s", problem),
				 errdetail("Appends write the store's eight columns straight into the table, without triggers or CHECK constraints."),
				 errhint("Undo the change (docs/security.md); keep your own logic in tables of your own fed by a handler.")));
}

/*
 * Positions must come out of the sequence in the order they are drawn under the horizon lock:
 * a per-backend CACHE, a negative INCREMENT or CYCLE would hand out a position below one that
 * readers have already passed.
 */
static bool
ev_sequence_is_plain(Oid seq)
{
	HeapTuple	tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(seq));
	bool		plain;

	if (!HeapTupleIsValid(tuple))
		return false;
	plain = ((Form_pg_sequence) GETSTRUCT(tuple))->seqcache == 1 &&
		((Form_pg_sequence) GETSTRUCT(tuple))->seqincrement > 0 &&
		!((Form_pg_sequence) GETSTRUCT(tuple))->seqcycle;
	ReleaseSysCache(tuple);
	return plain;
}

/* A table added by a later version: InvalidOid while the database is not updated, else a member. */
static Oid
ev_optional_member_relid(Oid ext, Oid nsp, const char *name)
{
	return OidIsValid(get_relname_relid(name, nsp)) ? ev_member_relid(ext, nsp, name) : InvalidOid;
}

const EvCatalog *
ev_catalog(void)
{
	/*
	 * Take in what other sessions changed (a rename, an owner, a grant) before trusting the
	 * cached check: otherwise a statement that began before the change could resolve the store's
	 * names after it. Cheap when nothing is pending.
	 */
	AcceptInvalidationMessages();
	if (!ev_cached_valid)
	{
		Oid			ext;
		Oid			nsp;

		if (!ev_callback_registered)
		{
			CacheRegisterRelcacheCallback(ev_catalog_invalidate, (Datum) 0);
			CacheRegisterSyscacheCallback(NAMESPACEOID, ev_catalog_namespace_changed, (Datum) 0);
			CacheRegisterSyscacheCallback(AUTHOID, ev_catalog_namespace_changed, (Datum) 0);	/* superuser or not */
			ev_callback_registered = true;
		}
		ext = get_extension_oid("everest", true);
		if (!OidIsValid(ext))
			ev_untrusted("extension everest is not installed in this database",
						 "The everest library was called without its extension.",
						 "CREATE EXTENSION everest;");
		nsp = ev_trusted_namespace();
		ev_cached.events = ev_member_relid(ext, nsp, "events");
		ev_cached.events_in_result_order = ev_relnatts(ev_cached.events) == EV_EVENT_NCOLUMNS;
		for (int c = 0; c < EV_EVENT_NCOLUMNS; c++)
		{
			ev_cached.events_attnum[c] = ev_attnum(ev_cached.events, ev_event_column_names[c]);
			if (ev_cached.events_attnum[c] != c + 1)
				ev_cached.events_in_result_order = false;
		}
		ev_check_events_shape(ev_cached.events);
		ev_cached.events_pkey = ev_index_relid(nsp, "events_pkey", ev_cached.events);
		ev_cached.events_stream_version = ev_index_relid(nsp, "events_stream_version_key", ev_cached.events);
		ev_cached.tombstones = ev_member_relid(ext, nsp, "tombstones");
		ev_cached.tombstones_pkey = ev_index_relid(nsp, "tombstones_pkey", ev_cached.tombstones);
		ev_cached.handlers = ev_member_relid(ext, nsp, "handlers");
		ev_cached.handlers_grouped = get_attnum(ev_cached.handlers, "members") != InvalidAttrNumber;
		/* 0.5.0's tables */
		ev_cached.handler_floors = ev_optional_member_relid(ext, nsp, "handler_floors");
		ev_cached.schemas = ev_optional_member_relid(ext, nsp, "schemas");
		ev_cached.attempts = ev_optional_member_relid(ext, nsp, "attempts");
		ev_cached.parked = ev_optional_member_relid(ext, nsp, "parked");
		ev_cached.position_seq = ev_member_relid(ext, nsp, "position_seq");
		/* 0.4.0's tables; a database not yet updated runs without them */
		ev_cached.leases = ev_optional_member_relid(ext, nsp, "leases");
		ev_cached.horizon = ev_optional_member_relid(ext, nsp, "horizon");
		ev_cached.epochs = ev_optional_member_relid(ext, nsp, "epochs");
		ev_cached.position_seq_ok = ev_sequence_is_plain(ev_cached.position_seq);
		ev_cached_valid = true;
	}
	return &ev_cached;
}
