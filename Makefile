# kubevents — the README's commands. Every target installs what it needs,
# idempotently: a fresh clone needs only `make demo` and `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEMO   := tests/data/demo/events.jsonl

.PHONY: demo test lint bench install clean help prometheus

help:
	@echo "make demo   install and replay the bundled demo recording to the console"
	@echo "make test   install everything the tests need, then run the whole suite"
	@echo "make lint   ruff, mypy (strict) and the layering contract"
	@echo "make bench  benchmarks (not part of make test)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kubevents replay $(DEMO)

# Debian's prometheus package: promtool for the rule tests, and a real Prometheus that
# scrapes kubevents in tests/e2e/test_prometheus_scrape.py. Installed only when missing.
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends prometheus)

test: $(STAMP) prometheus
	$(BIN)/kubevents rules check
	$(BIN)/kubevents rules test rules/tests/*.yaml
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check exporter tests bench
	$(BIN)/ruff format --check exporter
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) build *.egg-info exporter/*.egg-info
