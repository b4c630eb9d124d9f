"""A minimal OTLP/gRPC logs receiver that acknowledges everything, in its own process.

Run as ``python -m bench.receiver [--latency]``. It prints ``PORT <n>`` on
stdout, then answers one command per stdin line:

* ``count``: prints ``COUNT <records> <event records> <requests> <occurrences>``
  (occurrences: the sum of ``kubevents.occurrences`` over k8s.event records);
* ``wait <n> <timeout_s>``: waits until ``n`` occurrences arrived, then
  prints ``COUNT ...`` (or the count at the timeout);
* ``dump <path>``: (``--latency``) writes ``uid arrival_ns`` lines of every
  k8s.event record, then prints ``OK``;
* ``reset``: forgets everything, prints ``OK``;
* ``quit``.

A separate process, so the receiver's work (protobuf decoding, gRPC server
threads) does not share kubevents' interpreter lock.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc


class Receiver(logs_service_pb2_grpc.LogsServiceServicer):
    """Acknowledges each request at once; a worker thread counts what it holds afterwards,
    so the time a call takes is the transport's, as with a Collector that queues."""

    def __init__(self, latency: bool) -> None:
        self.latency = latency
        self.cond = threading.Condition()
        self.records = 0
        self.events = 0
        self.requests = 0
        self.occurrences = 0
        self.arrivals: list[tuple[str, int]] = []
        self.inbox: queue.SimpleQueue[tuple[logs_service_pb2.ExportLogsServiceRequest, int]] = queue.SimpleQueue()
        threading.Thread(target=self._count, daemon=True).start()

    def Export(self, request: logs_service_pb2.ExportLogsServiceRequest, context: object) -> object:
        self.inbox.put((request, time.time_ns()))
        return logs_service_pb2.ExportLogsServiceResponse()

    def _count(self) -> None:
        while True:
            request, now = self.inbox.get()
            records = events = occurrences = 0
            arrivals = []
            for rl in request.resource_logs:
                for sl in rl.scope_logs:
                    for log in sl.log_records:
                        records += 1
                        if log.event_name != "k8s.event":
                            continue
                        events += 1
                        attrs = {kv.key: kv.value for kv in log.attributes}
                        occ = attrs.get("kubevents.occurrences")
                        occurrences += occ.int_value if occ is not None else 1
                        if self.latency and "k8s.event.uid" in attrs:
                            count = attrs["k8s.event.count"].int_value if "k8s.event.count" in attrs else 1
                            arrivals.append((f"{attrs['k8s.event.uid'].string_value}/{count}", now))
            with self.cond:
                self.records += records
                self.events += events
                self.occurrences += occurrences
                self.requests += 1
                self.arrivals.extend(arrivals)
                self.cond.notify_all()

    def status(self) -> str:
        return f"COUNT {self.records} {self.events} {self.requests} {self.occurrences}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--cpus", default="")
    args = parser.parse_args()
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    receiver = Receiver(args.latency)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)],
    )
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(receiver, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "count":
            print(receiver.status(), flush=True)
        elif cmd == "wait":
            want, timeout = int(rest[0]), float(rest[1])
            deadline = time.monotonic() + timeout
            with receiver.cond:
                while receiver.occurrences < want and time.monotonic() < deadline:
                    receiver.cond.wait(min(0.05, max(deadline - time.monotonic(), 0.0)))
            print(receiver.status(), flush=True)
        elif cmd == "dump":
            with receiver.cond:
                arrivals = list(receiver.arrivals)
            with open(rest[0], "w") as f:
                f.writelines(f"{key} {t}\n" for key, t in arrivals)
            print("OK", flush=True)
        elif cmd == "reset":
            with receiver.cond:
                receiver.records = receiver.events = receiver.requests = receiver.occurrences = 0
                receiver.arrivals.clear()
            print("OK", flush=True)
        elif cmd == "quit":
            break
    server.stop(grace=None)


if __name__ == "__main__":
    main()
