# The two commands of the README: `make demo` and `make test`.
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
# make demo HOST=0.0.0.0 PORT=8001
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test test-sqlite test-postgres lint browser bench-tools migration

$(BIN)/countersign: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/countersign

demo: install
	$(BIN)/countersign demo --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check -q src tests bench scripts
	$(BIN)/mypy

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

# Optional: wrk (Debian's package) for bench/lifecycle_wrk.py; nothing else needs it.
bench-tools:
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null)

test-sqlite: install browser
	$(BIN)/pytest -q

# The browser tests drive the admin center, not the database: they run once, on SQLite.
test-postgres: install
	COUNTERSIGN_TEST_DATABASE_URL=$(PG_URL) $(BIN)/pytest -q -m "not e2e"

test: lint test-sqlite test-postgres

# After changing src/countersign/store/tables.py: rewrite the initial migration from the models.
migration: install
	$(BIN)/python scripts/regenerate-migration.py
	$(BIN)/ruff format -q src/countersign/store/migrations/versions
	$(BIN)/ruff check -q --fix src/countersign/store/migrations/versions || true
