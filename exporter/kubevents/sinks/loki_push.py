"""The ``loki`` sink: ``POST /loki/api/v1/push`` to Loki's push API, on urllib3
(:mod:`http_client`).

Transport only: :mod:`loki_encode` builds the streams and bodies,
:class:`~kubevents.sinks.delivery.DeliverySink` queues and retries. Bodies
are JSON with gzip (default) or protobuf compressed with *raw block* snappy
(``cramjam.snappy.compress_raw``: Loki decodes with ``snappy.Decode``, which
rejects the framed format). Authentication: a tenant (``X-Scope-OrgID``),
and basic auth or a bearer token, from settings, ``${VAR}`` or files.

How Loki answers (``pkg/distributor``, ``pkg/validation``): 204 on success;
429 when a rate limit is hit (retried, ``Retry-After`` honoured); 5xx on
trouble (retried); 400 when entries are invalid (too old, too far behind,
too long). A 400 rejects only the invalid entries, and says how many with
"total ignored: N out of M": the rest were stored, so the batch counts as
delivered with N rejected, never re-sent. The reason label names the
problem (``too_old``, ``out_of_order``, ``line_too_long``...).
"""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import urllib3

from kubevents import __version__
from kubevents.errors import ConfigError, clip
from kubevents.records import OutputRecord, ResourceInfo
from kubevents.safeload import LoadProblem, decode_utf8
from kubevents.settings import LokiSettings, Settings
from kubevents.sinks.delivery import DeliverySink
from kubevents.sinks.http_client import NoAnswer, pool_manager, post
from kubevents.sinks.loki_encode import LokiMapper, TwinSeparator, encode_json, encode_protobuf
from kubevents.sinks.otlp_options import display_url, parse_headers
from kubevents.sinks.retry import Failure, parse_retry_after
from kubevents.sinks.transport import Sent, TransportError

PUSH_PATH = "/loki/api/v1/push"

_IGNORED = re.compile(r"total ignored: (\d+) out of (\d+)")
# A distributor validation error names one entry (pkg/validation/validate.go).
_ENTRY_ERROR = re.compile(r"(entry for stream '|max entry size '|stream '.*' has )", re.IGNORECASE)
# Loki's validation messages (pkg/validation/validate.go), most specific first.
_REASONS: tuple[tuple[str, str], ...] = (
    ("too far behind", "out_of_order"),
    ("out of order", "out_of_order"),
    ("timestamp too old", "too_old"),
    ("timestamp too new", "too_new"),
    ("max entry size", "line_too_long"),
    ("line too long", "line_too_long"),
    ("structured metadata", "structured_metadata_limit"),
    ("maximum number of label", "too_many_labels"),
    ("rate limit", "rate_limited"),
)


def rejected_entries(text: str, total: int) -> int:
    """How many entries a 400 refused: the ingester's "total ignored: N" counts plus
    one per distributor validation line; 0 when the answer names no entry (the
    whole request was refused)."""
    ignored = sum(int(m.group(1)) for m in _IGNORED.finditer(text))
    refused = sum(1 for line in text.splitlines() if _ENTRY_ERROR.match(line.strip()))
    return min(ignored + refused, total)


def reason_of(status: int, text: str) -> str:
    """The low-cardinality reason of a Loki error answer."""
    lowered = text.lower()
    for needle, reason in _REASONS:
        if needle in lowered:
            return reason
    return f"http_{status}"


def push_url(base: str) -> str:
    """Loki's base URL with the push path appended (unless it is already there)."""
    base = base.rstrip("/")
    return base if base.endswith(PUSH_PATH) else base + PUSH_PATH


def _secret(value: str, path: str, what: str) -> str:
    if value:
        return value
    if not path:
        return ""
    try:
        return decode_utf8(Path(path).read_bytes()).strip()
    except OSError as e:
        raise ConfigError(f"loki -> {what}_file: cannot read {path}: {e.strerror or e}") from e
    except LoadProblem as e:
        raise ConfigError(f"loki -> {what}_file: {path}:{e.line}: {e.message}") from None


