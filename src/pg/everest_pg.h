/*
 * everest PostgreSQL glue: what the files of src/pg/ share.
 *
 *   everest.c   module load (_PG_init): settings, shared memory, wiring the horizon to the notifiers
 *   report.c    raising core errors with their SQLSTATE; argument helpers
 *   catalog.c   the OIDs of everest's relations, cached per backend
 *   horizon.c   shared memory: positions in flight, safe_position(), transaction callbacks
 *   published.c the horizon published for standbys and mirrors; mirror detection
 *   streams.c   the per-stream lock, a stream's version and tombstone
 *   append.c    append_events, append_event
 *   read.c      read_event, read_stream_*, read_all_*, stream_version
 *   delete.c    delete_stream, the immutability trigger
 *   handlers.c  handler checkpoints and state, what a transaction read from, session leases
 *   leases.c    leases in a table (acquire_lease, renew_lease, release_lease)
 *   epochs.c    position epochs after a promotion or cutover, EV006
 *   notify.c    the notifier worker: NOTIFY everest when safe_position() moves
 *   stats.c     counters per database for operators (everest.stats, reset_stats)
 */
#ifndef EVEREST_PG_H
#define EVEREST_PG_H

#include "postgres.h"

#include "fmgr.h"
#include "executor/spi.h"
#include "storage/lwlock.h"
#include "utils/uuid.h"

#include "everest/capi.h"

/*
 * catalog.c: everest's relations in this database.
 * The columns of everest.events, in the order of everest.recorded_event (the table's own order
 * since 0.2.0; a database still on 0.1.0 has position first, so they are looked up by name).
 */
typedef enum EvEventColumn
{
	EV_COL_STREAM,
	EV_COL_VERSION,
	EV_COL_POSITION,
	EV_COL_ID,
	EV_COL_TYPE,
	EV_COL_DATA,
	EV_COL_METADATA,
	EV_COL_CREATED_AT,
	EV_EVENT_NCOLUMNS
} EvEventColumn;

typedef struct EvCatalog
{
	Oid			events;
	AttrNumber	events_attnum[EV_EVENT_NCOLUMNS];	/* by EvEventColumn */
	bool		events_in_result_order; /* columns 1..8 are recorded_event's (0.2.0) */
	Oid			events_pkey;	/* unique index (position) */
	Oid			events_stream_version;	/* unique index (stream, version) */
	Oid			tombstones;
	Oid			tombstones_pkey;
	Oid			handlers;
	bool		handlers_grouped;	/* a row per member (0.5.0); false: one per handler */
	Oid			handler_floors; /* InvalidOid in a database still on 0.4.0 */
	Oid			parked;			/* likewise */
	Oid			attempts;		/* likewise */
	Oid			schemas;		/* likewise */
	Oid			leases;			/* InvalidOid in a database still on 0.3.0 */
	Oid			horizon;		/* likewise */
	Oid			epochs;			/* likewise */
	Oid			position_seq;
	bool		position_seq_ok;	/* CACHE 1, INCREMENT > 0, NO CYCLE */
} EvCatalog;
extern const EvCatalog *ev_catalog(void);

/* report.c */
extern void ev_raise(const ev_error *err) pg_attribute_noreturn();
extern void ev_report_set_error_listener(void (*listener) (const char *sqlstate));
extern void ev_check(bool ok, const ev_error *err);
extern void ev_init_srf(FunctionCallInfo fcinfo);
extern char *ev_text_arg(FunctionCallInfo fcinfo, int argno, const char *name, size_t *len);
extern void ev_require_arg(FunctionCallInfo fcinfo, int argno, const char *name);
extern int64 ev_max_count_arg(FunctionCallInfo fcinfo, int argno);
extern SPIPlanPtr ev_prepare(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes);
extern SPIPlanPtr ev_prepare_opts(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes,
								  int options);
extern void ev_spi_check(int rc, const char *what);
extern char *ev_handler_arg(FunctionCallInfo fcinfo, size_t *len);	/* 22004; 22023 empty or > 512 bytes */

/* horizon.c */
extern bool ev_debug_fail_tracker;
extern int	ev_horizon_holder_pids(int *pids, int max);
extern int64 ev_safe_position_at_own_commit(void);
extern void ev_horizon_wake_waiters(void);	/* the notifier, after a round that moved it */
extern int	ev_horizon_waiters(void);	/* sessions in wait_for_position now */
extern void ev_horizon_init(void);	/* from _PG_init when preloaded */
extern Size ev_horizon_shmem_size(void);
extern LWLock *ev_horizon_shmem_startup(void);
extern void ev_horizon_set_listeners(bool (*publisher) (void), void (*moved) (void),
									 int64 (*announced) (void));
extern void ev_require_horizon(void);
extern void ev_draw_positions(int n, int64 *positions);
extern int64 ev_safe_position(void);
extern void ev_require_read_committed(void);


/* published.c: the horizon as standbys and mirrors see it (docs/topologies.md) */
extern int64 ev_sequence_last(Oid seq);	/* 0 before the first position */
extern int64 ev_last_assigned(void);	/* the position sequence's */
extern int64 ev_published_horizon(void);
extern void ev_publish_horizon(int64 safe, bool own_transaction);
extern bool ev_is_mirror(void);		/* a logical-replication subscriber of everest.events */
extern bool ev_mirror_synced(void);	/* ... whose everest tables finished their initial copy */
extern void ev_require_writable_store(void);	/* 25006 on a mirror */

