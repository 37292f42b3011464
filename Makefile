.DEFAULT_GOAL := help
.PHONY: help install system-deps run check fmt messages docs test test-js test-fast test-postgres test-versions bench bench-start bench-weight bench-load bench-memory bench-health bench-chaos clean

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/pip install --quiet -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import webcall_widget, django, channels, playwright, psycopg, xdist"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the app with its test and dev tools

system-deps: ## Install the Debian packages the tests use (Chromium, espeak-ng, sox, Redis, PostgreSQL)
	scripts/install-system-deps

run: install ## Serve the demo site with the sandbox agent at http://127.0.0.1:8000
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# TypeScript checks the widget's JavaScript as it ships and Prettier formats it (and its CSS);
# js/ holds the tools, never shipped.
JS_STAMP := js/node_modules/.installed-stamp

$(JS_STAMP): js/package.json js/package-lock.json
	command -v npm >/dev/null || scripts/install-system-deps
	cd js && npm ci --no-audit --no-fund
	touch $(JS_STAMP)

check: install $(JS_STAMP) ## Lint, check formatting and types (Python and the widget's JavaScript)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd js && npx --no-install tsc -p tsconfig.json
	cd js && npm run --silent format:check

fmt: install $(JS_STAMP) ## Format and fix what ruff can; format the widget's JavaScript and CSS
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
	cd js && npm run --silent format

messages: install ## Update and compile the translation catalogs (needs GNU gettext)
	command -v msgfmt >/dev/null || (apt-get update -qq && apt-get install -y -qq gettext)
	cd webcall_widget && ../$(BIN)/django-admin makemessages -l fr -l ar --settings=tests.settings --pythonpath=..
	cd webcall_widget && ../$(BIN)/django-admin compilemessages --settings=tests.settings --pythonpath=..

# The documentation site (Sphinx, MyST, furo): warnings, broken internal links and missing
# anchors fail it (-W -n), and so does a settings reference that differs from conf.SCHEMA.
docs: install ## Build the documentation site into docs/_build/html (warnings fail it)
	$(BIN)/python -m docs.settings_reference --check
	$(BIN)/sphinx-build -q -W -n --keep-going -b html -d docs/_build/doctrees docs docs/_build/html

# Most of the suite waits on sockets and servers, so it runs on 4 workers (a module whose
# tests share servers stays on one: xdist_group); the browser tests, whose audio timing is
# part of what they check, run on their own afterwards.
PARALLEL := -n 4 --dist loadgroup
# The first run also measures the app's coverage and fails below [tool.coverage.report]
# fail_under in pyproject.toml.
COVERAGE := --cov --cov-report=term-missing:skip-covered

# The chaos tests bring their own PostgreSQL whatever WEBCALL_TEST_DB says: they run once,
# on their own after the PostgreSQL run (their two workers, nginx, Redis, PostgreSQL and up
# to 40 visitors take this machine's two cores; beside three other test workers their
# bounds would measure the machine).
test: install system-deps check docs test-js ## Run everything CI runs: checks, the docs, the widget's unit tests, the suite on SQLite and on PostgreSQL, the chaos tests, the browser tests on PostgreSQL, the version matrix
	WEBCALL_TEST_DB=sqlite $(BIN)/pytest $(PARALLEL) -m "not browser and not chaos" $(COVERAGE)
	WEBCALL_TEST_DB=postgres $(BIN)/pytest $(PARALLEL) -m "not browser and not chaos"
	WEBCALL_TEST_DB=postgres $(BIN)/pytest -m "chaos and not browser"
	WEBCALL_TEST_DB=postgres $(BIN)/pytest -m browser
	$(MAKE) --no-print-directory test-versions

# The version matrix (noxfile.py): the fast suite on Python 3.13 with Django 6.1, and on the
# lowest version of every direct dependency; virtualenvs made by uv, kept in .nox/, and
# installed again only when pyproject.toml changes. The two sessions run side by side (their
# tests mostly wait), each one's output printed whole when it ends.
NOX_SESSIONS := django61 lowest

test-versions: install ## The fast suite on Django 6.1 (Python 3.13) and on the lowest dependencies
	$(MAKE) --no-print-directory -j2 --output-sync=target $(addprefix nox-,$(NOX_SESSIONS))

nox-%: install
	NOX_WORKERS=$${NOX_WORKERS:-4} $(BIN)/nox -s $*

# The Connection's state machine on a fake socket and virtual time (js/test/); Node runs the
# widget's modules as they ship.
test-js: ## Unit-test the widget's JavaScript (node --test, Node 20.11 or later)
	cd js && npm run --silent test

test-fast: install ## The edit loop: the suite on SQLite without the browser and slow tests
	WEBCALL_TEST_DB=sqlite $(BIN)/pytest $(PARALLEL) -m "not browser and not slow"

test-postgres: install system-deps ## The whole test suite on PostgreSQL only
	WEBCALL_TEST_DB=postgres $(BIN)/pytest $(PARALLEL) -m "not browser"
	WEBCALL_TEST_DB=postgres $(BIN)/pytest -m browser

bench: install ## Print relay throughput and latency against a direct connection
	$(BIN)/python benchmarks/relay_throughput.py

bench-start: install ## How long a call takes to start, stage by stage: Daphne, Uvicorn, 0 and 100 ms RTT
	$(BIN)/python benchmarks/start.py

bench-weight: install ## Bytes a page view and a first open of the widget download (gzipped)
	$(BIN)/python benchmarks/page_weight.py

bench-load: install system-deps ## Many concurrent voice calls: direct, nginx, Daphne, Uvicorn, 2 workers
	$(BIN)/python benchmarks/load.py

bench-memory: install ## Where an idle call's memory goes: one relay, 200 idle calls, tracemalloc by file and line
	$(BIN)/python benchmarks/memory.py

bench-health: install system-deps ## What /health/ready costs: requests/s, p99, and the CPU of 3 probes polling it
	$(BIN)/python benchmarks/health.py

bench-chaos: install system-deps ## A worker killed, a rolling restart, under 20 calls: audio gap, time to resume, time to free a line
	$(BIN)/python benchmarks/chaos.py

clean: ## Remove the virtualenv, the demo database and caches
	rm -rf $(VENV) demo.sqlite3* staticfiles tests/.artifacts .mypy_cache .ruff_cache docs/_build .nox
