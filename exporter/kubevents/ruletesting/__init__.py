"""``kubevents rules test``: the runners of rule test files, product code of the CLI.

One module per kind of test file: ``classification.py`` (``classification_test``: one
Event, its category, severity and rule), ``patterns.py`` (``patterns_test``: a timeline,
the pattern and anomaly transitions) and ``correlation.py`` (``correlation_test``: a
timeline, the incidents). ``cases.py`` holds what they share: the file's frame, the
Event shorthand, timelines and the report.

May import: the core (``kubevents.enrich``, ``kubevents.model``, ``kubevents.conventions``,
``kubevents.errors``). Nothing here touches the network, a sink or a source; it reads
rule and test files only through ``enrich.rules``.
"""
