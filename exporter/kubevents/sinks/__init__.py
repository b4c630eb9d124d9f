"""Sinks: where output records go. One module per sink, registered in ``registry.py``.

What lives here: the sink protocol (``base.py``), the local sinks (``console``,
``jsonl``), the encoders (``otlp_encode``, ``loki_encode``, ``loki_proto``: records in,
bytes out), the transports (``otlp_grpc``, ``otlp_http``, ``loki_push``, behind
``transport.py``), the delivery around a transport (``delivery``, ``retry``, ``spool``,
``limits``) and the sink options (``otlp_options``).

May import: ``kubevents.records`` and what is below it (``model``, ``conventions``,
``errors``), ``kubevents.settings`` for its settings, ``kubevents.safeload``; never a
source or the pipeline (``.importlinter``: layers). The encoders never import a
transport or a network library (``.importlinter``: sink-encoders).
"""