/* epochs.c (docs/topologies.md, "Failover") */
extern void ev_epoch_ensure(void);	/* before an append draws positions */
extern bool ev_epoch_is_current(void);	/* this node appended last, or nobody has */
extern void ev_require_completed(int64 checkpoint, int64 known_safe);	/* EV006 */

/* notify.c */
extern bool ev_notify_enabled;
extern Size ev_notify_shmem_size(void);
extern void ev_notify_shmem_startup(LWLock *lock);
extern void ev_notify_define_settings(void);
extern bool ev_notify_ensure_notifier(void);
extern void ev_notify_wake(void);
extern int64 ev_notify_announced(void);	/* the notifier's last announced safe_position() */

/* read.c; a regular stream read by position, bounded by the horizon (read_handler_events) */
extern void ev_read_into(FunctionCallInfo fcinfo, ev_stream_kind kind, const char *stream,
						 size_t stream_len, const char *category, size_t category_len,
						 int64 from, bool forward, int64 max_count);
/* What a handler member's read takes (docs/groups.md): its types, its partition, its floors. */
typedef struct EvHandlerFilter
{
	const char *handler;
	size_t		handler_len;
	Datum		types;			/* a text[], or 0: every type */
	int32		members;		/* the group's size: > 1 filters by partition */
	int32		member;
	bool		floors;			/* the group has floors from a resize */
} EvHandlerFilter;
extern void ev_read_handler_into(FunctionCallInfo fcinfo, ev_stream_kind kind, const char *stream,
								 size_t stream_len, const char *category, size_t category_len,
								 int64 from, int64 max_count, const EvHandlerFilter *filter);
extern SPIPlanPtr ev_handler_read_plan(ev_stream_kind kind, const EvHandlerFilter *filter);
extern void ev_handler_read_args(Datum *args, ev_stream_kind kind, const char *stream, size_t stream_len,
								 const char *category, size_t category_len, int64 from, int64 upto,
								 int64 max_count, const EvHandlerFilter *filter);
extern ev_stream_kind ev_classify_read(const char *stream, size_t len, const char **category,
									   size_t *category_len);

/*
 * everest's advisory lock classes (the fourth field of an advisory LOCKTAG; PostgreSQL's own
 * pg_advisory_lock uses 1 and 2), named here once.
 */
typedef enum EvLockClass
{
	EV_LOCK_SESSION_LEASE = 3,	/* try_acquire_handler (handlers.c) */
	EV_LOCK_STREAM = 4,			/* writers of one stream (streams.c) */
	EV_LOCK_HANDLER_GROUP = 5	/* a handler group's shape: resize, reset, drop vs saves (handlers.c) */
} EvLockClass;

/* streams.c: the per-stream lock writers take, and a stream's state */
extern void ev_lock_stream(const char *stream, size_t len);
extern void ev_stream_state(const char *stream, size_t len, bool for_write, int64 *version,
							bool *tombstoned);

/* handlers.c: a member's save (save_handler_position, save_handler_state, park_event) */
extern void ev_lock_handler_group(const char *handler, size_t len, bool exclusive);
extern int64 ev_position_arg(FunctionCallInfo fcinfo, int argno);	/* 22004, 22023 below 0 */
extern int32 ev_handler_group_members(const char *handler, size_t len, int32 member, bool *floors,
									  int64 *position);
extern int64 ev_save_member(const char *handler, size_t len, int64 position, int32 member,
						   const pg_uuid_t *lease, bool expected_given, int64 expected, bool with_state,
						   Datum state, bool state_null);
extern void ev_forget_handler_reads(const char *handler, size_t len);

/* schemas.c: EV007 before an append writes (docs/schemas.md) */
extern bool ev_event_schemas_present(void);
extern void ev_check_event_schemas(ev_batch *batch, const Datum *data, size_t n);

/* delete.c */
extern bool ev_deleting_stream;

/*
 * stats.c: counters per database in shared memory (README, "Metrics"; docs/operations.md).
 * The order is the column order of everest.stats after `database`.
 */
typedef enum EvStat
{
	EV_STAT_APPENDS,			/* append calls that wrote */
	EV_STAT_EVENTS_APPENDED,
	EV_STAT_IDEMPOTENT_RETRIES, /* batches that matched stored ids and wrote nothing */
	EV_STAT_READS,				/* read calls (read_event, read_stream_*, read_all_*, read_handler_events) */
	EV_STAT_EVENTS_READ,
	EV_STAT_NOTIFICATIONS,		/* NOTIFY everest sent by the notifier */
	EV_STAT_EV001,				/* wrong expected version */
	EV_STAT_EV002,
	EV_STAT_EV003,
	EV_STAT_EV004,
	EV_STAT_EV005,
	EV_STAT_EV006,
	EV_STAT_EV007,
	EV_NSTATS
} EvStat;
#define EV_STATS_SLOTS 128		/* databases counted at once (docs/operations.md) */
extern Size ev_stats_shmem_size(void);
extern void ev_stats_shmem_startup(void);
#ifdef EV_NO_STATS
#define ev_stats_add(stat, n) ((void) 0)
#define ev_stats_read(fcinfo) ((void) 0)
#define ev_stats_error(sqlstate) ((void) 0)
#else
extern void ev_stats_add(EvStat stat, uint64 n);	/* one atomic add, no lock */
extern void ev_stats_read(FunctionCallInfo fcinfo); /* a read's call and its rows */
extern void ev_stats_error(const char *sqlstate);	/* EV001..EV007 */
#endif

#endif							/* EVEREST_PG_H */
