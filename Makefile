# everest: an event store inside PostgreSQL (PGXS build).
#
#   make               build the extension
#   make install       install it into the server of pg_config (root or sudo)
#   make installcheck  pg_regress suites against a running server (PGHOST/PGPORT/PGUSER)
#   make unit          C++ core unit tests (GoogleTest), no server needed
#   make demo          set up everything, start a throwaway cluster, show everest at work
#   make test          set up everything, start a throwaway cluster, run every suite
#   make test-pg17     the same suite on PostgreSQL 17, in a Debian 13 chroot (root; slow)
#   make bench         the same set-up, then everest against plain SQL (BENCH_ARGS=--quick)
#   make deb           the Debian package postgresql-15-everest (Debian 12; -17 on Debian 13), into build/ (docs/packaging.md)

EXTENSION = everest
MODULE_big = everest
DATA = $(wildcard sql/everest--*.sql)

CORE_OBJS = src/core/streams.o src/core/event_batch.o src/core/uuid.o src/core/idempotency.o \
            src/core/in_flight_positions.o src/core/render.o src/core/handlers.o src/core/epochs.o src/core/policy.o \
            src/core/json_document.o src/core/schema.o src/core/capi.o
PG_OBJS = src/pg/everest.o src/pg/report.o src/pg/catalog.o src/pg/horizon.o src/pg/streams.o src/pg/append.o src/pg/read.o \
          src/pg/delete.o src/pg/groups.o src/pg/schemas.o src/pg/handlers.o src/pg/leases.o src/pg/published.o src/pg/epochs.o src/pg/notify.o \
          src/pg/stats.o
OBJS = $(PG_OBJS) $(CORE_OBJS)

PG_CPPFLAGS = -I$(srcdir)/include -I$(srcdir)/src/pg
# make EV_NO_STATS=1: a build without the counting of everest.stats (src/pg/stats.c), to measure
# what counting costs; the view then shows zeros.
ifdef EV_NO_STATS
PG_CPPFLAGS += -DEV_NO_STATS
endif
PG_CFLAGS = -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-sign-compare
PG_CXXFLAGS = -std=c++17 -Wall -Wextra -fPIC
SHLIB_LINK = -lboost_json -lre2 -lstdc++

# pg_regress suites (sql/<name>.sql, expected/<name>.out)
REGRESS = append read delete handlers errors search_path
REGRESS_OPTS = --inputdir=. --load-extension=everest

# isolation specs (test/isolation/specs/<name>.spec, test/isolation/expected/<name>.out)
ISOLATION = same_stream_race new_stream_race delete_vs_append horizon_in_flight horizon_subxact \
            handler_lease handler_save_race idempotent_race repeatable_read_append \
            exactly_once_without_lease lease_fencing group_races schema_change
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=everest

EXTRA_CLEAN = build results regression.diffs regression.out output_iso

# No LLVM bitcode: the C++ core is not worth JIT-inlining and clang would miss PG_CXXFLAGS.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Header dependencies (PGXS tracks none without --enable-depend).
$(PG_OBJS): src/pg/everest_pg.h src/pg/compat.h include/everest/capi.h
$(CORE_OBJS): include/everest/core.hpp include/everest/capi.h include/everest/cpp_only.hpp include/everest/schema.hpp

.PHONY: tools
tools:
	./tools/everest-tail/build.sh

.PHONY: deb
deb:
	./tools/build-deb.sh

.PHONY: unit demo test test-pg17 bench
bench:
	./test/run.sh bench $(BENCH_ARGS)

unit:
	./test/unit/build.sh && ./build/unit_tests

demo:
	./test/run.sh demo

test:
	./test/run.sh test

test-pg17:
	./test/pg17.sh

# The two halves of installcheck, so that test/run.sh can count each.
.PHONY: installcheck-regress-only installcheck-isolation-only
installcheck-regress-only: $(REGRESS_PREP)
	$(pg_regress_installcheck) $(REGRESS_OPTS) $(REGRESS)
installcheck-isolation-only:
	$(pg_isolation_regress_installcheck) $(ISOLATION_OPTS) $(ISOLATION)
