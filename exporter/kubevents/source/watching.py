"""List + watch of Events, resumed after every disconnect without loss.

The loop, for one scope (the whole cluster or one namespace)::

    list (paginated) -> remember the list's resourceVersion
    watch from it, allowWatchBookmarks -> update the resourceVersion from
        every object AND every BOOKMARK
    the server ends the watch (timeoutSeconds) -> watch again from the last one
    410 Expired (HTTP status or ERROR line)    -> relist: this is normal
    a watch that ends at once with nothing     -> relist (Events have no watch
        cache; an expired resourceVersion can come back as an empty 200)
    any other failure -> retrying.decide() -> wait (interruptibly) and retry

A relist repeats Events already seen; the pipeline's SeriesTracker skips
what was already emitted, so a relist costs bandwidth, never duplicates.
Everything the loop sees goes to a :class:`WatchHandler`; the loop itself
holds only the resourceVersion and counters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from kubevents.errors import ApiError, SourceError, clip
from kubevents.settings import WatchSettings
from kubevents.source.kubeapi import ListWatch
from kubevents.source.retrying import Action, decide

logger = logging.getLogger(__name__)


Watched = tuple[str, dict[str, Any], str]
"""One object of a watch: (watch type, the object, its resourceVersion)."""


class WatchHandler(Protocol):
    """Receives what a watch loop sees, in order, from the loop's thread."""

    def on_watched(self, events: list[Watched], *, scope: str, nbytes: int) -> None:
        """The ADDED/MODIFIED/DELETED objects of one read of the watch stream, in order,
        each with its resourceVersion, and the bytes their lines came as: one call for
        the read, so the handler can hand them on as one."""
        ...

    def on_listed(self, objs: list[dict[str, Any]], *, scope: str, nbytes: int) -> None:
        """The objects of one page of a (re)list, each ADDED, and the bytes the page came
        as: one call for the page, so the handler can hand it on as one."""
        ...

    def on_progress(self, *, scope: str, resource_version: str) -> None:
        """The stream is known good up to ``resource_version`` (a bookmark or a list end)."""
        ...


@dataclass(frozen=True)
class WatchOptions:
    """How one watch loop behaves (from WatchSettings)."""

    field_selector: str = ""
    page_size: int = 1000
    timeout_s: int = 300
    inactivity_timeout_s: float = 70.0
    empty_watch_s: float = 1.0
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0

    @classmethod
    def from_settings(cls, watch: WatchSettings) -> WatchOptions:
        """The Event watch's options; the object cache drops ``field_selector`` (it is
        about Events, not Pods)."""
        return cls(
            field_selector=watch.field_selector,
            page_size=watch.page_size,
            timeout_s=watch.timeout_s,
            inactivity_timeout_s=watch.inactivity_timeout_s,
            empty_watch_s=watch.empty_watch_s,
            backoff_base_s=watch.backoff_base_s,
            backoff_cap_s=watch.backoff_cap_s,
        )


@dataclass
class WatchStats:
    """Counters of one watch loop, read by the metrics layer."""

    lists: int = 0
    relists: Counter[str] = field(default_factory=Counter)
    """Relists by reason: expired, empty_watch, error."""
    restarts: Counter[str] = field(default_factory=Counter)
    """Watch reconnects by reason: server_timeout, connection, http_<code>, inactive."""
    api_errors: Counter[str] = field(default_factory=Counter)
    """API errors by HTTP status code (as a string)."""
    lines: int = 0
    bad_lines: int = 0
    bookmarks: int = 0
    established: bool = False
    """True while a watch stream is open and was answered with 200."""
    last_progress_ns: int = 0


