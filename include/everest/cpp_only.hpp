// Included first by every pure C++ header of the core: the core must never see postgres.h,
// whose macros (elog, ereport, PG_TRY) and longjmp-based errors do not mix with C++ objects.
#pragma once

#ifdef PG_VERSION_NUM
#error "everest core headers must not be included after postgres.h; use everest/capi.h from the glue"
#endif