def request_headers(settings: LokiSettings, *, content_type: str, encoding: str) -> dict[str, str]:
    """Every header of a push request; credentials included (so never log this)."""
    headers = {"Content-Type": content_type, "User-Agent": f"kubevents/{__version__}"}
    if encoding:
        headers["Content-Encoding"] = encoding
    for index, item in enumerate(settings.headers):
        headers.update(parse_headers(item, source=f"loki -> headers -> {index}"))
    if settings.tenant:
        headers["X-Scope-OrgID"] = settings.tenant
    token = _secret(settings.bearer_token, settings.bearer_token_file, "bearer_token")
    if token:
        if settings.username:
            raise ConfigError("loki: set either username/password or bearer_token, not both")
        headers["Authorization"] = f"Bearer {token}"
    return headers


class LokiPushTransport:
    """Pushes one request per batch; each stream's entries sorted by time."""

    def __init__(self, url: str, settings: LokiSettings, resource: ResourceInfo) -> None:
        self.url = url
        self.endpoint = display_url(url)
        self.settings = settings
        self._mapper = LokiMapper(
            resource, labels=settings.labels, profile=settings.profile, job=settings.job
        )
        self._protobuf = settings.encoding == "protobuf"
        if self._protobuf:
            content_type, encoding = "application/x-protobuf", ""
        else:
            content_type, encoding = "application/json", "gzip" if settings.gzip else ""
        self._lock = threading.Lock()
        self._headers = request_headers(settings, content_type=content_type, encoding=encoding)
        if settings.username:
            password = _secret(settings.password, settings.password_file, "password")
            self._headers.update(
                urllib3.util.make_headers(basic_auth=f"{settings.username}:{password}")
            )
        self._pool = pool_manager(
            url,
            certificate=settings.certificate,
            client_certificate=settings.client_certificate,
            client_key=settings.client_key,
            insecure=settings.insecure_skip_verify,
        )

    def body(self, records: Sequence[OutputRecord]) -> bytes:
        """The request body of ``records`` (compressed as configured)."""
        streams = self._mapper.streams(records)
        if self._protobuf:
            import cramjam

            return bytes(cramjam.snappy.compress_raw(encode_protobuf(streams)))
        data = encode_json(streams)
        return gzip.compress(data, compresslevel=5) if self.settings.gzip else data

    def send(self, records: Sequence[OutputRecord]) -> Sent:
        data = self.body(records)
        try:
            response = post(
                self._pool, self.url, data, headers=self._headers, timeout_s=self.settings.timeout_s
            )
        except NoAnswer as e:
            raise TransportError(e.failure) from e
        status = response.status
        if 200 <= status < 300:
            return Sent(len(data))
        text = response.text.strip()
        rejected = rejected_entries(text, len(records)) if status == 400 else 0
        if rejected:
            # Loki stored the valid entries: delivered, with ``rejected`` refused for good.
            return Sent(
                len(data), rejected=rejected, message=clip(text), reason=reason_of(status, text)
            )
        failure = Failure(
            "loki",
            str(status),
            kind=reason_of(status, text) if status in (400, 429) else "",
            retry_after_s=parse_retry_after(response.headers.get("Retry-After"), now_s=time.time()),
            detail=clip(text),
        )
        raise TransportError(failure, sent_bytes=len(data))

    def close(self) -> None:
        with self._lock:
            self._pool.clear()


def build_loki_sink(
    url: str | None,
    *,
    settings: Settings,
    resource: ResourceInfo,
    stop: threading.Event | None = None,
) -> DeliverySink:
    """The ``loki:URL`` sink."""
    base = url or settings.loki.url
    if not base:
        raise ConfigError("sinks: loki needs Loki's URL: loki:http://loki:3100 (or loki.url)")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"sinks: loki: expected an http(s) URL, got {clip(base, 80)!r}")
    return DeliverySink(
        "loki",
        LokiPushTransport(push_url(base), settings.loki, resource),
        settings.delivery,
        spool_dir=settings.delivery.spool_dir,
        stop=stop,
        prepare=TwinSeparator(),
    )
