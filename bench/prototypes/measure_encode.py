"""Time the OTLP encode stage three ways on the bench mix, in one process, alternated.

    python -m bench.prototypes.measure_encode   (see bench/prototypes/README.md)

* ``wire``: ``encode_logs_wire``, what the OTLP transports send (mypyc-compiled
  in the compiled build);
* ``message``: ``encode_logs(...).SerializeToString()``, what ``make bench``'s
  encode stage timed until now (the bytes parsed into a message and written again);
* ``native``: the Rust prototype ``kubevents_encode_proto.encode_logs_bytes``.

Limits (``limit_record``) are applied beforehand and not timed: they are the same
for all three. Every batch's native bytes are checked equal to ``wire``'s.
"""

from __future__ import annotations

import statistics
import time

import kubevents_encode_proto as native

from bench import mix as mixmod
from bench.throughput import BATCH, RESOURCE, prepare
from kubevents import __version__
from kubevents.settings import Settings
from kubevents.sinks.limits import limit_record
from kubevents.sinks.otlp_encode import SCOPE_NAME, encode_logs, encode_logs_wire


def main() -> None:
    lines = mixmod.watch_lines(mixmod.EventMix(objects=20_000, lines=30_000).generate())
    records = prepare(lines).records
    limits = Settings().delivery
    clean = [
        limit_record(
            r, max_body_bytes=limits.max_body_bytes, max_attribute_bytes=limits.max_attribute_bytes
        )
        for r in records
    ]
    batches = [clean[s : s + BATCH] for s in range(0, len(clean), BATCH)]
    for batch in batches:
        ours = encode_logs_wire(batch, RESOURCE)
        theirs = native.encode_logs_bytes(batch, RESOURCE.attributes, SCOPE_NAME, __version__)
        assert ours == theirs, "native bytes differ"
    ways = {
        "wire": lambda b: encode_logs_wire(b, RESOURCE),
        "message": lambda b: encode_logs(b, RESOURCE).SerializeToString(),
        "native": lambda b: native.encode_logs_bytes(
            b, RESOURCE.attributes, SCOPE_NAME, __version__
        ),
    }
    runs: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(5):
        for name, fn in ways.items():
            start = time.perf_counter()
            for batch in batches:
                fn(batch)
            runs[name].append((time.perf_counter() - start) / len(clean) * 1e6)
    med = {name: statistics.median(v) for name, v in runs.items()}
    print(f"{len(clean)} records in {len(batches)} batches of {BATCH}; bytes identical: yes")
    for name, value in med.items():
        print(f"{name:8} {value:6.2f} µs/record  runs {[round(v, 2) for v in runs[name]]}")
    print(
        f"native vs wire: {med['wire'] / med['native']:.1f}x faster; wire vs message: {med['message'] / med['wire']:.2f}x"
    )


if __name__ == "__main__":
    main()
