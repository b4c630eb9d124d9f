"""The pure core: classification, correlation and pattern stages.

What lives here: the rule files' reader and their compiled forms (``rules.py``,
``classify.py``, ``correlation_rules.py``, ``pattern_rules.py``), the stages that enrich
an Event (``classify``, ``owners``, ``links``, ``correlate`` and ``incidents``,
``patterns``, ``anomaly``, ``templates``) and the counts they keep (``counting.py``).

May import: ``kubevents.model``, ``kubevents.conventions``, ``kubevents.errors``,
``kubevents.safeload`` and the standard library's pure modules. Nothing in this package
touches the network or reads the wall clock; no network, telemetry or concurrency module
is imported (``.importlinter``: pure-core; three stages hold a lock, named there).
"""
