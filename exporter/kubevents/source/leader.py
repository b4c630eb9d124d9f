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
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from kubevents.errors import SourceError
from kubevents.source.checkpoint import Checkpoint
from kubevents.source.kubeapi import api_error

logger = logging.getLogger(__name__)

CHECKPOINT_ANNOTATION = "kubevents.io/checkpoint"


class LeaseElector:
    """Campaigns for a Lease and keeps it; calls back on gaining and losing it."""

    def __init__(
        self,
        *,
        api_client: k8s.ApiClient,
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
        self._api = k8s.CoordinationV1Api(api_client)
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
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as e:
            if e.status == 404:
                return self._create(now)
            raise api_error(e) from e
        meta, spec = lease.metadata, lease.spec or k8s.V1LeaseSpec()
        rv = (meta.resource_version if meta else "") or ""
        if rv != self._observed_rv:
            self._observed_rv, self._observed_at = rv, now
        holder = spec.holder_identity or ""
        mine = holder == self.identity
        expired = now - self._observed_at >= self.lease_s
        if holder and not mine and not expired:
            return False
        if not self._leader:
            # Gaining leadership (also after our own restart): pick up the last checkpoint.
            self._load_checkpoint(lease)
        if not mine:
            spec.acquire_time = _micro_now()
            spec.lease_transitions = (spec.lease_transitions or 0) + 1
        spec.holder_identity = self.identity
        spec.lease_duration_seconds = int(self.lease_s)
        spec.renew_time = _micro_now()
        lease.spec = spec
        with self._lock:
            text = self._checkpoint_text
        if text is not None and meta is not None:
            meta.annotations = {**(meta.annotations or {}), CHECKPOINT_ANNOTATION: text}
        try:
            updated = self._api.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as e:
            if e.status == 409:
                return False  # someone else wrote first; look again next round
            raise api_error(e) from e
        with self._lock:
            self._last_renew = now
            self._checkpoint_written = text
        self._observed_rv = (updated.metadata.resource_version if updated.metadata else "") or ""
        self._observed_at = now
        return True

    def _create(self, now: float) -> bool:
        lease = k8s.V1Lease(
            metadata=k8s.V1ObjectMeta(name=self.name, namespace=self.namespace),
            spec=k8s.V1LeaseSpec(
                holder_identity=self.identity,
                lease_duration_seconds=int(self.lease_s),
                acquire_time=_micro_now(),
                renew_time=_micro_now(),
                lease_transitions=0,
            ),
        )
        try:
            created = self._api.create_namespaced_lease(self.namespace, lease)
        except ApiException as e:
            if e.status == 409:
                return False
            raise api_error(e) from e
        self.loaded = None
        with self._lock:
            self._last_renew = now
        self._observed_rv = (created.metadata.resource_version if created.metadata else "") or ""
        self._observed_at = now
        return True

    def _load_checkpoint(self, lease: k8s.V1Lease) -> None:
        annotations = (lease.metadata.annotations if lease.metadata else None) or {}
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
            lease = self._api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec and lease.spec.holder_identity == self.identity:
                lease.spec.holder_identity = None
                with self._lock:
                    text = self._checkpoint_text
                if text is not None and lease.metadata is not None:
                    lease.metadata.annotations = {
                        **(lease.metadata.annotations or {}),
                        CHECKPOINT_ANNOTATION: text,
                    }
                self._api.replace_namespaced_lease(self.name, self.namespace, lease)
        except ApiException as e:
            logger.debug("could not release the Lease: %s", api_error(e))


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


def _micro_now() -> datetime:
    return datetime.now(UTC)
