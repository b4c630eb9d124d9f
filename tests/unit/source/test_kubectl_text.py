"""kubectl text (``get events`` tables, ``describe`` Events sections) read back as Events.

Every row here is copied from a public source, cited above its case; where a case
needs a layout no source printed whole (``-o wide``), its header is kubectl's own
column list (kubernetes/kubernetes pkg/printers/internalversion/printers.go,
``eventColumnDefinitions``) and its cells are copied from a cited row.
"""

from __future__ import annotations

from typing import Any

import pytest

from kubevents.normalize import normalize
from kubevents.source.kubectl_text import (
    DefaultObject,
    looks_like_text,
    parse_reference_time,
    parse_text,
)

NOW = parse_reference_time("2026-01-01T00:00:00Z")
POD = DefaultObject(kind="Pod", namespace="default", name="web-0", node="node-1")


def at(ago: str) -> str:
    """The RFC 3339 time ``ago`` before NOW (``"3m"``)."""
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    total, number = 0, ""
    for char in ago:
        if char.isdigit():
            number += char
        else:
            total += int(number) * seconds[char]
            number = ""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(NOW // 10**9 - total, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(text: str, **kwargs: Any) -> Any:
    return parse_text(text, name="t.txt", now_ns=NOW, **kwargs)


# (text, default object, expected per row: reason, type, count, first, last, kind, name,
#  namespace, component, host, message start)
LAYOUTS = [
    pytest.param(
        # https://github.com/kubernetes/kubernetes/pull/113216 (modern describe, series)
        """Events:
  Type     Reason     Age                   From               Message
  ----     ------     ----                  ----               -------
  Normal   Scheduled  18m                   default-scheduler  Successfully assigned xxx/xxx-controller-manager-7c8fcd5fff-4fprb to cloud-dev
  Normal   Created    19m (x4 over 20m)     kubelet            Created container kube-rbac-proxy
""",
        POD,
        [
            (
                "Scheduled",
                "Normal",
                1,
                at("18m"),
                at("18m"),
                "Pod",
                "web-0",
                "default",
                "default-scheduler",
                "",
                "Successfully assigned xxx/",
            ),
            (
                "Created",
                "Normal",
                4,
                at("20m"),
                at("19m"),
                "Pod",
                "web-0",
                "default",
                "kubelet",
                "node-1",
                "Created container kube-rbac-proxy",
            ),
        ],
        id="describe: Type Reason Age From Message, (x4 over 20m)",
    ),
    pytest.param(
        # https://github.com/NetApp/trident/issues/506 (From "kubelet, host", misaligned ages)
        """  Type     Reason       Age                   From                 Message
  ----     ------       ----                  ----                 -------
  Warning  FailedMount  15m (x8 over 70m)     kubelet, zdlsserver  Unable to attach or mount volumes: unmounted volumes=[task-pv-storage], unattached volumes=[default-token-8znqf task-pv-storage]: timed out waiting for the condition
  Warning  FailedMount  6m51s (x22 over 74m)  kubelet, zdlsserver  Unable to attach or mount volumes: unmounted volumes=[task-pv-storage], unattached volumes=[task-pv-storage default-token-8znqf]: timed out waiting for the condition
""",
        POD,
        [
            (
                "FailedMount",
                "Warning",
                8,
                at("70m"),
                at("15m"),
                "Pod",
                "web-0",
                "default",
                "kubelet",
                "zdlsserver",
                "Unable to attach or mount volumes",
            ),
            (
                "FailedMount",
                "Warning",
                22,
                at("74m"),
                at("6m51s"),
                "Pod",
                "web-0",
                "default",
                "kubelet",
                "zdlsserver",
                "Unable to attach or mount volumes",
            ),
        ],
        id="describe: From 'kubelet, host'",
    ),
    pytest.param(
        # https://github.com/kubernetes/kubernetes/issues/42004 (old describe with Type)
        """Events:
  FirstSeen    LastSeen    Count    From            SubObjectPath    Type        Reason        Message
  ---------    --------    -----    ----            -------------    --------    ------        -------
  12m        12m        1    default-scheduler            Normal        Scheduled    Successfully assigned glusterfs-bb-pod1 to 127.0.0.1
  10m        1m        5    kubelet, 127.0.0.1            Warning        FailedMount    Unable to mount volumes for pod "glusterfs-bb-pod1_default(67c9dfa7-f9f5-11e6-aee2-5254003a59cf)": timeout expired waiting for volumes to attach/mount for pod "default"/"glusterfs-bb-pod1". list of unattached/unmounted volumes=[glusterfsvol]
""",
        POD,
        [
            (
                "Scheduled",
                "Normal",
                1,
                at("12m"),
                at("12m"),
                "Pod",
                "web-0",
                "default",
                "default-scheduler",
                "",
                "Successfully assigned glusterfs-bb-pod1",
            ),
            (
                "FailedMount",
                "Warning",
                5,
                at("10m"),
                at("1m"),
                "Pod",
                "web-0",
                "default",
                "kubelet",
                "127.0.0.1",
                "Unable to mount volumes for pod",
            ),
        ],
        id="old describe: FirstSeen LastSeen Count From SubObjectPath Type",
    ),
    pytest.param(
        # https://github.com/kubernetes/kubernetes/issues/19589 (tabs, box-drawing rule,
        # no Type column, {kubelet host}, the describe header names the Pod)
        "Name:\t\t\t\tcluster-ssh-server-ouan5\n"
        "Namespace:\t\t\tdefault\n"
        "Image(s):\t\t\ttutum/ubuntu:trusty\n"
        "Node:\t\t\t\tgke-cluster-1-b4c97d4d-node-lx67/10.240.0.2\n"
        "Containers:\n"
        "  sshd:\n"
        "    Container ID:\n"
        "Events:\n"
        "  FirstSeen\tLastSeen\tCount\tFrom\t\t\t\t\t\tSubobjectPath\tReason\t\tMessage\n"
        "  ─────────\t────────\t─────\t────\t\t\t\t\t\t─────────────\t──────\t\t───────\n"
        "  12h\t\t9s\t\t4543\t{kubelet gke-cluster-1-b4c97d4d-node-lx67}\t\t\tFailedMount\t"
        'Unable to mount volumes for pod "cluster-ssh-server-ouan5_default": exit status 32\n',
        None,
        [
            (
                "FailedMount",
                "",
                4543,
                at("12h"),
                at("9s"),
                "Pod",
                "cluster-ssh-server-ouan5",
                "default",
                "kubelet",
                "gke-cluster-1-b4c97d4d-node-lx67",
                "Unable to mount",
            ),
        ],
        id="old describe: tab separated, no Type, header names the Pod",
    ),
    pytest.param(
        # https://github.com/kubernetes/kubernetes/issues/31768 (reason and message one space apart)
        """  FirstSeen     LastSeen        Count   From                                            SubObjectPath                   Type            Reason          Message
  4m        2m      2   {kubelet gke-utilicluster-default-pool-2a5b702b-hfyh}           Warning     FailedSync  Error syncing pod, skipping: timeout expired waiting for volumes to attach/mount for pod "spartakus-collector-3999054429-atph7"/"default". list of unattached/unmounted volumes=[bigquery]
""",
        POD,
        [
            (
                "FailedSync",
                "Warning",
                2,
                at("4m"),
                at("2m"),
                "Pod",
                "web-0",
                "default",
                "kubelet",
                "gke-utilicluster-default-pool-2a5b702b-hfyh",
                "Error syncing pod",
            ),
        ],
        id="old describe: cells one space apart",
    ),
    pytest.param(
        # https://github.com/huggingface/dataset-viewer/issues/270 (a message on four lines)
        """  Type     Reason       Age    From               Message
  ----     ------       ----   ----               -------
  Warning  FailedMount  102s   kubelet            MountVolume.SetUp failed for volume "nfs" : mount failed: exit status 32
Mounting command: mount
Output: mount.nfs: Connection timed out
  Warning  FailedMount  27s (x2 over 2m41s)  kubelet  Unable to attach or mount volumes: unmounted volumes=[nfs], unattached volumes=[nfs kube-api-access-rhbw9]: timed out waiting for the condition
""",
        POD,
        [
            (
                "FailedMount",
                "Warning",
                1,
                at("102s"),
                at("102s"),
                "Pod",
                "web-0",
                "default",
                "kubelet",
                "node-1",
                'MountVolume.SetUp failed for volume "nfs" : mount failed: exit status 32\n'
                "Mounting command: mount\nOutput: mount.nfs: Connection timed out",
            ),
            (
                "FailedMount",
                "Warning",
                2,
                at("2m41s"),
                at("27s"),
                "Pod",
                "web-0",
                "default",
                "kubelet",
                "node-1",
                "Unable to attach",
            ),
        ],
        id="describe: a message on several lines",
    ),
    pytest.param(
        # https://github.com/kubernetes/kubernetes/issues/29838 (old get events)
        """LASTSEEN   FIRSTSEEN   COUNT     NAME                                KIND         SUBOBJECT                         TYPE      REASON              SOURCE                                   MESSAGE
13m        13m         1         nginx-deployment-3392909933-1tfwp   Pod                                            Normal    Scheduled           {default-scheduler }                     Successfully assigned nginx-deployment-3392909933-1tfwp to kubernetes-minion-group-kcbf
13m        13m         1         nginx-deployment-3392909933-1tfwp   Pod          spec.containers{nginx}            Normal    Pulling             {kubelet kubernetes-minion-group-kcbf}   pulling image "nginx"
""",
        None,
        [
            (
                "Scheduled",
                "Normal",
                1,
                at("13m"),
                at("13m"),
                "Pod",
                "nginx-deployment-3392909933-1tfwp",
                "default",
                "default-scheduler",
                "",
                "Successfully assigned",
            ),
            (
                "Pulling",
                "Normal",
                1,
                at("13m"),
                at("13m"),
                "Pod",
                "nginx-deployment-3392909933-1tfwp",
                "default",
                "kubelet",
                "kubernetes-minion-group-kcbf",
                'pulling image "nginx"',
            ),
        ],
        id="old get events: LASTSEEN FIRSTSEEN COUNT NAME KIND SUBOBJECT TYPE REASON SOURCE",
    ),
    pytest.param(
        # https://github.com/EnMasseProject/enmasse/pull/2970 (NAME is the Event's name)
        """LAST SEEN              FIRST SEEN             COUNT     NAME                                                        KIND           SUBOBJECT                                   TYPE      REASON                   SOURCE                     MESSAGE
2019-07-05T15:01:04Z   2019-07-05T15:01:04Z   1         api-server.15ae8aeb897f47d4                                 Deployment     <none>                                      Normal    ScalingReplicaSet        deployment-controller      Scaled up replica set api-server-7b5d9df774 to 1
""",
        None,
        [
            (
                "ScalingReplicaSet",
                "Normal",
                1,
                "2019-07-05T15:01:04Z",
                "2019-07-05T15:01:04Z",
                "Deployment",
                "api-server",
                "default",
                "deployment-controller",
                "",
                "Scaled up replica set api-server-7b5d9df774 to 1",
            ),
        ],
        id="get events 1.11: LAST SEEN FIRST SEEN ... with timestamps",
    ),
    pytest.param(
        # https://github.com/kubernetes/kubernetes/issues/4396 (no TYPE, RFC 1123 dates)
        """FIRSTSEEN                         LASTSEEN                          COUNT               NAME                                                    KIND                SUBOBJECT                                REASON              SOURCE                                                            MESSAGE
Sat, 21 Feb 2015 02:59:53 +0000   Sat, 21 Feb 2015 02:59:53 +0000   1                   kubernetes-minion-bkss.c.generated-motif-735.internal   Node                                                         created             {nodecontroller }                                                 node kubernetes-minion-bkss.c.generated-motif-735.internal created
""",
        None,
        [
            (
                "created",
                "",
                1,
                "2015-02-21T02:59:53Z",
                "2015-02-21T02:59:53Z",
                "Node",
                "kubernetes-minion-bkss.c.generated-motif-735.internal",
                "",
                "nodecontroller",
                "",
                "node kubernetes-minion-bkss",
            ),
        ],
        id="get events 2015: FIRSTSEEN LASTSEEN ... no TYPE, dates",
    ),
    pytest.param(
        # https://github.com/kubebb/core/pull/130 (get events -A)
        """NAMESPACE            LAST SEEN   TYPE      REASON                    OBJECT                                              MESSAGE
local-path-storage   9m32s       Warning   FailedMount               pod/local-path-provisioner-c49b7b56f-vjkz4          MountVolume.SetUp failed for volume "kube-api-access-pljgx" : failed to sync configmap cache: timed out waiting for the condition
default              10m         Normal    NodeHasNoDiskPressure     node/kind-control-plane                             Node kind-control-plane status is now: NodeHasNoDiskPressure
""",
        None,
        [
            (
                "FailedMount",
                "Warning",
                1,
                at("9m32s"),
                at("9m32s"),
                "Pod",
                "local-path-provisioner-c49b7b56f-vjkz4",
                "local-path-storage",
                "",
                "",
                "MountVolume.SetUp failed",
            ),
            (
                "NodeHasNoDiskPressure",
                "Normal",
                1,
                at("10m"),
                at("10m"),
                "Node",
                "kind-control-plane",
                "",
                "",
                "",
                "Node kind-control-plane status",
            ),
        ],
        id="get events -A: NAMESPACE LAST SEEN TYPE REASON OBJECT MESSAGE",
    ),
    pytest.param(
        # https://github.com/equinixmetal-archive/csi-packet/issues/15 (kubectl 1.12/1.13:
        # KIND but no object name)
        """LAST SEEN   TYPE      REASON                 KIND                    MESSAGE
3s          Warning   ProvisioningFailed     PersistentVolumeClaim   Failed to provision volume with StorageClass "csi-packet-standard": rpc error: code = Internal desc = controller not configur
""",
        None,
        [
            (
                "ProvisioningFailed",
                "Warning",
                1,
                at("3s"),
                at("3s"),
                "PersistentVolumeClaim",
                "",
                "default",
                "",
                "",
                "Failed to provision volume",
            ),
        ],
        id="get events 1.12: LAST SEEN TYPE REASON KIND MESSAGE",
    ),
    pytest.param(
        # https://github.com/kubernetes/kubernetes/pull/90206 (<unknown> age)
        """LAST SEEN   TYPE     REASON              OBJECT                        MESSAGE
<unknown>   Normal   Scheduled           pod/nginx-6c975b59f8-gvmjr    Successfully assigned default/nginx-6c975b59f8-gvmjr to minikube
""",
        DefaultObject(namespace="shop"),
        [
            (
                "Scheduled",
                "Normal",
                1,
                at("0s"),
                at("0s"),
                "Pod",
                "nginx-6c975b59f8-gvmjr",
                "shop",
                "",
                "",
                "Successfully assigned",
            ),
        ],
        id="get events: <unknown> age, namespace from the default",
    ),
    pytest.param(
        # -o wide: kubectl's column list (printers.go); cells copied from the row of
        # https://github.com/kubernetes/kubernetes/pull/90206 and the kubelet row of
        # https://github.com/kubernetes/kubernetes/issues/29838
        "LAST SEEN   TYPE     REASON    OBJECT                       SUBOBJECT                "
        "SOURCE                                 MESSAGE                  FIRST SEEN   COUNT   NAME\n"
        "13m         Normal   Pulling   pod/nginx-6c975b59f8-gvmjr   spec.containers{nginx}   "
        'kubelet, kubernetes-minion-group-kcbf   pulling image "nginx"    13m          1       '
        "nginx-6c975b59f8-gvmjr.15ae8aeb897f47d4\n",
        None,
        [
            (
                "Pulling",
                "Normal",
                1,
                at("13m"),
                at("13m"),
                "Pod",
                "nginx-6c975b59f8-gvmjr",
                "default",
                "kubelet",
                "kubernetes-minion-group-kcbf",
                'pulling image "nginx"',
            ),
        ],
        id="get events -o wide: columns after the message",
    ),
    pytest.param(
        # https://github.com/kubernetes/kubernetes/issues/47715 (a 1.7 build: "Last", "x3 from")
        """  Type     Reason          Last                 From                            Message
  ----     ------          ----                 ----                            -------
  Warning  BackOff         1h (x3 from 1h)  kubelet, localhost.localdomain  Back-off restarting failed container
""",
        POD,
        [
            (
                "BackOff",
                "Warning",
                3,
                at("1h"),
                at("1h"),
                "Pod",
                "web-0",
                "default",
                "kubelet",
                "localhost.localdomain",
                "Back-off restarting failed container",
            ),
        ],
        id="describe 1.7: Last column, (x3 from 1h)",
    ),
]


@pytest.mark.parametrize(("text", "default", "expected"), LAYOUTS)
def test_layouts(text: str, default: DefaultObject | None, expected: list[tuple[Any, ...]]) -> None:
    parsed = parse(text, default=default)
    assert parsed.problems == []
    got = []
    for event, want in zip(parsed.events, expected, strict=True):
        o, ref = event.obj, event.obj["involvedObject"]
        got.append(
            (
                o["reason"],
                o["type"],
                o["count"],
                o["firstTimestamp"],
                o["lastTimestamp"],
                ref["kind"],
                ref["name"],
                ref["namespace"],
                o["source"]["component"],
                o["source"].get("host", ""),
                o["message"][: len(want[-1])],
            )
        )
    assert got == expected
    assert looks_like_text(text.encode())


def test_rows_are_numbered_and_uids_are_stable() -> None:
    # https://github.com/kubernetes/kubernetes/issues/29838
    text = LAYOUTS[6].values[0]
    first, second = parse(text), parse(text)
    assert [e.row for e in first.events] == [1, 2]
    assert [e.line for e in first.events] == [2, 3]
    uids = [e.obj["metadata"]["uid"] for e in first.events]
    assert uids == [e.obj["metadata"]["uid"] for e in second.events]
    assert len(set(uids)) == 2
    other = parse_text(text, name="other.txt", now_ns=NOW)
    assert not set(uids) & {e.obj["metadata"]["uid"] for e in other.events}


def test_events_normalize_with_their_times_and_series() -> None:
    parsed = parse(LAYOUTS[1].values[0], default=POD)
    event = normalize(parsed.events[0].obj)
    assert (event.count, event.reporting_controller, event.source_host) == (
        8,
        "kubelet",
        "zdlsserver",
    )
    assert event.time_ns == NOW - 15 * 60 * 10**9
    assert event.first_time_ns == NOW - 70 * 60 * 10**9


def test_several_describe_outputs_each_name_their_object() -> None:
    # https://github.com/kubernetes/kubernetes/issues/19589 (the Pod), then
    # https://github.com/kubernetes/kubernetes/pull/6026 (a Node), in one file
    node = (
        "Name:           kubernetes-minion-agug.c.golden-system-455.internal\n"
        "Labels:         <none>\n"
        "CreationTimestamp:  Mon, 23 Mar 2015 14:46:27 -0700\n"
        "ExternalID: 12082605094712375514\n"
        "Events:\n"
        "  FirstSeen             LastSeen            Count   From                                SubobjectPath   Reason      Message\n"
        "  Thu, 26 Mar 2015 15:39:53 -0700   Thu, 26 Mar 2015 15:39:53 -0700 1   {kubelet kubernetes-minion-agug.c.golden-system-455.internal}           starting    Starting kubelet.\n"
    )
    parsed = parse(LAYOUTS[3].values[0] + "\n\n" + node)
    assert parsed.problems == []
    refs = [
        (e.obj["involvedObject"]["kind"], e.obj["involvedObject"]["name"]) for e in parsed.events
    ]
    assert refs == [
        ("Pod", "cluster-ssh-server-ouan5"),
        ("Node", "kubernetes-minion-agug.c.golden-system-455.internal"),
    ]
    assert parsed.events[1].obj["lastTimestamp"] == "2015-03-26T22:39:53Z"
    assert parsed.events[1].obj["count"] == 1


def test_an_explicit_header_reads_rows_cut_below_it() -> None:
    # https://github.com/kubernetes/kubernetes/issues/31768 prints two rows without a header;
    # the header line is that of https://github.com/kubernetes/kubernetes/issues/42867
    header = (
        "  FirstSeen     LastSeen        Count   From                                            "
        "SubObjectPath                   Type            Reason          Message\n"
        "  ---------     --------        -----   ----                                            "
        "-------------                   --------        ------          -------\n"
    )
    rows = LAYOUTS[4].values[0].split("\n", 1)[1]
    assert parse(rows, default=POD).problems  # without it: no header row
    parsed = parse(rows, default=POD, header=header)
    assert parsed.problems == []
    assert [e.obj["reason"] for e in parsed.events] == ["FailedSync"]


def test_unknown_ages_take_the_reference_time_and_are_noted_once() -> None:
    # https://github.com/kubernetes/kubernetes/pull/90206
    text = """Events:
  Type    Reason     Age        From               Message
  ----    ------     ----       ----               -------
  Normal  Scheduled  <unknown>  default-scheduler  Successfully assigned default/nginx-6c975b59f8-gvmjr to minikube
  Normal  Scheduled  <unknown>  default-scheduler  Successfully assigned default/nginx-6c975b59f8-gvmjr to minikube
"""
    parsed = parse(text, default=POD)
    assert [e.obj["lastTimestamp"] for e in parsed.events] == [at("0s")] * 2
    assert [n.line for n in parsed.notes] == [4]
    assert "2 row(s) with age <unknown>" in parsed.notes[0].message


# Broken input: each a one-line problem naming the line, the row skipped, the rest read.
BROKEN = [
    pytest.param(
        # the rows of https://github.com/kubernetes/kubernetes/issues/31768 without their header
        LAYOUTS[4].values[0].split("\n", 1)[1],
        [(1, "Event rows without a header row above them")],
        0,
        id="rows without a header (unknown layout)",
    ),
    pytest.param(
        LAYOUTS[0].values[0] + "  Normal   Scheduled\n",
        [(6, "2 cells where the header has 5 columns (Type Reason Age From Message)")],
        2,
        id="ragged row",
    ),
    pytest.param(
        LAYOUTS[0].values[0].replace("18m ", "18q "),
        [(4, "Age '18q' is not an age")],
        1,
        id="bad age",
    ),
    pytest.param(
        # https://github.com/EnMasseProject/enmasse/pull/2970 with a month 13
        LAYOUTS[7].values[0].replace("2019-07-05T15:01:04Z   2019", "2019-13-05T15:01:04Z   2019"),
        [(2, "LAST SEEN '2019-13-05T15:01:04Z' is not an age")],
        0,
        id="a timestamp that is no time",
    ),
    pytest.param(
        LAYOUTS[0].values[0].replace("Normal   Created", "Info     Created"),
        [(5, "Type 'Info' is not Normal or Warning")],
        1,
        id="bad type",
    ),
    pytest.param(
        LAYOUTS[6].values[0].replace("13m        13m         1  ", "13m        13m         x  ", 1),
        [(2, "COUNT 'x' is not a count")],
        1,
        id="bad count",
    ),
]


@pytest.mark.parametrize(("text", "problems", "events"), BROKEN)
def test_broken_input(text: str, problems: list[tuple[int, str]], events: int) -> None:
    parsed = parse(text, default=POD)
    got = [(p.line, p.message) for p in parsed.problems]
    assert len(got) == len(problems), got
    for (line, message), (want_line, want) in zip(got, problems, strict=True):
        assert line == want_line
        assert message.startswith(want), message
        assert "\n" not in message
    assert len(parsed.events) == events


def test_a_header_that_is_not_one_is_a_problem() -> None:
    parsed = parse("  Warning  x\n", header="NAME   READY   STATUS   RESTARTS   AGE")
    assert parsed.problems[0].message.startswith("header 'NAME   READY")


@pytest.mark.parametrize(
    "text",
    [
        b'{"kind": "Event"}',
        b"apiVersion: v1\nkind: List\nitems: []\n",
        b"NAME    READY   STATUS    RESTARTS   AGE\nweb-0   1/1     Running   0          3m\n",
    ],
)
def test_other_content_is_not_kubectl_events_text(text: bytes) -> None:
    assert not looks_like_text(text)


def test_rows_that_lost_their_header_are_still_kubectl_text() -> None:
    # https://github.com/kubernetes/kubernetes/issues/31768: they are then reported
    rows = LAYOUTS[4].values[0].split("\n", 1)[1]
    assert looks_like_text(rows.encode())
    assert not looks_like_text(b"apiVersion: v1\nkind: Event\ntype: Warning  \n")


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01T00:00:00Z", "3m", ""])
def test_reference_time_must_be_rfc3339(bad: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_reference_time(bad)


def test_no_break_spaces_of_a_browser_copy_read_as_spaces() -> None:
    text = LAYOUTS[0].values[0]
    copied = text.replace("  ", "\xa0 ")
    assert [e.obj for e in parse(copied, default=POD).events] == [
        e.obj for e in parse(text, default=POD).events
    ]


def test_kinds_as_the_api_spells_them_and_objects_without_a_kind() -> None:
    # https://longhorn.io/docs/1.13.0/deploy/upgrade/longhorn-manager/ (rows without a
    # header; the header is kubectl's get events layout)
    rows = (
        "2m33s               Normal    Created                 Pod/longhorn-pre-upgrade-v5tqq"
        "    Created container longhorn-pre-upgrade\n"
        "2m33s               Warning   FailedUpgradePreCheck   /longhorn-pre-upgrade"
        "             failed to upgrade since upgrading from v1.6.2 to v1.8.0 for minor version"
        " is not supported\n"
    )
    parsed = parse(rows, header="LAST SEEN   TYPE      REASON    OBJECT    MESSAGE")
    assert parsed.problems == []
    assert [
        (e.obj["involvedObject"]["kind"], e.obj["involvedObject"]["name"]) for e in parsed.events
    ] == [
        ("Pod", "longhorn-pre-upgrade-v5tqq"),
        ("", "longhorn-pre-upgrade"),
    ]


def test_a_terminal_wrap_continues_the_message() -> None:
    # https://github.com/kserve/kserve/issues/2179 (wrapped at the terminal's width; the
    # header is kubectl's get events -A layout)
    rows = (
        "istio-system      2m20s       Warning   SyncLoadBalancerFailed    service/istio-ingressgateway"
        "                        Error syncing load balancer: failed to ensure load b\n"
        "alancer: TooManyLoadBalancers: Exceeded quota of account 809251082950\n"
        "                  status code: 400, request id: 5b9b9a1d-ddfb-424e-a406-4b276d2847a2\n"
        "istio-system      13s         Warning   FailedGetResourceMetric        horizontalpodautoscaler/istio-ingressgateway"
        "        failed to get cpu utilization: unable to get me\n"
    )
    parsed = parse(rows, header="NAMESPACE   LAST SEEN   TYPE   REASON   OBJECT   MESSAGE")
    assert parsed.problems == []
    assert [e.row for e in parsed.events] == [1, 2]
    assert parsed.events[0].obj["message"] == (
        "Error syncing load balancer: failed to ensure load b\n"
        "alancer: TooManyLoadBalancers: Exceeded quota of account 809251082950\n"
        "status code: 400, request id: 5b9b9a1d-ddfb-424e-a406-4b276d2847a2"
    )
    assert parsed.events[1].obj["involvedObject"]["kind"] == "HorizontalPodAutoscaler"
