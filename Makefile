# `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app app
# Compiled gettext catalogs (PDFs, portal); the .po files are committed, the .mo files are built.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

.PHONY: run test install lint fmt bench faults screenshots translations clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/pybabel -q compile -d translations
	touch $(STAMP)

install: $(STAMP) $(CATALOGS)

# a .po edited after install: recompile just that catalog
translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po | $(STAMP)
	$(BIN)/pybabel -q compile -i $< -o $@

## Re-extract the PDF and portal strings into messages.pot and merge them into every catalog.
translations: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -o messages.pot --no-location --add-comments=Translators: --project=Ledgerline --copyright-holder=Ledgerline .
	$(BIN)/pybabel -q update -i messages.pot -d translations --width 100 --ignore-obsolete
	$(BIN)/pybabel -q compile -d translations

## Serve the product with demo data: web server on 127.0.0.1:$${PORT:-5000} plus the jobs process.
run: $(STAMP) $(CATALOGS)
	$(FLASK) db upgrade
	$(FLASK) demo seed
	$(FLASK) serve

## The whole suite: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set.
test: $(STAMP) $(CATALOGS) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Every benchmark, on SQLite and on PostgreSQL (BENCH_DATABASE_URL; each bench creates and drops
## its own database there), then docs/benchmarks.md rendered from their JSON figures by
## bench/report.py. A bench that misses a target goes on to the next (`-`): the report says which.
## BENCH_QUICK=1 runs small sizes to check the pipeline (those figures are not for the docs).
BENCH_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test
BENCH_ARGS ?= --database-url $(BENCH_DATABASE_URL)
BENCH_RESULTS_DIR ?= bench/results
BENCH_REPORT ?= docs/benchmarks.md
ifdef BENCH_QUICK
SEARCH_ARGS ?= --customers 3000 --queries 2 --repeat 2
CONSOLE_ARGS ?= --customers 3000 --repeat 2
INGEST_ARGS ?= --duration 3 --baseline-rows 10000
USAGE_ARGS ?= --sizes 1000 10000 --requests 30
CLOSE_ARGS ?= --subscriptions 300 --pdfs 5
PDF_ARGS ?= --count 6 --rounds 1
LOAD_ARGS ?= --duration 5 --clients 8 --subscriptions 20
endif
BENCH_RUN = BENCH_RESULTS_DIR=$(BENCH_RESULTS_DIR) $(BIN)/python

bench: $(STAMP) $(CATALOGS)
	rm -rf $(BENCH_RESULTS_DIR) && mkdir -p $(BENCH_RESULTS_DIR)
	-$(BENCH_RUN) bench/customer_search.py $(BENCH_ARGS) $(SEARCH_ARGS)
	-$(BENCH_RUN) bench/console_list.py $(BENCH_ARGS) $(CONSOLE_ARGS)
	-$(BENCH_RUN) bench/ingest.py $(BENCH_ARGS) $(INGEST_ARGS)
	-$(BENCH_RUN) bench/current_usage.py $(BENCH_ARGS) $(USAGE_ARGS)
	-$(BENCH_RUN) bench/period_close.py $(BENCH_ARGS) $(CLOSE_ARGS)
	-$(BENCH_RUN) bench/pdf_render.py $(PDF_ARGS)
	-$(BENCH_RUN) bench/load.py $(BENCH_ARGS) $(LOAD_ARGS)
	$(BIN)/python bench/report.py $(BENCH_RESULTS_DIR) --output $(BENCH_REPORT)

## Fault injection (not part of `make test`): SIGKILLed jobs process and web worker, PostgreSQL
## restarted under load (a throwaway cluster, never the shared server). FAULTS_DATABASE_URL adds
## the PostgreSQL variants of (a) and (b).
FAULTS_DATABASE_URL ?= $(BENCH_DATABASE_URL)
faults: $(STAMP) $(CATALOGS)
	FAULTS_DATABASE_URL=$(FAULTS_DATABASE_URL) $(BIN)/python -m pytest tests/faults -o addopts="-ra --strict-markers" -p no:cacheprovider -v -s $(PYTEST_ARGS)

screenshots: $(STAMP) $(CATALOGS)
	$(BIN)/python docs/screenshots.py
	$(BIN)/python docs/sample_invoice.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
