"""Optional compiled build: ``KUBEVENTS_COMPILE=1`` compiles the per-Event hot path
with mypyc (part of mypy), as black and mypy ship themselves.

The modules stay plain, type-checked Python; mypyc turns them into C extensions
that run the same code about 1.5x as fast (docs/performance.md). Everything else
in pyproject.toml; without the variable the package is pure Python, which is what
an editable install (``make install``) and the test suite's first pass use. The
container image and ``make compiled`` (the bench, the tests' second pass) build
with it.
"""

from __future__ import annotations

import os

from setuptools import setup

HOT_PATH = [
    "exporter/kubevents/model.py",
    "exporter/kubevents/normalize.py",
    "exporter/kubevents/series.py",
    "exporter/kubevents/records.py",
    "exporter/kubevents/enrich/classify.py",
    "exporter/kubevents/enrich/owners.py",
    "exporter/kubevents/enrich/sharing.py",
    "exporter/kubevents/enrich/links.py",
    "exporter/kubevents/enrich/incidents.py",
    "exporter/kubevents/enrich/correlate.py",
    "exporter/kubevents/enrich/templates.py",
    "exporter/kubevents/enrich/pattern_rules.py",
    "exporter/kubevents/enrich/patterns.py",
    "exporter/kubevents/enrich/anomaly.py",
    "exporter/kubevents/telemetry/counting.py",
    "exporter/kubevents/sinks/limits.py",
    "exporter/kubevents/sinks/otlp_encode.py",
    "exporter/kubevents/pipeline.py",
    "exporter/kubevents/source/dumplines.py",
]
"""What every Event goes through, parse to encoded request (and nothing with I/O)."""

ext_modules = []
if os.environ.get("KUBEVENTS_COMPILE") == "1":
    from mypyc.build import mypycify

    ext_modules = mypycify(HOT_PATH, opt_level="3")

setup(ext_modules=ext_modules)
