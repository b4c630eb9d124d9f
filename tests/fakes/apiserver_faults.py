"""What the fake apiserver received, and what it should do wrong next.

``RequestLog`` records every request for assertions; ``FaultQueue`` holds the
faults a test scripts, each consumed by the next matching request(s). Both are
thread-safe: the server answers each connection on its own thread while the
test thread scripts and asserts. Only the meaning of the stream faults (cut a
watch after N events, expire it) is specific to the apiserver.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------

GO_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})  # Go's strconv.ParseBool


class Headers(Mapping[str, str]):
    """Request headers as sent; lookups ignore case, as HTTP does."""

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = {name.lower(): (name, value) for name, value in items}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


@dataclass
class RecordedRequest:
    """One request as the fake received it; ``status`` is filled in when it is answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: Headers
    body: bytes = b""
    status: int | None = None

    @property
    def watch(self) -> bool:
        return self.query.get("watch", "") in GO_TRUE

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class RequestMatch:
    """Which requests a fault (or a log query) is about; None matches anything.
    ``path`` is a regular expression searched in the request path."""

    method: str | None = None
    path: str | None = None
    watch: bool | None = None

    def matches(self, request: RecordedRequest) -> bool:
        return (
            (self.method is None or self.method.upper() == request.method)
            and (self.path is None or re.search(self.path, request.path) is not None)
            and (self.watch is None or self.watch == request.watch)
        )


class RequestLog:
    """Every request the fake received, in order (thread-safe)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._entries: list[RecordedRequest] = []

    def record(self, request: RecordedRequest) -> None:
        with self._cond:
            self._entries.append(request)
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[RecordedRequest]:
        with self._cond:
            return iter(list(self._entries))

    def matching(
        self, *, method: str | None = None, path: str | None = None, watch: bool | None = None
    ) -> list[RecordedRequest]:
        """The requests that match (see :class:`RequestMatch`)."""
        match = RequestMatch(method, path, watch)
        return [r for r in self if match.matches(r)]

    def count(self, **match: Any) -> int:
        return len(self.matching(**match))

    def wait_for(self, count: int, *, timeout: float = 2.0, **match: Any) -> list[RecordedRequest]:
        """Wait until ``count`` matching requests have arrived; returns them.

        Raises:
            TimeoutError: fewer arrived within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.matching(**match)) >= count, timeout):
                raise TimeoutError(f"{self.count(**match)} of {count} requests {match} arrived")
        return self.matching(**match)

    def clear(self) -> None:
        with self._cond:
            self._entries.clear()


class FaultKind(enum.Enum):
    STATUS = "status"  # answer with an error Status
    CUT_STREAM = "cut_stream"  # drop the watch connection after N events
    EXPIRE = "expire"  # end the watch with a 410 ERROR event after N events
    DELAY = "delay"  # wait, then answer normally
    STALL = "stall"  # answer nothing (a watch: headers, then nothing)
    EMPTY_200 = "empty_200"  # 200 with an empty body (a watch: a stream that ends at once)


STREAM_FAULTS = frozenset({FaultKind.CUT_STREAM, FaultKind.EXPIRE})


@dataclass
class Fault:
    """One scripted fault; ``times`` None means every matching request until cleared."""

    kind: FaultKind
    match: RequestMatch
    times: int | None = 1
    code: int = 0
    retry_after: int | None = None
    message: str | None = None
    after_events: int = 0
    mid_line: bool = True
    seconds: float | None = None
    fired: int = 0


class FaultScope:
    """Builds faults for the requests of one :class:`RequestMatch` (see :meth:`FaultQueue.where`)."""

    def __init__(self, queue: FaultQueue, match: RequestMatch) -> None:
        self._queue = queue
        self._match = match

    def status(
        self,
        code: int,
        *,
        retry_after: int | None = None,
        times: int | None = 1,
        message: str | None = None,
    ) -> Fault:
        """Answer with an error Status (429 also gets ``Retry-After`` if given; 403 the
        real "forbidden" message for the request's user)."""
        return self._add(
            Fault(
                FaultKind.STATUS,
                self._match,
                times,
                code=code,
                retry_after=retry_after,
                message=message,
            )
        )

    def cut_stream(
        self, *, after_events: int = 0, mid_line: bool = True, times: int | None = 1
    ) -> Fault:
        """Drop the watch connection after ``after_events`` events: in the middle of the
        next line (``mid_line``), or between lines."""
        watches = replace(self._match, watch=True)
        return self._add(
            Fault(
                FaultKind.CUT_STREAM, watches, times, after_events=after_events, mid_line=mid_line
            )
        )

    def expire(self, *, after_events: int = 0, times: int | None = 1) -> Fault:
        """End the watch with a 410 Expired ERROR event after ``after_events`` events."""
        watches = replace(self._match, watch=True)
        return self._add(Fault(FaultKind.EXPIRE, watches, times, after_events=after_events))

    def delay(self, seconds: float, *, times: int | None = 1) -> Fault:
        """Wait ``seconds`` before answering normally."""
        return self._add(Fault(FaultKind.DELAY, self._match, times, seconds=seconds))

    def stall(self, *, seconds: float | None = None, times: int | None = 1) -> Fault:
        """Send nothing for ``seconds`` (default: until the server stops). A watch gets
        its 200 headers first, then silence; other requests get no answer at all."""
        return self._add(Fault(FaultKind.STALL, self._match, times, seconds=seconds))

    def empty_200(self, *, times: int | None = 1) -> Fault:
        """Answer 200 with nothing: an empty body, or a watch stream that ends at once."""
        return self._add(Fault(FaultKind.EMPTY_200, self._match, times))

    def _add(self, fault: Fault) -> Fault:
        self._queue.push(fault)
        return fault


class FaultQueue(FaultScope):
    """Faults consumed, first match first, by the next matching resource requests.

    ``faults.status(429, retry_after=1)`` hits the next resource request;
    ``faults.where(path="/leases").status(500, times=3)`` the next three Lease
    requests. Discovery, /version and health checks never take faults.
    """

    def __init__(self) -> None:
        super().__init__(self, RequestMatch())
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self.fired: list[tuple[Fault, RecordedRequest]] = []

    def where(
        self, *, method: str | None = None, path: str | None = None, watch: bool | None = None
    ) -> FaultScope:
        return FaultScope(self, RequestMatch(method, path, watch))

    def push(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, request: RecordedRequest) -> Fault | None:
        """The first pending fault matching ``request``, counted as fired."""
        with self._lock:
            for fault in self._faults:
                if fault.match.matches(request):
                    fault.fired += 1
                    if fault.times is not None and fault.fired >= fault.times:
                        self._faults.remove(fault)
                    self.fired.append((fault, request))
                    logger.info(
                        "fake apiserver: fault %s on %s %s",
                        fault.kind.value,
                        request.method,
                        request.path,
                    )
                    return fault
        return None

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
