"""Rule packs: read after their layer, switched off by name, never changing a core Event."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from kubevents.app import classifier_from, correlator_from
from kubevents.enrich.classify import compile_classifier, load_classifier
from kubevents.enrich.rules import (
    RULE_KINDS,
    LineDict,
    pack_files,
    read_rule_file,
    rule_files,
    rule_files_by_kind,
    shipped_rules_dir,
)
from kubevents.errors import RulesError
from kubevents.model import KubeEvent, ObjectRef
from kubevents.ruletesting.cases import shorthand_event
from kubevents.settings import load_settings

RULES = shipped_rules_dir()
PACKS = sorted(pack_files(RULES))
CORE_TESTS = [RULES / "tests" / "classification_test.yaml", RULES / "tests" / "catalog_test.yaml"]


def core_cases() -> list[tuple[str, KubeEvent]]:
    cases = []
    for path in CORE_TESTS:
        for case in read_rule_file(path).data["tests"]:
            assert isinstance(case, LineDict)
            where = f"{path.name}:{case.line}"
            cases.append((f"{where} {case['name']}", shorthand_event(case["event"], where)))
    return cases


CORE = load_classifier(include_shipped=True, disabled_packs=PACKS)
ALL = load_classifier()


def test_the_shipped_packs_are_there() -> None:
    # The packs issue #17 asks for, by file name.
    assert set(PACKS) >= {
        "cert-manager", "karpenter", "cluster-autoscaler", "csi", "argo-cd", "argo-rollouts",
        "flux", "istio", "keda", "velero", "external-secrets", "kyverno", "gatekeeper",
        "crossplane", "longhorn", "rook-ceph", "prometheus-operator", "ingress-nginx",
        "aws-load-balancer-controller", "cloud-controller-manager", "kubernetes", "aws-vpc",
    }  # fmt: skip


@pytest.mark.parametrize(("name", "event"), core_cases(), ids=lambda v: str(v)[:60])
def test_no_pack_changes_an_event_the_core_rules_classify(name: str, event: KubeEvent) -> None:
    core = CORE.classify(event)
    if core.rule_id is None:
        # The core rules leave it to the defaults (an operator's Event in the core tests):
        # that is what the packs are for, so a pack may classify it.
        return
    assert ALL.classify(event) == core, name


def test_the_core_tests_hold_operator_events_that_packs_now_classify() -> None:
    # The invariant above must not hold vacuously: some core cases are operator Events the
    # core rules leave to the defaults, and a pack classifies them.
    taken = [
        name
        for name, event in core_cases()
        if CORE.classify(event).rule_id is None and ALL.classify(event).rule_id is not None
    ]
    assert (
        any("helm-controller" in n or "HelmRelease" in n or "Issuing" in n for n in taken) or taken
    )


def test_every_pack_rule_id_starts_with_its_pack() -> None:
    for file in rule_files("classification", dirs=[], include_shipped=True):
        if file.pack:
            for rule in file.data["rules"]:
                assert rule["id"].startswith(f"{file.pack}."), (file.path, rule["id"])


@pytest.mark.parametrize("pack", PACKS)
def test_switching_a_pack_off_removes_its_rules_and_only_its_rules(pack: str) -> None:
    ids = {r.id for r in ALL.rules}
    off = {r.id for r in load_classifier(disabled_packs=[pack]).rules}
    assert ids - off == {i for i in ids if i.startswith(f"{pack}.")}
    assert ids - off, f"pack {pack} has no classification rules"


def test_the_setting_switches_a_pack_off_for_the_classifier_and_the_correlator() -> None:
    cert = KubeEvent(
        uid="u",
        name="n",
        namespace="shop",
        reason="Issuing",
        type="Normal",
        # cert-manager pkg/controller/certificates/issuing/issuing_controller.go
        message="The certificate has been successfully issued",
        regarding=ObjectRef(kind="Certificate", namespace="shop", name="web-tls"),
        time_ns=0,
        first_time_ns=0,
        reporting_controller="cert-manager-certificates-issuing",
    )
    on = classifier_from(load_settings(env={}))
    off_settings = load_settings(env={"KUBEVENTS_RULES_DISABLED_PACKS": "cert-manager,istio"})
    assert off_settings.rules.disabled_packs == ("cert-manager", "istio")
    assert on.classify(cert).rule_id == "cert-manager.issuance-progress"
    assert classifier_from(off_settings).classify(cert).rule_id is None
    with_packs = correlator_from(load_settings(env={}))
    without = correlator_from(off_settings)
    assert with_packs is not None and without is not None
    assert {r.id for r in with_packs.rules.rules} - {r.id for r in without.rules.rules} == {
        r.id for r in with_packs.rules.rules if r.id.startswith("cert-manager.")
    }


def test_an_unknown_pack_name_is_a_one_line_error_with_a_hint() -> None:
    with pytest.raises(RulesError) as e:
        load_classifier(disabled_packs=["cert-manger"])
    message = str(e.value)
    assert message.startswith("rules.disabled_packs: unknown pack 'cert-manger'")
    assert "(did you mean 'cert-manager'?)" in message
    assert "\n" not in message


def pack_dir(tmp_path: Path, name: str, body: str) -> Path:
    (tmp_path / "packs").mkdir()
    path = tmp_path / "packs" / f"{name}.yaml"
    path.write_text("version: 1\nkind: classification\n" + textwrap.dedent(body))
    return path


def test_a_pack_rule_without_the_pack_prefix_is_refused(tmp_path: Path) -> None:
    path = pack_dir(
        tmp_path,
        "acme",
        """
        rules:
          - id: container-created
            match: {reason: Created, component: acme}
            category: Config
            severity: info
        """,
    )
    with pytest.raises(RulesError) as e:
        load_classifier([tmp_path], include_shipped=False)
    assert str(e.value) == (
        f"{path}:5: rule 'container-created': a rule of pack 'acme' needs an id starting with 'acme.'"
    )


def test_a_user_layer_can_hold_packs_and_switch_them_off(tmp_path: Path) -> None:
    pack_dir(
        tmp_path,
        "acme",
        """
        rules:
          - id: acme.reconciled
            match: {reason: Reconciled, component: 'acme-*'}
            category: Config
            severity: info
        """,
    )
    event = shorthand_event(
        {"reason": "Reconciled", "type": "Normal", "component": "acme-operator"}, "test"
    )
    assert load_classifier([tmp_path]).classify(event).rule_id == "acme.reconciled"
    assert load_classifier([tmp_path], disabled_packs=["acme"]).classify(event).rule_id is None


@pytest.mark.parametrize(
    ("component", "matches"),
    [
        ("cert-manager", True),
        ("cert-manager-certificates-issuing", True),
        ("managed/rds.aws.crossplane.io/dbinstance", False),
        ("kubelet", False),
        ("", False),
    ],
)
def test_a_component_glob_matches_the_reporting_controller(component: str, matches: bool) -> None:
    rule_file = read_rule_file(RULES / "packs" / "cert-manager.yaml")
    classifier = compile_classifier([rule_file])
    event = shorthand_event({"reason": "Issuing", "type": "Normal", "component": component}, "test")
    assert (classifier.classify(event).rule_id is not None) is matches


def test_a_component_glob_counts_as_one_condition() -> None:
    # reason + component glob (2) beats the core reason-only rule for a shared reason.
    event = shorthand_event(
        {
            "reason": "Failed",
            "kind": "CertificateRequest",
            "component": "cert-manager-certificaterequests-issuer-acme",
        },
        "test",
    )
    assert ALL.classify(event).rule_id == "cert-manager.issuance-failed"


def test_every_pack_names_its_source_category_and_severity() -> None:
    for name in PACKS:
        for path in pack_files(RULES)[name]:
            header = path.read_text(encoding="utf-8").split("\nversion:")[0]
            if path.name == f"{name}.yaml":
                assert re.search(r"Sources? read", header), path
                assert re.search(r"@ ?[0-9a-f]{7,}|id \d+", header), f"{path}: no commit cited"
                assert "Category" in header and "Severity" in header, path
            else:  # a pack's other files cite the source files their links rest on
                assert re.search(r"\.go\b|@ ?[0-9a-f]{7,}", header), f"{path}: no source cited"


PACK_TESTS = sorted((RULES / "packs" / "tests").glob("*_test.yaml"))


@pytest.mark.parametrize("path", PACK_TESTS, ids=lambda p: p.name)
def test_the_pack_rule_tests_pass(path: Path) -> None:
    from kubevents.ruletesting.classification import run_test_file
    from kubevents.ruletesting.correlation import run_correlation_test_file

    kind = read_rule_file(path).kind
    results = (
        run_test_file(path, lambda: ALL)
        if kind == "classification_test"
        else run_correlation_test_file(path, default_classifier=lambda: ALL)
    )
    assert results and [r for r in results if r.failure] == []


def test_every_pack_has_rule_tests_and_every_pack_correlation_rule_links_something() -> None:
    import kubevents.ruletesting.correlation as runner
    from kubevents.enrich.correlation_rules import load_correlation_rules

    tested = {p.name.split("_test")[0].split(".")[0] for p in PACK_TESTS}
    assert set(PACKS) <= tested, f"packs without tests: {sorted(set(PACKS) - tested)}"
    joined: dict[str, int] = {}
    original = runner.correlate_timeline

    def spy(correlator, *args, **kwargs):  # type: ignore[no-untyped-def]
        outcome = original(correlator, *args, **kwargs)
        for rule, n in correlator.joins.items():
            joined[rule] = joined.get(rule, 0) + n
        return outcome

    runner.correlate_timeline = spy  # type: ignore[assignment]
    try:
        for path in PACK_TESTS:
            if read_rule_file(path).kind == "correlation_test":
                runner.run_correlation_test_file(path, default_classifier=lambda: ALL)
    finally:
        runner.correlate_timeline = original  # type: ignore[assignment]
    # An `overcomes` rule links nothing by design: its table test shows what it keeps apart.
    pack_rules = {r.id for r in load_correlation_rules().rules if "." in r.id and not r.overcomes}
    assert pack_rules, "no pack correlation rules"
    assert sorted(pack_rules - set(joined)) == []


def test_rules_check_lists_the_packs_and_which_are_off() -> None:
    import io

    from kubevents.app import rules_check

    out = io.StringIO()
    settings = load_settings(env={"KUBEVENTS_RULES_DISABLED_PACKS": "istio"})
    assert rules_check(settings, [], out) == 0
    lines = out.getvalue().splitlines()
    assert lines[1] == f"{len(PACKS)} packs ({len(PACKS) - 1} on, 1 off):"
    listed = {line.split()[0]: line.split()[1] for line in lines[2:]}
    assert set(listed) == set(PACKS)
    assert listed["istio"] == "off" and listed["cert-manager"] == "on"


def test_rules_check_refuses_an_unknown_disabled_pack() -> None:
    import io

    from kubevents.app import rules_check

    settings = load_settings(env={"KUBEVENTS_RULES_DISABLED_PACKS": "karpentre"})
    with pytest.raises(RulesError, match="did you mean 'karpenter'"):
        rules_check(settings, [], io.StringIO())


def test_the_core_correlation_tests_pass_with_every_pack_on(tmp_path: Path) -> None:
    # The core cases, run against the core and every pack's correlation rules (and the
    # classifier with the packs): no pack rule pulls a core Event into another incident.
    from kubevents.enrich.correlation_rules import compile_correlation_rules
    from kubevents.ruletesting.correlation import run_correlation_test_file

    source = RULES / "tests" / "correlation_test.yaml"
    text = source.read_text(encoding="utf-8")
    assert "rule_files: [../correlation.yaml]\n" in text
    copy = tmp_path / "correlation_test.yaml"
    copy.write_text(text.replace("rule_files: [../correlation.yaml]\n", ""), encoding="utf-8")
    everything = compile_correlation_rules(rule_files("correlation", dirs=[]))
    assert any(r.startswith("cert-manager.") for r in everything.rules_by_id)
    results = run_correlation_test_file(
        copy, default_rules=lambda: everything, default_classifier=lambda: ALL
    )
    assert len(results) > 10
    assert [f"{r.name}: {r.failure}" for r in results if r.failure] == []


@pytest.mark.parametrize("disabled", [(), tuple(PACKS[:1])])
def test_every_kind_read_at_once_is_what_each_kind_read_alone_gives(
    disabled: tuple[str, ...],
) -> None:
    by_kind = rule_files_by_kind(dirs=[], include_shipped=True, disabled_packs=disabled)
    assert set(by_kind) == set(RULE_KINDS)
    for kind in RULE_KINDS:
        alone = rule_files(kind, dirs=[], include_shipped=True, disabled_packs=disabled)
        assert [(f.path, f.pack, f.data) for f in by_kind[kind]] == [
            (f.path, f.pack, f.data) for f in alone
        ]
    assert not any(f.pack in disabled for files in by_kind.values() for f in files)
