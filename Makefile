# Developer loop for netbox-business-application. Everything runs from the venv in .work/venv,
# against this checkout's own PostgreSQL and Redis on 127.0.0.1 (ports in scripts/env.sh).
#
#   make setup   install what is missing, start the services, migrate
#   make build   rebuild the Rust extension (release) into the venv
#   make test    setup, fresh test database, the whole pytest suite (Rust backend) and cargo test
#   make lint    ruff, missing-migration check, rustfmt and clippy
#   make bench   pytest-benchmark suites in bench/ (QUICK=1 for a short run)
#   make fuzz    the long fuzz runs: schemathesis over the REST API and mutated receiver payloads
#   make reliability  alert storms with faults (tests/load, STORM_ALERTS=15600), writes RELIABILITY.md
#   make demo    a running NetBox with demo data (scripts/demo.sh)
#   make start   the demo's NetBox and worker started again, without posting its alerts again
#   make stop    stop runserver, the RQ worker, Redis and PostgreSQL
#   make status  which of them are running (exit 3 when PostgreSQL or Redis is stopped)
#   make clean   stop, then delete .work/, .demo/ and build output
#
# PYTEST_ARGS passes extra arguments to pytest, e.g. make test PYTEST_ARGS='-k incident -x'; TESTS narrows
# the suite to some paths, e.g. make test TESTS='tests/engine tests/property' (default: tests).
# Benchmark files in bench/ may be named test_*.py or bench_*.py; QUICK is passed on to them.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help

PYTEST_ARGS ?=
TESTS ?= tests
QUICK ?=
# Notifications per storm (each alert fires, half of them resolve): 15,600 make 10,102 distinct alerts,
# TARGETS.md's 10,000.
STORM_ALERTS ?= 15600

.PHONY: help setup build test lint bench fuzz reliability demo start stop status clean

help:
	@sed -n 's/^#   make /make /p' Makefile

setup:
	@scripts/setup.sh
	scripts/services.sh start
	scripts/migrate.sh

build:
	@scripts/setup.sh --build

# The test database is cloned afresh from the pristine template every run, so no test sees rows a
# previous run or the demo left. pytest's exit 5 (no test collected) fails like any other.
test:
	@source scripts/env.sh
	ms() { local t=$${EPOCHREALTIME/./}; echo $$((t / 1000)); }
	secs() { printf '%d.%d s' $$(($$1 / 1000)) $$(($$1 % 1000 / 100)); }
	t_start=$$(ms)
	t=$$(ms); scripts/setup.sh; d_setup=$$(($$(ms) - t))
	t=$$(ms); scripts/services.sh start; d_services=$$(($$(ms) - t))
	t=$$(ms); scripts/migrate.sh --test-db; d_migrate=$$(($$(ms) - t))
	t=$$(ms); rc_pytest=0
	BUSINESS_APP_ENGINE_BACKEND=rust "$$NBA_PY" -m pytest -p no:cacheprovider $(TESTS) $(PYTEST_ARGS) || rc_pytest=$$?
	d_pytest=$$(($$(ms) - t))
	if ((rc_pytest == 5)); then echo 'make test: pytest collected no test (exit 5): failing' >&2; fi
	t=$$(ms); rc_cargo=0
	libdir=$$("$$NBA_PY" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
	(cd core_rs && LD_LIBRARY_PATH=$$libdir$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH} cargo test --workspace) || rc_cargo=$$?
	d_cargo=$$(($$(ms) - t))
	verdict=OK; ((rc_pytest == 0 && rc_cargo == 0)) || verdict=FAILED
	echo "make test: $$verdict | setup $$(secs $$d_setup), services $$(secs $$d_services)," \
		"migrate + test db $$(secs $$d_migrate), pytest $$(secs $$d_pytest) (exit $$rc_pytest)," \
		"cargo test $$(secs $$d_cargo) (exit $$rc_cargo), total $$(secs $$(($$(ms) - t_start)))"
	[[ $$verdict == OK ]]

lint:
	@source scripts/env.sh
	[[ -x $$NBA_PY ]] || { echo 'make lint: no venv yet, run make setup' >&2; exit 1; }
	rc=0
	if [[ -x $$NBA_VENV/bin/ruff ]]; then
		"$$NBA_VENV/bin/ruff" check . || rc=1
		"$$NBA_VENV/bin/ruff" format --check . || rc=1
	else
		echo 'make lint: ruff is not in the venv, skipping the Python checks'
	fi
	nba_netbox makemigrations --check --dry-run business_application || rc=1
	(cd core_rs && cargo fmt --all --check) || rc=1
	(cd core_rs && cargo clippy --workspace --all-targets -- -D warnings) || rc=1
	exit $$rc

bench:
	@source scripts/env.sh
	scripts/setup.sh
	scripts/services.sh start
	scripts/migrate.sh --test-db
	rc=0
	QUICK=$(QUICK) "$$NBA_PY" -m pytest -p no:cacheprovider -o 'python_files=test_*.py bench_*.py' \
		bench --benchmark-only $(PYTEST_ARGS) || rc=$$?
	if ((rc == 5)); then echo 'make bench: no benchmark collected in bench/' >&2; fi
	exit $$rc

# The fuzz tests of `make test`, with many more examples (NBA_FUZZ=long; NBA_FUZZ_EXAMPLES overrides the
# count) and a new random seed each run: 2,000 schema requests and 1,000 mutated deliveries.
fuzz:
	@source scripts/env.sh
	scripts/setup.sh
	scripts/services.sh start
	scripts/migrate.sh --test-db
	NBA_FUZZ=long BUSINESS_APP_ENGINE_BACKEND=rust "$$NBA_PY" -m pytest -p no:cacheprovider -s \
		tests/fuzz tests/receivers/test_mutations.py tests/receivers/test_corpus.py $(PYTEST_ARGS)

# The storm and fault tests of tests/load with STORM_ALERTS alerts each (make test runs them with
# 300), then RELIABILITY.md from their figures; its "Bad input and permissions" section is kept.
reliability:
	@source scripts/env.sh
	scripts/setup.sh
	scripts/services.sh start
	scripts/migrate.sh --test-db
	figures=$$NBA_WORK/reliability-figures.jsonl
	rm -f "$$figures"
	rc=0
	NBA_STORM_ALERTS=$(STORM_ALERTS) NBA_STORM_FIGURES=$$figures BUSINESS_APP_ENGINE_BACKEND=rust \
		"$$NBA_PY" -m pytest -p no:cacheprovider tests/load $(PYTEST_ARGS) || rc=$$?
	"$$NBA_PY" -m tests.load.report "$$figures" RELIABILITY.md || rc=$$?
	exit $$rc

demo: setup
	@if [[ -f scripts/demo.sh ]]; then
		bash scripts/demo.sh
	else
		echo 'make demo: scripts/demo.sh does not exist yet' >&2
		exit 1
	fi

start: setup
	@bash scripts/demo.sh --no-alerts

stop:
	@scripts/services.sh stop

status:
	@scripts/services.sh status

clean: stop
	@if [[ -L .work/pg ]]; then rm -rf "$$(readlink -f .work/pg)"; fi
	rm -rf .work .demo core_rs/target .hypothesis bench/.benchmarks
	find business_application -name '_core*.so' -delete