class EventWatcher:
    """Runs list + watch of one resource for one scope until ``stop`` is set."""

    def __init__(
        self,
        *,
        api: ListWatch,
        handler: WatchHandler,
        stop: threading.Event,
        options: WatchOptions,
        namespace: str = "",
        resource_version: str = "",
        now_ns: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.handler = handler
        self.stop = stop
        self.options = options
        self.namespace = namespace
        self.scope = namespace or "*"
        self.resource_version = resource_version
        """Empty means: list first. A checkpoint's value resumes the watch directly."""
        self.stats = WatchStats()
        self._now_ns = now_ns
        self._monotonic = monotonic
        self._logged_errors: set[str] = set()
        self._down_since = 0.0
        """Monotonic time the current outage began (0: none); one line when it ends."""
        self._failures = 0
        self._answered = False
        self._received = 0
        """Lines the current list+watch attempt received (a failure after some is no outage)."""

    def run(self, *, _iterations: int | None = None) -> None:
        """List and watch until ``stop`` is set. Never raises for API failures.

        ``_iterations`` bounds the loop for tests (one iteration = one list or watch attempt).
        """
        attempt = 0
        iterations = 0
        while not self.stop.is_set():
            if _iterations is not None and iterations >= _iterations:
                return
            iterations += 1
            self._received = 0
            try:
                if not self.resource_version:
                    self._list()
                progressed = self._watch_once()
                attempt = 0 if progressed else attempt
            except SourceError as error:
                self.stats.established = False
                if self._received:
                    # The stream delivered before it failed: the server is fine, retry soon.
                    # (Backing off to the cap here would let a stream cut every few lines
                    # fall further behind for ever.)
                    attempt = 0
                decision = decide(
                    error,
                    attempt,
                    base_s=self.options.backoff_base_s,
                    cap_s=self.options.backoff_cap_s,
                )
                self._record_failure(error, decision.reason, decision.delay_s)
                if decision.action is Action.RELIST:
                    logger.debug(
                        "watch %s: resourceVersion expired, relisting. This is normal.", self.scope
                    )
                    self.stats.relists["expired"] += 1
                    self.resource_version = ""
                    attempt = 0
                    continue
                attempt += 1
                self.stop.wait(decision.delay_s)
        self.stats.established = False

    @property
    def _name(self) -> str:
        """``events (all namespaces)``, ``pods in shop``: what a log line is about."""
        where = f"in {self.namespace}" if self.namespace else "all namespaces"
        return f"{self.api.resource} ({self.api.api_version}, {where})"

    def _record_failure(self, error: SourceError, reason: str, delay_s: float) -> None:
        if isinstance(error, ApiError):
            self.stats.api_errors[str(error.status)] += 1
        if reason == "expired":
            return
        self.stats.restarts[reason] += 1
        self._failures += 1
        if not self._down_since:
            self._down_since = self._monotonic()
        message = _explain(error, self.api.api_version, self.api.resource, self.namespace)
        # One line per outage (and per new kind of failure in it); the retries at DEBUG.
        if message in self._logged_errors:
            logger.debug("watch %s: %s; retrying in %.1fs", self._name, message, delay_s)
        else:
            self._logged_errors.add(message)
            logger.warning(
                "watch %s: %s; retrying in %.1fs, then with backoff up to %.0fs "
                "(one line when it is back)",
                self._name,
                message,
                delay_s,
                self.options.backoff_cap_s,
            )

    def _answered_now(self, what: str) -> None:
        """The server answered: end the outage (one line), and say when watching starts."""
        self._logged_errors.clear()
        if self._down_since:
            logger.info(
                "watch %s: back after %.0fs (%d failed attempts)",
                self._name,
                self._monotonic() - self._down_since,
                self._failures,
            )
            self._down_since, self._failures = 0.0, 0
        if not self._answered:
            self._answered = True
            logger.info("watch %s: %s", self._name, what)

    def _list(self) -> None:
        """List every Event (paginated) and remember the list's resourceVersion."""
        token = ""
        items_rv = ""
        while True:
            page = self.api.list_page(
                namespace=self.namespace,
                field_selector=self.options.field_selector,
                limit=self.options.page_size,
                continue_token=token,
            )
            meta = page.body.get("metadata") or {}
            items = page.body.get("items") or []
            # The page goes on as one, with its bytes as it came (the queue bounds them;
            # serializing every item again to size it cost about 1 µs an Event).
            objs = [item for item in items if isinstance(item, dict)]
            if objs:
                self.handler.on_listed(objs, scope=self.scope, nbytes=page.nbytes)
            # The first page's resourceVersion is the snapshot the whole list is consistent with.
            items_rv = items_rv or str(meta.get("resourceVersion") or "")
            token = str(meta.get("continue") or "")
            if not token or self.stop.is_set():
                break
        self.stats.lists += 1
        self.resource_version = items_rv
        self._answered_now("listed; watching")
        self._progress()

    def _watch_once(self) -> bool:
        """One watch request, until the server ends it. Returns True if anything arrived."""
        started = self._monotonic()
        batches = self.api.watch_batches(
            namespace=self.namespace,
            field_selector=self.options.field_selector,
            resource_version=self.resource_version,
            timeout_s=self.options.timeout_s,
            inactivity_timeout_s=self.options.inactivity_timeout_s,
        )
        self.stats.established = True
        self._answered_now("watching (resumed from the checkpoint)")
        for lines in batches:
            if self.stop.is_set():
                return True
            self._received += len(lines)
            self._lines(lines)
        self.stats.established = False
        if self._received == 0 and self._monotonic() - started < self.options.empty_watch_s:
            # No watch cache for Events: an expired resourceVersion may answer 200 with nothing.
            logger.debug("watch %s ended at once with nothing: relisting", self.scope)
            self.stats.relists["empty_watch"] += 1
            self.resource_version = ""
            return False
        self.stats.restarts["server_timeout"] += 1
        return self._received > 0

    def _lines(self, lines: list[bytes]) -> None:
        """The lines of one read: their objects go to the handler in one call, cut where a
        bookmark or an error comes (what came before either is handed on first)."""
        self.stats.lines += len(lines)
        watched: list[Watched] = []
        nbytes = 0
        for line in lines:
            try:
                watch = orjson.loads(line)
                watch_type, obj = watch["type"], watch["object"]
                if not isinstance(obj, dict):
                    raise TypeError("object is not a mapping")
            except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                self.stats.bad_lines += 1
                logger.warning(
                    "watch %s: skipped malformed line after resourceVersion %s: %s: %s",
                    self.scope,
                    self.resource_version,
                    e,
                    clip(line.decode("utf-8", "replace"), 120),
                )
                continue
            if watch_type == "ERROR":
                self._hand_on(watched, nbytes)
                raise ApiError(
                    int(obj.get("code") or 0),
                    str(obj.get("reason") or ""),
                    str(obj.get("message") or ""),
                )
            rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if watch_type == "BOOKMARK":
                self.stats.bookmarks += 1
                if rv:
                    self._hand_on(watched, nbytes)
                    watched, nbytes = [], 0
                    self.resource_version = rv
                    self._progress()
                continue
            if watch_type not in ("ADDED", "MODIFIED", "DELETED"):
                logger.warning(
                    "watch %s: ignoring unsupported watch event type %r",
                    self.scope,
                    clip(str(watch_type), 40),
                )
                continue
            watched.append((watch_type, obj, rv))
            nbytes += len(line)
            if rv:
                self.resource_version = rv
        self._hand_on(watched, nbytes)

    def _hand_on(self, watched: list[Watched], nbytes: int) -> None:
        if watched:
            self.handler.on_watched(watched, scope=self.scope, nbytes=nbytes)
            self.stats.last_progress_ns = self._now_ns()

    def _progress(self) -> None:
        self.stats.last_progress_ns = self._now_ns()
        self.handler.on_progress(scope=self.scope, resource_version=self.resource_version)


def _explain(error: SourceError, api_version: str, resource: str, namespace: str) -> str:
    """A message an operator can act on; 401/403 name the missing permission."""
    if isinstance(error, ApiError) and error.status in (401, 403):
        group = api_version.rpartition("/")[0] or '"" (core)'
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        verb = "list and watch"
        if error.status == 401:
            return f"401 Unauthorized: the credentials were rejected ({error.message})"
        return (
            f'403 Forbidden: RBAC must allow {verb} on resource "{resource}" in API group {group} {where} '
            f"({error.message})"
        )
    return str(error)
