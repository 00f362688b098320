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

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	ev_notify_define_settings();
	if (!process_shared_preload_libraries_in_progress)
		return;
	ev_horizon_init();
}
