"""Message templates: real Kubernetes messages with their variable parts masked."""

from __future__ import annotations

import ipaddress
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevents.enrich.templates import _TOKEN, MAX_MESSAGE, _placeholder, template


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # kubelet: images
        (
            'Failed to pull image "registry.example.com/shop/web:1.4.2": rpc error: code = NotFound'
            ' desc = failed to pull and unpack image "registry.example.com/shop/web:1.4.2"',
            "Failed to pull image <str>: rpc error: code = NotFound desc = failed to pull and unpack image <str>",
        ),
        ('Back-off pulling image "nginx:latest"', "Back-off pulling image <str>"),
        (
            'Successfully pulled image "nginx:1.27" in 1.234s (1.234s including waiting). Image size: 72188133 bytes.',
            "Successfully pulled image <str> in <dur> (<dur> including waiting). Image size: <num> bytes.",
        ),
        (
            "Pulling image nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31",
            "Pulling image nginx@sha256:<hash>",
        ),
        # kubelet: probes
        (
            'Liveness probe failed: Get "http://10.244.1.5:8080/healthz": dial tcp 10.244.1.5:8080: connect: connection refused',
            "Liveness probe failed: Get <str>: dial tcp <ip>: connect: connection refused",
        ),
        (
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "Readiness probe failed: HTTP probe failed with statuscode: <num>",
        ),
        ("dial tcp [fd00:10:244::5]:8080: i/o timeout", "dial tcp [<ip>]:<num>: i/o timeout"),
        (
            'Startup probe failed: command timed out: "/bin/check" timed out after 5m0s',
            "Startup probe failed: command timed out: <str> timed out after <dur>",
        ),
        # kubelet: restarts, with a generated pod name and the pod uid
        (
            "Back-off restarting failed container web in pod web-7d4f8b9c5d-x2x9k_shop(1b4e28ba-2fa1-11d2-883f-0016d3cca427)",
            "Back-off restarting failed container web in pod <name>_shop(<uid>)",
        ),
        # scheduler: the node counts vary, the cause does not
        (
            "0/5 nodes are available: 2 Insufficient memory, 3 node(s) had untolerated taint"
            " {node-role.kubernetes.io/control-plane: }. preemption: 0/5 nodes are available:"
            " 5 Preemption is not helpful for scheduling.",
            "<num>/<num> nodes are available: <num> Insufficient memory, <num> node(s) had untolerated taint"
            " {node-role.kubernetes.io/control-plane: }. preemption: <num>/<num> nodes are available:"
            " <num> Preemption is not helpful for scheduling.",
        ),
        # controllers: generated names, job names with a timestamp
        ("Created pod: web-7d4f8b9c5d-x2x9k", "Created pod: <name>"),
        ("Deleted pod: migrate-db-kzwbt", "Deleted pod: <name>"),
        ("Scaled up replica set web-7d4f8b9c5d to 3", "Scaled up replica set <name> to <num>"),
        ("Created job backup-28473600", "Created job backup-<num>"),
        # volumes
        (
            'MountVolume.SetUp failed for volume "config" : configmap "web-config" not found',
            "MountVolume.SetUp failed for volume <str> : configmap <str> not found",
        ),
        # node
        (
            "Node ip-10-0-1-23.ec2.internal status is now: NodeNotReady",
            "Node ip-<num>-<num>-<num>-<num>.ec2.internal status is now: NodeNotReady",
        ),
        (
            "Memory cgroup out of memory: Killed process 12345 (java) total-vm:1234567kB, UID:1000",
            "Memory cgroup out of memory: Killed process <num> (java) total-vm:<num>kB, UID:<num>",
        ),
        # what must stay: words, versions glued to letters, the error text
        (
            "Job has reached the specified backoff limit",
            "Job has reached the specified backoff limit",
        ),
        (
            "Container web failed liveness probe, will be restarted",
            "Container web failed liveness probe, will be restarted",
        ),
        ("kube-scheduler k8s v1 ipv4", "kube-scheduler k8s v1 ipv4"),
        ("  spaces\tand\nnewlines  ", "spaces and newlines"),
        ("", ""),
    ],
)
def test_masks_the_variable_parts_of_real_messages(message: str, expected: str) -> None:
    assert template(message) == expected


def test_only_the_head_of_a_huge_message_is_templated() -> None:
    assert len(template("x" * (10 * MAX_MESSAGE))) == MAX_MESSAGE


@given(
    port=st.integers(1, 65535),
    ip=st.ip_addresses(v=4),
    ip6=st.ip_addresses(v=6).filter(lambda a: ":" in str(a).strip(":") and "." not in str(a)),
    uid=st.uuids(),
    count=st.integers(0, 10**9),
    image=st.from_regex(r"[a-z]{1,8}(:[0-9.]{1,6})?", fullmatch=True),
)
def test_messages_that_differ_only_in_variable_parts_share_a_template(
    port: int,
    ip: ipaddress.IPv4Address,
    ip6: ipaddress.IPv6Address,
    uid: uuid.UUID,
    count: int,
    image: str,
) -> None:
    message = (
        f'Failed to pull image "{image}": dial tcp {ip}:{port}: refused; pod uid {uid};'
        f" via {ip6} after {count} tries"
    )
    assert template(message) == (
        "Failed to pull image <str>: dial tcp <ip>: refused; pod uid <uid>; via <ip> after <num> tries"
    )


@given(
    st.lists(
        st.sampled_from(
            [
                "Failed",
                "pull",
                '"x y"',
                "'",
                '"',
                ":",
                "-",
                ".",
                "(",
                " ",
                "  ",
                "\t",
                "k8s",
                "10.0.0.1",
                ":8080",
                "fd00::5",
                "::1",
                "5m0s",
                "1.5s",
                "web-7d4f8b9c5d-x2x9k",
                "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
                "0d17b565c37b",
                "42",
                "3.4.5",
                "_shop",
            ]
        ),
        max_size=30,
    ).map("".join)
)
def test_masking_piece_by_piece_equals_masking_the_whole_message(message: str) -> None:
    # template() masks quoted strings and runs of other characters one at a time
    # (and caches them); that must never differ from one pass over the message.
    text = " ".join(message[:MAX_MESSAGE].split())
    assert template(message) == _TOKEN.sub(_placeholder, text)
