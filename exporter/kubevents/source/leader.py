"""Leader election on a coordination.k8s.io/v1 Lease, carrying the checkpoint.

Only the leader watches and exports. The rules, as client-go's leader
election has them:

* a candidate takes the Lease when it is free, or when its record has not
  changed for ``lease_s`` as observed on the candidate's OWN monotonic clock
  (never comparing the holder's timestamps with ours: clocks skew);
* the leader renews every ``retry_s``; if it cannot renew for ``renew_s``
  it considers itself deposed and stops exporting at once;
* ``renew_s < lease_s``, so the old leader has stopped before anyone else
  may take over: two replicas never export at the same time.

Every write is a PUT with the Lease's resourceVersion: a race is a 409
Conflict, and the loser simply tries again later. The leader also stores
the checkpoint as an annotation on the Lease, so the next leader continues
from it (see ``checkpoint.py``).

The Lease is handled as the raw JSON the API server sends: a dict that is
read, changed in place and written back whole, so fields this module does
not know survive the round trip.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import urllib3

from kubevents.errors import ApiError, SourceError
from kubevents.source.checkpoint import Checkpoint
from kubevents.source.kubeclient import KubeClient, api_path

logger = logging.getLogger(__name__)

CHECKPOINT_ANNOTATION = "kubevents.io/checkpoint"
LEASE_API = "coordination.k8s.io/v1"

Lease = dict[str, Any]
"""A coordination.k8s.io/v1 Lease as the API server sends it."""


class LeaseElector:
    """Campaigns for a Lease and keeps it; calls back on gaining and losing it."""

    def __init__(
        self,
        *,
        api_client: KubeClient,
        namespace: str,
        name: str,
        identity: str,
        stop: threading.Event,
        on_started: Callable[[], None],
        on_stopped: Callable[[], None],
        lease_s: float = 15.0,
        renew_s: float = 10.0,
        retry_s: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not renew_s < lease_s:
            raise ValueError("renew deadline must be shorter than the lease duration")
        self._client = api_client
        # A Lease call that outlives half the renew deadline is a failed attempt: the loop
        # tries again, rather than waiting on a silent server while the deadline passes.
        self._timeout = urllib3.Timeout(connect=renew_s / 2, read=renew_s / 2)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.stop = stop
        self._on_started, self._on_stopped = on_started, on_stopped
        self.lease_s, self.renew_s, self.retry_s = lease_s, renew_s, retry_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._leader = False
        self._last_renew = 0.0
        self._observed_rv = ""
        self._observed_at = 0.0
        self._checkpoint_text: str | None = None
        self._checkpoint_written: str | None = None
        self.transitions = 0
        """Times this replica gained leadership."""
        self.loaded: Checkpoint | None = None
        """The checkpoint found on the Lease when leadership was gained."""

    def is_leader(self) -> bool:
        """True while this replica holds a Lease it renewed within the renew deadline."""
        with self._lock:
            return self._leader and self._monotonic() - self._last_renew < self.renew_s

    def set_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store ``checkpoint`` on the Lease with the next write (at most ``retry_s`` later)."""
        text = checkpoint.to_annotation()
        with self._lock:
            self._checkpoint_text = text

    def run(self) -> None:
        """Campaign and renew until ``stop`` is set; release the Lease on the way out."""
        try:
            while not self.stop.is_set():
                self.step()
                self.stop.wait(self.retry_s)
        finally:
            if self._leader:
                self._lose("shutting down")
                self._release()

    def step(self) -> None:
        """One campaign or renewal attempt (the loop body; tests call it directly)."""
        try:
            won = self._try_acquire_or_renew()
        except SourceError as e:
            logger.warning("leader election on Lease %s/%s: %s", self.namespace, self.name, e)
            won = False
        if won and not self._leader:
            with self._lock:
                self._leader = True
            self.transitions += 1
            logger.info(
                "became the leader (Lease %s/%s, identity %s)",
                self.namespace,
                self.name,
                self.identity,
            )
            self._on_started()
        elif self._leader and not self.is_leader():
            self._lose(f"could not renew the Lease within {self.renew_s:.0f}s")

    def _lose(self, why: str) -> None:
        with self._lock:
            self._leader = False
        logger.warning("stopped being the leader: %s", why)
        self._on_stopped()

    def _try_acquire_or_renew(self) -> bool:
        now = self._monotonic()
        try:
            lease = self._read()
        except ApiError as e:
            if e.status == 404:
                return self._create(now)
            raise
        meta, spec = _section(lease, "metadata"), _section(lease, "spec")
        rv = str(meta.get("resourceVersion") or "")
        if rv != self._observed_rv:
            self._observed_rv, self._observed_at = rv, now
        holder = str(spec.get("holderIdentity") or "")
        mine = holder == self.identity
        expired = now - self._observed_at >= self.lease_s
        if holder and not mine and not expired:
            return False
        if not self._leader:
            # Gaining leadership (also after our own restart): pick up the last checkpoint.
            self._load_checkpoint(lease)
        if not mine:
            spec["acquireTime"] = _micro_now()
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec["holderIdentity"] = self.identity
        spec["leaseDurationSeconds"] = int(self.lease_s)
        spec["renewTime"] = _micro_now()
        with self._lock:
            text = self._checkpoint_text
        if text is not None:
            _annotate(meta, text)
        try:
            # The resourceVersion read above makes this write fail if anyone wrote since.
            updated = self._replace(lease)
        except ApiError as e:
            if e.status == 409:
                return False  # someone else wrote first; look again next round
            raise
        with self._lock:
            self._last_renew = now
            self._checkpoint_written = text
        self._observed_rv = str(_section(updated, "metadata").get("resourceVersion") or "")
        self._observed_at = now
        return True

    def _create(self, now: float) -> bool:
        lease: Lease = {
            "apiVersion": LEASE_API,
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": int(self.lease_s),
                "acquireTime": _micro_now(),
                "renewTime": _micro_now(),
                "leaseTransitions": 0,
            },
        }
        try:
            created = self._client.request_json(
                "POST",
                api_path(LEASE_API, "leases", self.namespace),
                body=lease,
                timeout=self._timeout,
            )
        except ApiError as e:
            if e.status == 409:
                return False
            raise
        self.loaded = None
        with self._lock:
            self._last_renew = now
        self._observed_rv = str(_section(created, "metadata").get("resourceVersion") or "")
        self._observed_at = now
        return True

    def _load_checkpoint(self, lease: Lease) -> None:
        annotations = _section(lease, "metadata").get("annotations") or {}
        text = annotations.get(CHECKPOINT_ANNOTATION)
        self.loaded = None
        if text:
            try:
                self.loaded = Checkpoint.from_annotation(
                    text, where=f"Lease {self.namespace}/{self.name}"
                )
            except SourceError as e:
                logger.error("%s; starting without it", e)

    def _release(self) -> None:
        """Give the Lease up so a standby can take over without waiting for expiry."""
        try:
            lease = self._read()
            spec = _section(lease, "spec")
            if spec.get("holderIdentity") == self.identity:
                del spec["holderIdentity"]
                with self._lock:
                    text = self._checkpoint_text
                if text is not None:
                    _annotate(_section(lease, "metadata"), text)
                self._replace(lease)
        except SourceError as e:
            logger.debug("could not release the Lease: %s", e)

    def _read(self) -> Lease:
        return self._client.request_json("GET", self._path(), timeout=self._timeout)

    def _replace(self, lease: Lease) -> Lease:
        return self._client.request_json("PUT", self._path(), body=lease, timeout=self._timeout)

    def _path(self) -> str:
        return api_path(LEASE_API, "leases", self.namespace, self.name)


class LeaseCheckpointStore:
    """The checkpoint store of an HA deployment: an annotation on the Lease.

    Saving hands the checkpoint to the elector, which writes it with its next
    renewal; loading returns what was on the Lease when leadership was gained.
    """

    def __init__(self, elector: LeaseElector) -> None:
        self.elector = elector

    def load(self) -> Checkpoint | None:
        return self.elector.loaded

    def save(self, checkpoint: Checkpoint) -> None:
        self.elector.set_checkpoint(checkpoint)


def _section(lease: Lease, key: str) -> dict[str, Any]:
    """``lease[key]`` (metadata, spec), created empty if missing, so it can be changed in place."""
    value = lease.get(key)
    if not isinstance(value, dict):
        value = lease[key] = {}
    return value


def _annotate(meta: dict[str, Any], checkpoint_text: str) -> None:
    meta["annotations"] = {
        **(meta.get("annotations") or {}),
        CHECKPOINT_ANNOTATION: checkpoint_text,
    }


def _micro_now() -> str:
    """Now as a MicroTime: RFC 3339 in UTC with microseconds, as the API server writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
