"""The real OpenTelemetry Collector (otelcol, Go) as the benchmarks' OTLP receiver.

``tests/servers/build.sh`` builds it from its pinned modules into
``~/.cache/kubevents`` (``make servers``); without it the collector cases are
left out with one line. The configuration is the least a Collector does with
logs: the OTLP receiver on loopback (gRPC, and HTTP), no processor, the ``debug``
exporter at ``basic`` verbosity (one line per request, nothing per record);
metrics (kubevents' OTLP metrics export) go the same way.
A request is acknowledged once the pipeline took it, as a Collector without
a queue does; the count of accepted records comes from the Collector's own
Prometheus telemetry (``otelcol_receiver_accepted_log_records``).

The process runs on the helper cores, like the Python receiver, so its work
does not share the measured core.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.procs import ROOT, helper_cpus

CONFIG = """\
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
        max_recv_msg_size_mib: 64
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    logs:
      level: warn
    metrics:
      level: basic
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {metrics}
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      exporters: [debug]
"""
_ACCEPTED = re.compile(r'^otelcol_receiver_accepted_log_records\{[^}]*\} (\S+)$', re.M)


def binary() -> Path | None:
    """The built otelcol, or None when ``make servers`` has not built it."""
    try:
        out = subprocess.run([str(ROOT / "tests" / "servers" / "build.sh"), "--path", "otelcol"],
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(out.splitlines()[-1]) if out else None
    return path if path is not None and path.is_file() else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Collector:
    """otelcol with the configuration above; ``endpoint`` for kubevents' OTLP sink."""

    def __init__(self, path: Path) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="kubevents-otelcol-")
        self.grpc_port, self.http_port, self.metrics_port = _free_port(), _free_port(), _free_port()
        config = Path(self._dir.name) / "config.yaml"
        config.write_text(CONFIG.format(grpc=self.grpc_port, http=self.http_port, metrics=self.metrics_port))
        cpus = helper_cpus()
        self.proc = subprocess.Popen(
            [str(path), f"--config={config}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=lambda: os.sched_setaffinity(0, cpus),
        )
        self.endpoint = f"http://127.0.0.1:{self.grpc_port}"
        self.http_endpoint = f"http://127.0.0.1:{self.http_port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"otelcol did not start ({path})") from None
                time.sleep(0.1)

    def accepted(self) -> int:
        """Log records the Collector's receiver accepted so far (0 before the first)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return int(sum(float(v) for v in _ACCEPTED.findall(text)))

    def wait_records(self, n: int, timeout_s: float) -> int:
        """Wait until ``n`` records were accepted in all; returns how many were."""
        deadline = time.monotonic() + timeout_s
        while (got := self.accepted()) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return got

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._dir.cleanup()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
