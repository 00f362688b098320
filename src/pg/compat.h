/*
 * everest PostgreSQL glue: the few places where the server's C API differs between the majors
 * everest builds against (15 and 17). Every version test of src/pg/ lives here; the .c files
 * call the helpers below and never test PG_VERSION_NUM themselves.
 *
 *   ev_my_backend_number()   this process's number among the backends, the index of its slot in
 *                            the horizon's shared array: 15's MyBackendId (1..MaxBackends),
 *                            17's MyProcNumber (0..MaxBackends-1 for a backend); -1 for none
 *   ev_local_backend_status(i)  the i-th entry (1-based) of this backend's snapshot of the
 *                            activity of all backends (pg_stat_activity's source)
 *   ev_insert_index_tuples(rri, slot, estate)  the index entries of a tuple just inserted (not an
 *                            update, no ON CONFLICT arbiter, every index, summarizing or not)
 *   ev_lock_held_by_me(tag, mode)  whether this backend holds the lock in exactly that mode
 */
#ifndef EVEREST_COMPAT_H
#define EVEREST_COMPAT_H

#include "postgres.h"

#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/backend_status.h"

#if PG_VERSION_NUM >= 170000
/* 17 numbers every PGPROC from 0 (ProcNumber); BackendId and storage/backendid.h are gone. */
#include "storage/procnumber.h"

static inline int
ev_my_backend_number(void)
{
	/* auxiliary processes come after the MaxBackends regular ones: they have no slot */
	return MyProcNumber == INVALID_PROC_NUMBER || MyProcNumber >= MaxBackends ? -1 : (int) MyProcNumber;
}
#else
#include "storage/backendid.h"

static inline int
ev_my_backend_number(void)
{
	return MyBackendId == InvalidBackendId || MyBackendId > MaxBackends ? -1 : (int) MyBackendId;
}
#endif

#if PG_VERSION_NUM >= 160000
/* 16 renamed it, making plain that the argument is a position in the snapshot, not a backend id */
#define ev_local_backend_status(i) pgstat_get_local_beentry_by_index(i)
#else
#define ev_local_backend_status(i) pgstat_fetch_stat_local_beentry(i)
#endif

#if PG_VERSION_NUM >= 160000
/* 16 added onlySummarizing (for HOT updates that touch only BRIN-like indexes) */
#define ev_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL, false)
#else
#define ev_insert_index_tuples(rri, slot, estate) \
	ExecInsertIndexTuples((rri), (slot), (estate), false, false, NULL, NIL)
#endif

#if PG_VERSION_NUM >= 170000
/* 17 can also answer "this mode or a stronger one"; everest asks about the mode it takes */
#define ev_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode), false)
#else
#define ev_lock_held_by_me(tag, mode) LockHeldByMe((tag), (mode))
#endif

#endif							/* EVEREST_COMPAT_H */
