/*
 * everest: module load.
 *
 * Preloaded (shared_preload_libraries = 'everest'), the module reserves the shared memory of the
 * $all horizon and registers its transaction callbacks. Loaded later (CREATE EXTENSION without
 * preloading), everything that draws or bounds positions raises 55000 with a HINT; stream reads,
 * deletes and handler checkpoints still work.
 */
#include "everest_pg.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/*
 * Shared memory: the horizon's slots and lock (horizon.c), the notifiers' table (notify.c) and
 * the counters of everest.stats (stats.c). docs/operations.md sizes them.
 */
static void
ev_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(add_size(ev_horizon_shmem_size(), ev_notify_shmem_size()),
									 ev_stats_shmem_size()));
	RequestNamedLWLockTranche("everest", 1);	/* the horizon: every append takes it */
	RequestNamedLWLockTranche("everest notifiers", 1);	/* the notifiers' table, its own */
}

static void
ev_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	(void) ev_horizon_shmem_startup();
	ev_notify_shmem_startup(&(GetNamedLWLockTranche("everest notifiers"))->lock);
	ev_stats_shmem_startup();
	LWLockRelease(AddinShmemInitLock);
}

void
_PG_init(void)
{
	ev_notify_define_settings();
	DefineCustomBoolVariable("everest.debug_fail_tracker",
							 "Testing only: fail an append right after its positions were published.",
							 "Used by test/shell/crash.sh to check that a slot never outlives its transaction.",
							 &ev_debug_fail_tracker, false, PGC_SUSET,
							 GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL, NULL, NULL, NULL);
	MarkGUCPrefixReserved("everest");
	if (!process_shared_preload_libraries_in_progress)
		return;
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = ev_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = ev_shmem_startup;
	ev_horizon_init();
	/* The notifiers publish the horizon and are woken when it may have moved. */
	ev_horizon_set_listeners(ev_notify_ensure_notifier, ev_notify_wake, ev_notify_announced);
#ifndef EV_NO_STATS
	/* everest.stats counts the EV00x errors where they are raised */
	ev_report_set_error_listener(ev_stats_error);
#endif
}
