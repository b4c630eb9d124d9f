# kubevents — the README's commands. Every target installs what it needs,
# idempotently: a fresh clone needs only `make demo` and `make test`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
DEMO   := tests/data/demo/events.jsonl

.PHONY: demo test lint bench accuracy install compiled wheel cc clean help prometheus chromium dashboards servers tools chaos prototype-encode

help:
	@echo "make demo   install and replay the bundled demo recording to the console"
	@echo "make test   install everything the tests need, then run the whole suite"
	@echo "make lint   ruff, mypy (strict) and the layering contract"
	@echo "make bench  benchmarks (not part of make test)"
	@echo "make wheel  the compiled manylinux wheel and the pure-Python sdist, in .build/wheels"
	@echo "make accuracy  score the incidents on the real-event corpus (tests/data/real)"
	@echo "make dashboards  regenerate grafana/dashboards/*.json from grafana/*.py"
	@echo "make chaos  the long fault suite (about 20 min); rewrites docs/reliability.md"
	@echo "make prototype-encode  the OTLP encode stage as a Rust prototype, timed against ours (needs cargo)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# The compiled build (setup.py): the hot path compiled with mypyc, as the container image
# ships it. `make bench` measures it and `make test` runs the unit and replay tests on it
# too. Rebuilt when any source changes; the editable install stays pure Python.
COMPILED := .build/compiled
SOURCES  := $(shell find exporter/kubevents -name '*.py')
# It is the wheel pip users get (make wheel): the compiled build as a manylinux wheel
# (auditwheel checks it links nothing the manylinux policy forbids), and the sdist, which
# installs pure Python wherever no wheel fits. tests/deploy/test_wheels.py installs both.
WHEELS := .build/wheels
$(WHEELS)/.built: setup.py pyproject.toml $(SOURCES) | $(STAMP) cc
	rm -rf $(WHEELS) .build/wheel-raw build
	KUBEVENTS_COMPILE=1 $(BIN)/pip wheel -q --no-deps --no-build-isolation -w .build/wheel-raw .
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/auditwheel repair -w $(WHEELS) .build/wheel-raw/kubevents-*.whl
	$(BIN)/python -m build -q --sdist --no-isolation -o $(WHEELS) .
	touch $@
wheel: $(WHEELS)/.built
$(COMPILED)/.built: $(WHEELS)/.built
	rm -rf $(COMPILED)
	$(BIN)/pip install -q --no-deps --target $(COMPILED) $(WHEELS)/kubevents-*manylinux*.whl
	touch $@
compiled: $(COMPILED)/.built
ON_COMPILED := PYTHONPATH=$(COMPILED) KUBEVENTS_RULES_DIR=$(CURDIR)/rules

# A C compiler for the compiled build, from Debian, installed only when missing.
cc:
	@command -v cc >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev)

demo: $(STAMP)
	$(BIN)/kubevents replay $(DEMO)

# Debian's prometheus package: promtool for the rule tests, and a real Prometheus that
# scrapes kubevents in tests/e2e/test_prometheus_scrape.py. Installed only when missing.
prometheus:
	@command -v prometheus >/dev/null && command -v promtool >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends prometheus)

# Debian's chromium package: the report tests (tests/e2e/test_report_browser.py) and the
# report benchmark open the generated page in a real headless Chromium. Installed only
# when missing.
chromium:
	@command -v chromium >/dev/null || \
		(apt-get update && apt-get install -y --no-install-recommends chromium)

# Grafana's LogQL grammar (@grafana/lezer-logql, pinned in the lock file): the dashboards'
# and Loki rules' LogQL is parsed by it in the tests.
LOGQL := tests/tools/logql/node_modules/.package-lock.json
$(LOGQL): tests/tools/logql/package.json tests/tools/logql/package-lock.json
	npm ci --prefix tests/tools/logql --no-audit --no-fund

# Real servers (etcd, kube-apiserver, otelcol, victorialogs; the tests and make bench) and deploy tools (kustomize, compose and
# CRD checkers) built from their pinned Go modules into ~/.cache/kubevents; a second run only
# checks the cache. Without Go each prints one line naming what to install, and the suites
# that do not need them still run.
servers:
	-tests/servers/build.sh
tools:
	-tests/deploy/build.sh

test: $(STAMP) prometheus chromium $(LOGQL) servers tools compiled
	$(BIN)/kubevents rules check
	$(BIN)/kubevents rules test rules/tests/*.yaml rules/packs/tests/*.yaml
	promtool check rules rules/alerts/kubevents.rules.yaml
	cd rules/alerts/tests && promtool test rules *.yaml
	$(ON_COMPILED) TESTS_EXPECT_COMPILED=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit tests/e2e/test_golden_demo.py tests/e2e/test_replay_cli.py tests/e2e/test_scenarios.py tests/e2e/test_sinks_otlp.py
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check exporter tests bench grafana deploy
	$(BIN)/ruff format --check exporter
	$(BIN)/mypy
	$(BIN)/lint-imports

dashboards: $(STAMP)
	$(BIN)/python -m grafana.generate

chaos: $(STAMP) servers
	$(BIN)/python tests/faults/regenerate.py

bench: compiled chromium servers
	$(ON_COMPILED) $(BIN)/python -m bench

# Not part of test or bench: the OTLP encode stage as a Rust extension, built with maturin
# and timed against the Python encoder (bench/prototypes/README.md).
prototype-encode: compiled
	$(BIN)/pip install -q 'maturin>=1.16,<2'
	cd bench/prototypes/otlp_encode_rs && $(CURDIR)/$(BIN)/maturin build --release -q -i $(CURDIR)/$(BIN)/python -o $(CURDIR)/.build/prototypes
	$(BIN)/pip install -q --force-reinstall $(CURDIR)/.build/prototypes/kubevents_encode_proto-*.whl
	$(ON_COMPILED) $(BIN)/python -m bench.prototypes.measure_encode

# The incidents kubevents finds on the real-event corpus, per file, per incident and in
# total (tests/support/accuracy.py); tests/e2e/test_accuracy.py guards the totals.
accuracy: $(STAMP)
	$(BIN)/python -m tests.support.accuracy $(ACCURACY_ARGS)

clean:
	rm -rf $(VENV) .build build *.egg-info exporter/*.egg-info
