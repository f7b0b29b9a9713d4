# apiscale: one entry point.
#
#   make              build the extension (PGXS) and the pooler
#   make install      install both (the extension into PostgreSQL 15)
#   make test         install what is missing, build, run every test suite
#   make demo         a throwaway PostgreSQL with an API-like workload
#   make bench        benchmarks (ratios against no extension / PgBouncer)
#   make fuzz         the pooler's parser fuzzers, FUZZ_SECONDS (300) each
#   make soak         the extension: 200 clients for 5 min, then SQLsmith,
#                     SOAK_QUERIES (100000); then the pooler's long runs
#                     (make soak-pooler)
#   make valgrind-check  the pg_regress suites under valgrind memcheck (15 min)
#   make format       clang-format the C sources; format-check only checks
#   make deb          Debian packages postgresql-15-apiscale and apiscale-pooler
#                     in build/deb/, checked by lintian
#   make deb-test     make deb, then install the packages on this machine and
#                     try them (about 2 minutes; not part of make test)

# The extension (PGXS)
MODULE_big = apiscale
OBJS = \
	extension/advice.o \
	extension/advisor.o \
	extension/antipattern.o \
	extension/apiscale.o \
	extension/cache.o \
	extension/cache_advice.o \
	extension/capacity.o \
	extension/errors.o \
	extension/evidence.o \
	extension/existing.o \
	extension/guc.o \
	extension/histogram.o \
	extension/machine.o \
	extension/hooks.o \
	extension/hypo.o \
	extension/library.o \
	extension/metrics.o \
	extension/normalize.o \
	extension/quals.o \
	extension/sample.o \
	extension/signals.o \
	extension/sqlfuncs.o \
	extension/store.o \
	extension/writes.o
EXTENSION = apiscale
DATA = extension/apiscale--1.0.sql extension/apiscale--1.0--1.1.sql
PGFILEDESC = "apiscale - query statistics and scaling advice for APIs"

# pg_regress suites; scripts/test.sh runs them against a throwaway server.
REGRESS = create_extension upgrade counters percentiles slow_plans nesting errors \
	failed_statements encoding privileges parameter_privacy index_proof index_advice index_residual \
	index_expression index_partial index_covering index_writes index_review \
	advisor_robustness antipatterns signals metrics report cache_advice capacity \
	drop_extension

PG_CFLAGS = -Wall -Werror
# Each copy of the library calls its own functions and reads its own state,
# even when another copy is loaded in the same process (extension/library.c).
SHLIB_LINK += -Wl,-Bsymbolic
# No LLVM bitcode: JIT inlining of our code is not worth a clang dependency.
# "override" makes it win over the with_llvm = yes of PGXS's Makefile.global.
override with_llvm = no

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

.DEFAULT_GOAL := all

ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
# PGXS tracks no header dependencies: every object depends on every header,
# so a changed struct never leaves two objects disagreeing on its layout.
$(OBJS): $(wildcard extension/*.h)
else
# Nothing to build with yet: install the Debian packages, then build.
all install:
	scripts/deps.sh
	$(MAKE) $@
endif

# APISCALE_EXTENSION_ONLY=1: the extension alone, as debian/rules builds it
# with pg_buildext (the pooler has a package of its own).
ifndef APISCALE_EXTENSION_ONLY
all: pooler-all
install: pooler-install
clean: pooler-clean fuzz-clean
endif

.PHONY: pooler-all pooler-install pooler-clean fuzz-clean test demo bench \
	fuzz soak soak-pooler valgrind-check format format-check deb deb-test

pooler-all:
	$(MAKE) -C pooler all
pooler-install:
	$(MAKE) -C pooler install
pooler-clean:
	$(MAKE) -C pooler clean
fuzz-clean:
	$(MAKE) -C tests/fuzz clean

test:
	scripts/test.sh

demo:
	scripts/demo.sh

bench:
	tests/bench/run.sh
	tests/bench/error_cost.sh
	tests/bench/pooler.sh

deb:
	scripts/deb.sh

deb-test:
	scripts/deb-test.sh

# FUZZ_SECONDS=N on the command line reaches tests/fuzz/Makefile.
fuzz:
	$(MAKE) -C tests/fuzz run

# Long runs of the extension, in a private copy of PostgreSQL
# (tests/soak/run.sh): SOAK_CLIENTS clients churning statements for
# SOAK_SECONDS with every detector on, then SOAK_QUERIES SQLsmith queries;
# then the pooler's long runs (tests/soak/pooler.sh; make soak-pooler runs
# only them).
SOAK_CLIENTS ?= 200
SOAK_SECONDS ?= 300
SOAK_QUERIES ?= 100000
soak: all
	SOAK_CLIENTS=$(SOAK_CLIENTS) SOAK_SECONDS=$(SOAK_SECONDS) \
		SOAK_QUERIES=$(SOAK_QUERIES) tests/soak/run.sh
	$(MAKE) soak-pooler

soak-pooler: pooler-all
	tests/soak/pooler.sh

# The pg_regress suites with the server under valgrind memcheck, in a
# private copy of PostgreSQL (tests/valgrind/run.sh); slow.
valgrind-check: all
	tests/valgrind/run.sh

C_SOURCES = $(wildcard extension/*.[ch] pooler/*.[ch] tests/unit/*.[ch] \
	tests/fuzz/*.[ch])

format:
	clang-format -i $(C_SOURCES)

format-check:
	clang-format --dry-run --Werror $(C_SOURCES)

# Used by scripts/test.sh to read the suite list from one place.
print-%:
	@echo $($*)
