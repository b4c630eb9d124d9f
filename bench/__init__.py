"""Benchmarks (``make bench``): speed and memory of the pipeline, not run by ``make test``."""
