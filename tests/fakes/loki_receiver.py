"""A protocol-faithful fake of Loki's push API, for protocol tests of the direct Loki sink.

Why a real server: the Loki sink posts with ``requests``; a mock would only
test our beliefs about Loki. This fake speaks HTTP on ``127.0.0.1:0``, decodes
what the client really sends, and answers the way Loki's distributor and
ingester do, including the validation limits a real Loki enforces and the
faults it cannot produce on demand (STYLE point 22).

Shape::

    FakeLoki
      ├─ HTTP     HttpListener (127.0.0.1:0) -> _LokiHandler
      │             POST /loki/api/v1/push   application/json (gzip/deflate allowed), or
      │                                      anything else: protobuf PushRequest, raw-block snappy
      │             GET  /ready, /loki/api/v1/labels
      ├─ limits   LokiLimits: Loki's defaults, replaceable per test
      ├─ faults   LokiFaults: 429 (Retry-After) / 500 / 503 for the next N pushes
      ├─ delay    seconds each push waits before it is answered
      ├─ now_ns   the clock that "too old" / "too new" are measured against
      └─ pushes   ReceivedPush per request; entries(): what a query would return

One push: fault? -> tenant (``X-Scope-OrgID``; "fake" unless ``auth_enabled``,
then 401 "no org id") -> decode (400 with the reason) -> the distributor's
validation, per stream (labels) and per entry (age, future, line size,
structured metadata) -> the ingester's order window per stream ("entry too far
behind" the stream's newest entry) -> store the valid entries -> 204, or 400
whose plain-text body lists every rejection. As in Loki, the valid entries of
a push that gets a 400 are stored all the same, so a client must not retry a
400. Entries out of order inside the window are accepted (Loki 3's unordered
writes). An entry identical (timestamp and line) to one the stream holds is
dropped silently: Loki's head block does that, and queries return it once.

Sources (grafana/loki): the messages are those of ``pkg/validation/validate.go``,
``pkg/distributor/validator.go``, ``pkg/chunkenc`` (ErrTooFarBehind) and
``pkg/ingester/stream.go``; the body formats are in
``docs/sources/reference/loki-http-api.md`` and ``pkg/loghttp/push/push.go``;
the defaults in ``docs/sources/shared/configuration.md`` (note that Loki reads
``256KB`` as 256,000 bytes: go-humanize's KB is 1000). Simplifications: the
text after "with error:" for unparsable labels is this fake's own; when the
distributor and the ingester both reject entries, Loki answers only the
ingester's error, this fake lists both; rate limits are faults, not computed.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import cramjam
from google.protobuf.message import DecodeError

from kubevents.sinks.loki_proto import PushRequest

from .apiserver_faults import Headers
from .otlp_receiver import (
    FakeHttpHandler,
    HttpListener,
    ScriptedFaults,
    UnsupportedEncoding,
    decode_content,
)

logger = logging.getLogger(__name__)

PUSH_PATH = "/loki/api/v1/push"
LABELS_PATH = "/loki/api/v1/labels"
READY_PATH = "/ready"
SINGLE_TENANT = "fake"  # the tenant of every push when auth is disabled (Loki's default)
SERVICE_NAME = "service_name"  # not counted against max_label_names_per_series

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_LABEL_PAIR = re.compile(r'\s*([^\s=,{}"]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*')
_NOT_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_GO_ESCAPE = r"""\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|[abfnrtv\\"'])"""
_GO_QUOTED = re.compile(rf'(?:[^"\\]|{_GO_ESCAPE})*')
_SIMPLE_ESCAPES = MappingProxyType(
    {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
)


@dataclass(frozen=True)
class LokiLimits:
    """The limits the fake enforces; each default is Loki's (``limits_config``)."""

    max_label_names_per_series: int = 15
    max_label_name_length: int = 1024
    max_label_value_length: int = 2048
    max_line_size: int = 256_000
    """Bytes; Loki's ``256KB`` (KB = 1000). 0 disables the check, as in Loki."""
    max_structured_metadata_size: int = 64_000
    """Bytes of names plus values per entry; Loki's ``64KB``."""
    max_structured_metadata_entries_count: int = 128
    reject_old_samples: bool = True
    reject_old_samples_max_age: float = 7 * 24 * 3600.0
    """Seconds before ``now_ns`` an entry may be (Loki: ``1w``)."""
    creation_grace_period: float = 600.0
    """Seconds after ``now_ns`` an entry may be (Loki: ``10m``)."""
    out_of_order_window: float = 3600.0
    """Seconds an entry may be behind its stream's newest (the ingester's max_chunk_age 2h / 2)."""
    auth_enabled: bool = False
    """Require ``X-Scope-OrgID`` (401 "no org id" without it), as ``auth_enabled: true``."""


@dataclass(frozen=True)
class LokiEntry:
    """One stored log line. Structured metadata names are normalised as Loki stores
    them (``k8s.event.reason`` -> ``k8s_event_reason``)."""

    labels: Mapping[str, str]
    ts_ns: int
    line: str
    structured_metadata: Mapping[str, str]
    tenant: str
    authorization: str | None = None


@dataclass(frozen=True)
class ReceivedPush:
    """One push request and its answer. ``body`` is as received (still compressed)."""

    headers: Headers
    body: bytes
    tenant: str | None
    received_at: float
    status: int
    message: str
    """The answer's body without its trailing newline ("" for 204)."""
    entries: tuple[LokiEntry, ...] = ()
    """What this push added to the store."""
    rejected: int = 0
    duplicates: int = 0

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


@dataclass(frozen=True)
class LokiFault:
    """A scripted answer: ``code`` with ``message`` and, if given, ``Retry-After``."""

    code: int
    message: str
    retry_after: float | None = None


class LokiFaults(ScriptedFaults[LokiFault]):
    """What the next pushes answer; ``faults.status(429, retry_after=1, times=2)``."""

    def status(
        self,
        code: int,
        *,
        times: int | None = 1,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> LokiFault:
        if message is None:
            message = (
                "Ingestion rate limit exceeded (fake Loki fault)"
                if code == 429
                else f"fake Loki: injected {code}"
            )
        return self.add(LokiFault(code, message, retry_after), times=times)


# ---------------------------------------------------------------------------
# Decoding: JSON or protobuf+snappy -> streams of entries
# ---------------------------------------------------------------------------


class _Entry(NamedTuple):
    ts_ns: int
    line: str
    structured_metadata: tuple[tuple[str, str], ...]


class _Stream(NamedTuple):
    labels: str  # the label set as text: as sent (protobuf) or rendered (JSON)
    entries: list[_Entry]


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def render_labels(labels: Mapping[str, str]) -> str:
    """A label set as Loki prints it: ``{a="1", b="2"}``, sorted by name."""
    return "{" + ", ".join(f"{k}={_quote(v)}" for k, v in sorted(labels.items())) + "}"


def _go_unquote(quoted: str) -> str:
    """The value of a Go double-quoted string literal's body (``strconv.Unquote``).

    Raises:
        ValueError: an escape Go does not know.
    """
    if not _GO_QUOTED.fullmatch(quoted):
        raise ValueError(f"invalid escape in {quoted!r}")

    def one(match: re.Match[str]) -> str:
        code = match.group()[1:]
        if code[0] in "xuU":
            return chr(int(code[1:], 16))
        if code[0].isdigit():
            return chr(int(code, 8))
        return _SIMPLE_ESCAPES.get(code, code)

    return re.sub(_GO_ESCAPE, one, quoted)


def parse_labels(text: str) -> list[tuple[str, str]]:
    """The pairs of a ``{name="value", ...}`` selector, in order, duplicates kept.

    Raises:
        ValueError: not a label set, or a name that is not a Prometheus label name.
    """
    inner = text.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        raise ValueError("a label set must be enclosed in { }")
    inner, pairs, pos = inner[1:-1], [], 0
    while inner[pos:].strip():
        match = _LABEL_PAIR.match(inner, pos)
        if match is None:
            raise ValueError(f'unexpected {inner[pos:].strip()[:20]!r}, expected name="value"')
        name, value = match.group(1), _go_unquote(match.group(2))
        if not _LABEL_NAME.match(name):
            raise ValueError(f"invalid label name {name!r}: must match [a-zA-Z_][a-zA-Z0-9_]*")
        pairs.append((name, value))
        pos = match.end()
        if pos < len(inner):
            if inner[pos] != ",":
                raise ValueError(f"unexpected {inner[pos]!r} after {name}, expected ','")
            pos += 1
    return pairs


def _json_entry(value: Any) -> _Entry:
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise ValueError(f"an entry must be [ts, line] or [ts, line, {{metadata}}], not {value!r}")
    ts, line, *rest = value
    if not isinstance(ts, str):  # the documented rule: "send the timestamp as a string"
        raise ValueError(f"the timestamp must be a string of nanoseconds, not {ts!r}")
    if not isinstance(line, str):
        raise ValueError(f"the line must be a string, not {line!r}")
    metadata = rest[0] if rest else {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError(f"structured metadata must be an object of strings, not {metadata!r}")
    return _Entry(int(ts), line, tuple(metadata.items()))


def _decode_json(raw: bytes) -> list[_Stream]:
    document = json.loads(raw)
    if not isinstance(document, dict) or not isinstance(document.get("streams"), list):
        raise ValueError('the body must be {"streams": [...]}')
    streams = []
    for stream in document["streams"]:
        labels = stream.get("stream") if isinstance(stream, dict) else None
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ValueError(f'"stream" must be an object of strings, in {stream!r}')
        values = stream.get("values") or []
        streams.append(_Stream(render_labels(labels), [_json_entry(v) for v in values]))
    return streams


def _decode_protobuf(raw: bytes) -> list[_Stream]:
    try:
        request = PushRequest.FromString(bytes(cramjam.snappy.decompress_raw(raw)))
    except cramjam.DecompressionError as e:
        raise ValueError(str(e)) from e
    except DecodeError as e:
        raise ValueError(f"unable to decode the PushRequest: {e}") from e
    return [
        _Stream(
            stream.labels,
            [
                _Entry(
                    entry.timestamp.ToNanoseconds(),
                    entry.line,
                    tuple((pair.name, pair.value) for pair in entry.structuredMetadata),
                )
                for entry in stream.entries
            ],
        )
        for stream in request.streams
    ]


def decode_push(body: bytes, *, content_type: str, content_encoding: str | None) -> list[_Stream]:
    """The streams of a push body, the way Loki's ``ParseLokiRequest`` reads it.

    Raises:
        UnsupportedEncoding: a Content-Encoding Loki does not take.
        ValueError: the body is not a valid push.
    """
    encoding = (content_encoding or "").strip().lower()
    raw = body if encoding == "snappy" else decode_content(body, encoding)  # snappy: below
    if content_type == "application/json":
        return _decode_json(raw)
    return _decode_protobuf(raw)  # Loki's default: anything that is not JSON


# ---------------------------------------------------------------------------
# Validation: Loki's distributor and ingester, as pure functions
# ---------------------------------------------------------------------------


def _rfc3339(ns: int) -> str:
    """Go's ``time.RFC3339`` (UTC)."""
    return datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _go_time(ns: int) -> str:
    """Go's ``Time.String()`` (UTC)."""
    seconds, fraction = divmod(ns, 10**9)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")
    decimals = f".{fraction:09d}".rstrip("0") if fraction else ""
    return f"{text}{decimals} +0000 UTC"


def normalize_label(name: str) -> str:
    """What Loki stores a structured-metadata name as (``otlptranslator.NormalizeLabel``)."""
    name = _NOT_LABEL_CHAR.sub("_", name)
    if name[:1].isdigit():
        return "key_" + name
    if name.startswith("_") and not name.startswith("__"):
        return "key" + name
    return name


def check_labels(text: str, limits: LokiLimits) -> tuple[dict[str, str], str]:
    """The labels of a stream, and their text as Loki prints them.

    Raises:
        ValueError: with Loki's message for the stream.
    """
    try:
        pairs = parse_labels(text)
    except ValueError as e:
        raise ValueError(f"Error parsing labels '{text}' with error: {e}") from e
    if not pairs:
        raise ValueError("error at least one label pair is required per stream")
    count = len(pairs) - any(name == SERVICE_NAME for name, _ in pairs)
    if count > limits.max_label_names_per_series:
        raise ValueError(
            f"entry for stream '{text}' has {count} label names; "
            f"limit {limits.max_label_names_per_series}"
        )
    previous = None
    for name, value in sorted(pairs):
        if len(name.encode()) > limits.max_label_name_length:
            raise ValueError(f"stream '{text}' has label name too long: '{name}'")
        if len(value.encode()) > limits.max_label_value_length:
            raise ValueError(f"stream '{text}' has label value too long: '{value}'")
        if name == previous:
            raise ValueError(f"stream '{text}' has duplicate label name: '{name}'")
        previous = name
    labels = dict(pairs)
    return labels, render_labels(labels)


def check_entry(entry: _Entry, stream: str, *, now_ns: int, limits: LokiLimits) -> str | None:
    """Loki's message for an entry the distributor refuses, or None."""
    line_bytes = len(entry.line.encode())
    metadata_bytes = sum(len(n.encode()) + len(v.encode()) for n, v in entry.structured_metadata)
    oldest = now_ns - round(limits.reject_old_samples_max_age * 1e9)
    if limits.reject_old_samples and entry.ts_ns < oldest:
        return (
            f"entry for stream '{stream}' has timestamp too old: {_rfc3339(entry.ts_ns)}, "
            f"oldest acceptable timestamp is: {_rfc3339(oldest)}"
        )
    if entry.ts_ns > now_ns + round(limits.creation_grace_period * 1e9):
        return f"entry for stream '{stream}' has timestamp too new: {_rfc3339(entry.ts_ns)}"
    if limits.max_line_size and line_bytes > limits.max_line_size:
        return (
            f"Max entry size '{limits.max_line_size}' bytes exceeded for stream '{stream}' "
            f"while adding an entry with length '{line_bytes}' bytes"
        )
    if limits.max_structured_metadata_size and metadata_bytes > limits.max_structured_metadata_size:
        return (
            f"stream '{stream}' has structured metadata too large: '{metadata_bytes}' bytes, "
            f"limit: '{limits.max_structured_metadata_size}' bytes. Please see "
            "`limits_config.max_structured_metadata_size` or contact your Loki administrator "
            "to increase it."
        )
    count, most = len(entry.structured_metadata), limits.max_structured_metadata_entries_count
    if most and count > most:
        return (
            f"stream '{stream}' has too many structured metadata labels: '{count}', "
            f"limit: '{most}'. Please see `limits_config.max_structured_metadata_entries_count` "
            "or contact your Loki administrator to increase it."
        )
    return None


def too_far_behind(
    entries: Sequence[_Entry], *, newest_ns: int, window_ns: int
) -> tuple[list[_Entry], list[tuple[_Entry, str]], int]:
    """The ingester's order check for one stream: (kept, refused with reason, new newest).

    Entries may come in any order, but not further than ``window_ns`` behind
    the newest entry of the stream so far (this push included).
    """
    kept, refused = [], []
    for entry in entries:
        cutoff = newest_ns - window_ns
        if newest_ns and entry.ts_ns < cutoff:
            reason = (
                f"entry too far behind, entry timestamp is: {_rfc3339(entry.ts_ns)}, "
                f"oldest acceptable timestamp is: {_rfc3339(cutoff)}"
            )
            refused.append((entry, reason))
            continue
        kept.append(entry)
        newest_ns = max(newest_ns, entry.ts_ns)
    return kept, refused, newest_ns


def _ingester_error(
    refused: Sequence[tuple[_Entry, str]], *, tenant: str, total: int, stream: str
) -> str:
    lines = [
        f"entry with timestamp {_go_time(e.ts_ns)} ignored, reason: '{r}'," for e, r in refused
    ]
    lines.append(
        f"user '{tenant}', total ignored: {len(refused)} out of {total} for stream: {stream}"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# The HTTP shell
# ---------------------------------------------------------------------------


class _LokiHandler(FakeHttpHandler):
    fake_name = "fake Loki"

    def do_POST(self) -> None:
        loki: FakeLoki = self.server.owner
        body = self.read_body()
        if urlsplit(self.path).path != PUSH_PATH:
            self._not_found()
            return
        reply = loki._push(self.request_headers(), body, self.media_type())
        try:
            if reply.message:
                self.send_text(reply.code, reply.message, reply.headers)
            else:
                self.send(reply.code, b"", "", reply.headers)
        except OSError as e:  # the client went away, or we are going down
            logger.debug("fake Loki: could not answer: %s", e)
            self.close_connection = True

    def do_GET(self) -> None:
        loki: FakeLoki = self.server.owner
        path = urlsplit(self.path).path
        if path == READY_PATH:
            self.send_text(200, "ready")
        elif path == LABELS_PATH:
            tenant = self.headers.get("X-Scope-OrgID") or SINGLE_TENANT
            names = sorted({name for e in loki.entries(tenant=tenant) for name in e.labels})
            body = json.dumps({"status": "success", "data": names}).encode()
            self.send(200, body, "application/json")
        elif path == PUSH_PATH:
            self.send_text(405, "405 method not allowed: push with POST")
        else:
            self._not_found()

    def _not_found(self) -> None:
        self.send_text(
            404,
            f"404 page not found (the fake Loki serves POST {PUSH_PATH}, "
            f"GET {READY_PATH} and GET {LABELS_PATH})",
        )


# ---------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What one push did to the store, while it is being worked out."""

    stored: list[LokiEntry] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rejected: int = 0
    duplicates: int = 0


class _Reply(NamedTuple):
    code: int
    message: str  # plain text; "" for 204
    headers: dict[str, str]
    outcome: _Outcome


def _reply(code: int, message: str, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(code, message, headers or {}, _Outcome())


class FakeLoki:
    """Loki's push API on ``127.0.0.1:0`` (:attr:`url`, :attr:`push_url`).

    Knobs tests may change at any time: :attr:`limits`, :attr:`faults`,
    :attr:`delay`, :attr:`now_ns`, :meth:`down` / :meth:`up`. Use it as a
    context manager, or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        *,
        limits: LokiLimits | None = None,
        delay: float = 0.0,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.limits = limits or LokiLimits()
        self.faults = LokiFaults()
        self.delay = delay
        """Seconds each push waits before it is answered (going down interrupts the wait)."""
        self.now_ns = now_ns
        """The clock the age checks use; a test can pin it."""
        self._cond = threading.Condition()
        self._pushes: list[ReceivedPush] = []
        self._streams: dict[tuple[str, str], list[LokiEntry]] = {}
        self._newest: dict[tuple[str, str], int] = {}
        self._stopping = threading.Event()
        self._http = HttpListener(_LokiHandler, self, "fake-loki")

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeLoki:
        self._stopping = threading.Event()
        self._http.start(0)
        logger.info("fake Loki listening on %s", self.url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._http.stop()

    def down(self) -> None:
        """Refuse connections until :meth:`up`; what was stored is kept."""
        self.stop()
        logger.info("fake Loki: down")

    def up(self) -> None:
        """Listen again on the same port."""
        self._stopping = threading.Event()
        self._http.start(self._http.port)
        logger.info("fake Loki: up again on %s", self.url)

    def __enter__(self) -> FakeLoki:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.port}"

    @property
    def push_url(self) -> str:
        return self.url + PUSH_PATH

    # -- one push ----------------------------------------------------------------------

    def _push(self, headers: Headers, body: bytes, content_type: str) -> _Reply:
        """Wait, decide, store and record one push; the reply to send."""
        received_at, stopping = time.time(), self._stopping
        tenant = headers.get("X-Scope-OrgID") or (
            None if self.limits.auth_enabled else SINGLE_TENANT
        )
        if self.delay:
            stopping.wait(self.delay)
        if stopping.is_set():  # going down: nothing stored, the client gets no answer
            reply = _reply(503, "fake Loki is going down")
        else:
            reply = self._reply(headers, body, content_type, tenant)
        outcome = reply.outcome
        push = ReceivedPush(
            headers,
            body,
            tenant,
            received_at,
            reply.code,
            reply.message,
            tuple(outcome.stored),
            outcome.rejected,
            outcome.duplicates,
        )
        self._commit(push)
        return reply

    def _reply(
        self, headers: Headers, body: bytes, content_type: str, tenant: str | None
    ) -> _Reply:
        fault = self.faults.take()
        if fault is not None:
            logger.info("fake Loki: push answers %d (scripted)", fault.code)
            retry = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
            return _reply(fault.code, fault.message, retry)
        if tenant is None:
            return _reply(401, "no org id")
        try:
            streams = decode_push(
                body, content_type=content_type, content_encoding=headers.get("Content-Encoding")
            )
        except UnsupportedEncoding as e:
            return _reply(400, f"Content-Encoding {_quote(str(e))} not supported")
        except ValueError as e:
            return _reply(400, str(e))
        outcome = self._ingest(streams, tenant, headers.get("Authorization"))
        code = 400 if outcome.errors else 204
        return _Reply(code, "\n".join(outcome.errors), {}, outcome)

    def _ingest(self, streams: Sequence[_Stream], tenant: str, auth: str | None) -> _Outcome:
        """Validate and store (under the lock: the order window is per-stream state)."""
        outcome, now_ns, limits = _Outcome(), self.now_ns(), self.limits
        with self._cond:
            for stream in streams:
                if not stream.entries:
                    continue
                try:
                    labels, text = check_labels(stream.labels, limits)
                except ValueError as e:
                    outcome.errors.append(str(e))
                    outcome.rejected += len(stream.entries)
                    continue
                valid = []
                for entry in stream.entries:
                    error = check_entry(entry, text, now_ns=now_ns, limits=limits)
                    if error is None:
                        valid.append(entry)
                    else:
                        outcome.errors.append(error)
                        outcome.rejected += 1
                self._store(valid, labels, text, tenant, auth, outcome)
        return outcome

    def _store(
        self,
        entries: list[_Entry],
        labels: dict[str, str],
        text: str,
        tenant: str,
        auth: str | None,
        outcome: _Outcome,
    ) -> None:
        key = (tenant, text)
        kept, refused, self._newest[key] = too_far_behind(
            entries,
            newest_ns=self._newest.get(key, 0),
            window_ns=round(self.limits.out_of_order_window * 1e9),
        )
        if refused:
            outcome.errors.append(
                _ingester_error(refused, tenant=tenant, total=len(entries), stream=text)
            )
            outcome.rejected += len(refused)
        stored = self._streams.setdefault(key, [])
        held = {(e.ts_ns, e.line) for e in stored}
        for entry in kept:
            if (entry.ts_ns, entry.line) in held:
                outcome.duplicates += 1
                continue
            metadata = {normalize_label(n): v for n, v in entry.structured_metadata}
            new = LokiEntry(labels, entry.ts_ns, entry.line, metadata, tenant, auth)
            stored.append(new)
            held.add((entry.ts_ns, entry.line))
            outcome.stored.append(new)

    def _commit(self, push: ReceivedPush) -> None:
        with self._cond:
            self._pushes.append(push)
            self._cond.notify_all()

    # -- what was received --------------------------------------------------------------

    @property
    def pushes(self) -> list[ReceivedPush]:
        """Every push so far, in order of answer, whatever its status."""
        with self._cond:
            return list(self._pushes)

    def outcomes(self) -> collections.Counter[int]:
        """Pushes counted by the status they were answered."""
        return collections.Counter(p.status for p in self.pushes)

    def calls(self, status: int | None = None) -> int:
        return sum(1 for p in self.pushes if status in (None, p.status))

    def entries(
        self, selector: Mapping[str, str] | None = None, *, tenant: str | None = None
    ) -> list[LokiEntry]:
        """The stored entries (all tenants unless ``tenant``), in order of arrival;
        ``selector`` keeps those whose labels include it."""
        want = (selector or {}).items()
        return [
            entry
            for push in self.pushes
            for entry in push.entries
            if tenant in (None, entry.tenant) and want <= entry.labels.items()
        ]

    def wait_for_entries(self, count: int, timeout: float = 5.0) -> list[LokiEntry]:
        """Wait until at least ``count`` entries are stored; returns them all.

        Raises:
            TimeoutError: fewer were within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.entries()) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.entries())} of {count} entries stored "
                    f"(pushes by status: {dict(self.outcomes())})"
                )
        return self.entries()

    def clear(self) -> None:
        """Forget pushes and stored entries (limits and faults stay)."""
        with self._cond:
            self._pushes.clear()
            self._streams.clear()
            self._newest.clear()
