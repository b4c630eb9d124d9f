"""Sinks: where output records go. One module per sink, registered in ``registry.py``."""
