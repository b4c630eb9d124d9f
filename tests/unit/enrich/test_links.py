"""LinkIndex: a link points to an incident or a latent cause, slides within its window."""

from __future__ import annotations

from kubevents.conventions import Category, Severity
from kubevents.enrich.incidents import Incident, RootCause
from kubevents.enrich.links import GROUP, MAX_TRACED, Cause, LinkIndex, Traced, trace_index

S = 1_000_000_000
KEY = (GROUP, "object", "shop/Pod/db-0")
WINDOW = 600 * S


def root(uid: str) -> RootCause:
    return RootCause(uid=uid, reason="FailedMount", object="shop/Pod/db-0", namespace="shop",
                     time_ns=0, category=Category.STORAGE, severity=Severity.ERROR)


def cause(uid: str) -> Cause:
    return Cause(root(uid), 1, "", "", is_cause=False)


def incident(uid: str) -> Incident:
    return Incident(id=f"inc-{uid}", root=root(uid), first_seen_ns=0, last_seen_ns=0,
                    severity=Severity.ERROR)


def test_a_latent_link_slides_and_keeps_its_first_cause() -> None:
    links = LinkIndex(max_entries=10)
    first = cause("a")
    links.put(KEY, 0, WINDOW, first)
    links.put(KEY, 60 * S, WINDOW, cause("b"))
    link = links.get(KEY)
    assert link is not None and link.latent
    assert link.target is first and link.time_ns == 60 * S


def test_an_incident_replaces_a_latent_cause_and_slides_itself() -> None:
    links = LinkIndex(max_entries=10)
    links.put(KEY, 0, WINDOW, cause("a"))
    opened = incident("a")
    links.put(KEY, 10 * S, WINDOW, opened)
    links.put(KEY, 20 * S, WINDOW, opened)
    link = links.get(KEY)
    assert link is not None and not link.latent
    assert link.target is opened and link.time_ns == 20 * S
    links.put(KEY, 30 * S, WINDOW, cause("c"))  # a latent cause does not slide an incident's link
    assert link is not links.get(KEY)


def test_a_link_past_its_window_is_replaced_not_slid() -> None:
    links = LinkIndex(max_entries=10)
    first, later = cause("a"), cause("b")
    links.put(KEY, 0, WINDOW, first)
    links.put(KEY, WINDOW + S, WINDOW, later)
    link = links.get(KEY)
    assert link is not None and link.target is later


def test_the_cap_drops_the_least_recently_updated_and_counts_it() -> None:
    links = LinkIndex(max_entries=2)
    keys = [(GROUP, "object", f"shop/Pod/p-{i}") for i in range(3)]
    for i, key in enumerate(keys):
        links.put(key, i * S, WINDOW, cause(str(i)))
    assert links.get(keys[0]) is None and len(links) == 2
    assert links.evicted == 1 and links.has(GROUP)


def test_of_links_updated_at_once_the_cap_drops_the_key_that_came_first() -> None:
    # Across rules and scopes; a link replaced under its key keeps the key's place.
    links = LinkIndex(max_entries=3)
    late, first, second = (GROUP, "node", "node-4"), (0, "node", "node-5"), (GROUP, "node", "node-6")
    links.put(late, 9 * S, 0, cause("a"))
    links.put(first, 0, 0, cause("b"))
    links.put(second, 1 * S, 0, cause("c"))
    links.put(first, 1 * S, 0, cause("d"))  # not slid (window 0): replaced, in its place
    links.put((1, "object", "p"), 9 * S, 0, cause("e"))  # over the cap: one of the two at 1 s goes
    assert links.get(first) is None and links.evicted == 1 and len(links) == 3
    assert links.get(second) is not None and links.get(late) is not None
    assert not links.has(0) and links.has(GROUP)


def test_expire_forgets_old_links_in_every_table_and_counts_them_out() -> None:
    links = LinkIndex(max_entries=10)
    old, kept = (GROUP, "node", "node-4"), (trace_index(3), "object", "p")
    links.put(old, 0, 0, cause("a"))
    links.trace(kept, 10 * S, cause("b"))
    links.expire(5 * S)
    assert links.get(old) is None and links.get(kept) is not None and len(links) == 1
    assert not links.has(GROUP) and links.has(trace_index(3))


def test_a_trace_keeps_one_event_as_itself_then_the_newest_in_order() -> None:
    links = LinkIndex(max_entries=100)
    key = (trace_index(0), "node", "node-4")
    a, b = cause("a"), cause("b")
    links.trace(key, 1 * S, a)
    links.trace(key, 1 * S, a)  # the same Event again: still one
    link = links.get(key)
    assert link is not None and link.target is a
    links.trace(key, 2 * S, b)
    link = links.get(key)
    assert link is not None and isinstance(link.target, Traced)
    assert link.target.causes == [a, b] and link.time_ns == 2 * S
    more = [cause(f"c{i}") for i in range(MAX_TRACED)]
    for i, c in enumerate(more):
        links.trace(key, (3 + i) * S, c)
    assert link.target.causes == more  # the newest MAX_TRACED
    assert links.live[trace_index(0)] == 1
