# Two commands matter: `make dev` runs the platform, `make test` runs lint, types and the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: dev test lint pytest setup postgres chromium redis bench

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/.installed

dev: setup  ## Temporal dev server + UI, migrations, worker and API on SQLite
	$(BIN)/bas dev

# The tests start their own PostgreSQL from the machine's server binaries; install them if missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
	  (echo "installing PostgreSQL server binaries (apt)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null)

# Browser tests drive the machine's Chromium through Playwright (never `playwright install`).
chromium:
	@command -v chromium >/dev/null 2>&1 || \
	  (echo "installing Chromium (apt)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The scale-out test (tests/scale) starts its own Redis for the rate limits several API processes share.
redis:
	@command -v redis-server >/dev/null 2>&1 || \
	  (echo "installing Redis server (apt)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

pytest: setup postgres chromium redis
	$(BIN)/pytest

test: lint pytest  ## everything CI runs

# `make bench` runs every benchmark (about 15 minutes on 2 cores); `make bench BENCH="read_paths --quick"` a few.
bench: setup postgres  ## print benchmark figures and write bench/results/*.json; not tests
	$(BIN)/python -m bench $(BENCH)

