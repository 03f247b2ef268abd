# The two set-up commands: `make test` and `make demo`. Both create .venv when it is missing.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: test test-fast demo demo-run lint schema help

help:
	@echo "make test   - create .venv if missing, install requirements, run the whole test suite"
	@echo "make demo   - run the whole pipeline on the embedded default (SQLite, lexicon scorer)"
	@echo "make lint   - ruff and mypy (CI runs both)"
	@echo "make schema - regenerate sql/schema.sql from weibo_mh/db.py"

$(STAMP): requirements.txt requirements-dev.txt requirements-encoder.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps -r requirements-encoder.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -ra $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -ra -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/python -m weibo_mh.db ddl > sql/schema.sql

DEMO_CONFIG ?= configs/demo.toml
DEMO_PORT   ?= 8765
DEMO_LOG    ?= data/demo-site.log
DEMO_REPORT ?= reports/demo

# The whole pipeline on the embedded default: local demo site -> real scheduler and spider
# -> SQLite (data/demo.db) -> lexicon worker -> analysis report in reports/demo/.
demo: $(STAMP)
	@$(MAKE) --no-print-directory demo-run

# The demo's steps without the install (tests/e2e runs this with its own config and port).
demo-run:
	@set -e; mkdir -p data reports; \
	export WEIBO_MH_CONFIG=$(DEMO_CONFIG) HF_HUB_OFFLINE=1; \
	echo "== 1/6 starting the local demo site on 127.0.0.1:$(DEMO_PORT)"; \
	$(BIN)/python -c "import socket as k; s=k.socket(); s.setsockopt(k.SOL_SOCKET, k.SO_REUSEADDR, 1); s.bind(('127.0.0.1', $(DEMO_PORT)))" 2>/dev/null \
	  || { echo "port $(DEMO_PORT) is in use: stop what listens there, or run 'make demo DEMO_PORT=N' with a config pointing at N" >&2; exit 1; }; \
	$(BIN)/python -m weibo.localsite --corpus demo --host 127.0.0.1 --port $(DEMO_PORT) > $(DEMO_LOG) 2>&1 & \
	site=$$!; trap 'kill $$site 2>/dev/null; wait $$site 2>/dev/null || true' EXIT INT TERM; \
	for i in $$(seq 1 50); do \
	  $(BIN)/python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$(DEMO_PORT)/ajax/side/hotSearch', timeout=1)" 2>/dev/null && break; \
	  kill -0 $$site 2>/dev/null || { echo "demo site failed to start (port $(DEMO_PORT) in use?); see $(DEMO_LOG)" >&2; exit 1; }; \
	  sleep 0.2; \
	done; \
	echo "== 2/6 creating or upgrading the database"; \
	$(BIN)/python -m weibo_mh.db migrate --config $(DEMO_CONFIG); \
	echo "== 3/6 one crawl through the real scheduler (--once)"; \
	$(BIN)/python Weibo_Spider/default_schedule.py --config $(DEMO_CONFIG) --once; \
	echo "== 4/6 storing the demo's own labels (human:demo) and its earlier hot-search snapshots"; \
	$(BIN)/python -m weibo.localsite.demo_corpus label --config $(DEMO_CONFIG); \
	echo "== 5/6 scoring every pending comment with the lexicon scorer"; \
	$(BIN)/python -m llm_worker --config $(DEMO_CONFIG) --backend lexicon --once; \
	echo "== 6/6 writing the analysis report"; \
	$(BIN)/python -m analysis.report --config $(DEMO_CONFIG) --out $(DEMO_REPORT); \
	$(BIN)/python -m weibo_mh.db status --config $(DEMO_CONFIG); \
	echo; \
	echo "Done. Open $(DEMO_REPORT)/index.html (charts, alert table, counts)."; \
	echo "Run 'make demo' again to re-crawl: nothing is duplicated, nothing is scored twice."
