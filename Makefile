# w365etl — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120

SAMPLE_FILES := sample_data/d365_order_products_export.xlsx \
                sample_data/dataverse_salesorders.csv sample_data/dataverse_salesorderdetails.csv

.PHONY: install run test test-fast bench stress clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	# build Prefect's local database once, so the first run starts clean and fast
	$(BIN)/prefect server database upgrade -y >/dev/null
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

## run: provision sample_data/ on the embedded SQLite database; prints the summary and report folder
run: $(STAMP)
	$(BIN)/w365etl run $(SAMPLE_FILES) --reference sample_data/reference --config sample_data/w365etl.toml

## test: the whole suite (unit, integration on SQLite and PostgreSQL, Prefect flow end to end),
## in TEST_WORKERS processes (pytest-xdist; each has its own Prefect test server and PostgreSQL
## database; a module's tests stay in one process so its module fixtures are built once)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadscope

test-fast: $(STAMP)
	$(BIN)/pytest -q tests/unit

bench: $(STAMP)
	$(BIN)/python -m bench.run

## stress: two `w365etl run` processes racing on one database, STRESS_RUNS times per backend
## (SQLite and PostgreSQL); prints "race: N iteration(s) on <backend> …, duplicates: D" (D must be 0).
## Then KILL_RUNS runs SIGKILLed at random times (each followed by the same file again) and the
## named-point crash matrix with a recovery run after each kill, on CRASH_BACKENDS; prints
## "random kills: N run(s) … final states different from the uninterrupted run: D" (D must be 0).
## KILL_SEED=<n> repeats a sequence of kill times. Last, the re-run properties with
## STRESS_EXAMPLES random scenarios.
STRESS_RUNS ?= 50
KILL_RUNS ?= 100
CRASH_BACKENDS ?= sqlite,postgresql
STRESS_EXAMPLES ?= 200
stress: $(STAMP)
	W365_RACE_ITERATIONS=$(STRESS_RUNS) $(BIN)/pytest -q -s -p no:cacheprovider \
		tests/integration/test_concurrent_runs.py -k two_concurrent_runs
	W365_KILL_RUNS=$(KILL_RUNS) W365_CRASH_RECOVERY=each W365_CRASH_BACKENDS=$(CRASH_BACKENDS) \
		$(if $(KILL_SEED),W365_KILL_SEED=$(KILL_SEED)) $(BIN)/pytest -q -s -p no:cacheprovider \
		tests/integration/test_crash_matrix.py
	W365_PROPERTY_EXAMPLES=$(STRESS_EXAMPLES) $(BIN)/pytest -q -p no:cacheprovider --hypothesis-show-statistics \
		tests/integration/test_rerun_properties.py

clean:
	rm -rf out w365etl.sqlite w365etl.sqlite-runlock .pytest_cache
