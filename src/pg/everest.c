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
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	ev_notify_define_settings();
	DefineCustomBoolVariable("everest.debug_fail_tracker",
							 "Testing only: fail an append right after its positions were published.",
							 "Used by test/shell/crash.sh to check that a slot never outlives its transaction.",
							 &ev_debug_fail_tracker, false, PGC_SUSET,
							 GUC_NOT_IN_SAMPLE | GUC_NO_SHOW_ALL, NULL, NULL, NULL);
	if (!process_shared_preload_libraries_in_progress)
		return;
	ev_horizon_init();
}
