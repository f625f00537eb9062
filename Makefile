# `make run` and `make test` do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app app

.PHONY: run test install lint fmt bench screenshots clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## Serve the product with demo data: web server on 127.0.0.1:$${PORT:-5000} plus the jobs process.
run: $(STAMP)
	$(FLASK) db upgrade
	$(FLASK) demo seed
	$(FLASK) serve

## The whole suite: SQLite always, PostgreSQL too when TEST_DATABASE_URL is set.
test: $(STAMP) lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Every benchmark; BENCH_ARGS="--database-url postgresql+psycopg://…" adds PostgreSQL.
bench: $(STAMP)
	$(BIN)/python bench/customer_search.py $(BENCH_ARGS)
	$(BIN)/python bench/console_list.py $(BENCH_ARGS)
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)
	$(BIN)/python bench/current_usage.py $(BENCH_ARGS)

screenshots: $(STAMP)
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
