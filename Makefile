# `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app app
# Compiled gettext catalogs (PDFs, portal); the .po files are committed, the .mo files are built.
CATALOGS := $(patsubst %.po,%.mo,$(wildcard translations/*/LC_MESSAGES/messages.po))

.PHONY: run test install lint fmt bench screenshots translations clean

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

## Every benchmark; BENCH_ARGS="--database-url postgresql+psycopg://…" adds PostgreSQL.
bench: $(STAMP) $(CATALOGS)
	$(BIN)/python bench/customer_search.py $(BENCH_ARGS)
	$(BIN)/python bench/console_list.py $(BENCH_ARGS)
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)
	$(BIN)/python bench/current_usage.py $(BENCH_ARGS)
	$(BIN)/python bench/period_close.py $(BENCH_ARGS)
	$(BIN)/python bench/pdf_render.py

screenshots: $(STAMP) $(CATALOGS)
	$(BIN)/python docs/screenshots.py
	$(BIN)/python docs/sample_invoice.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
