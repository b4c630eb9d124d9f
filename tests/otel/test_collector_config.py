"""otel/*.yaml: components exist in the Collector we build, pipelines are wired, fields are set.

The static checks run everywhere; test_collector_validates_* run the real Collector
(tests/servers/build.sh otelcol, from tests/servers/otelcol/builder-config.yaml).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.servers import server_binary

ROOT = Path(__file__).resolve().parents[2]
OTEL = ROOT / "otel"
MANIFEST = ROOT / "tests" / "servers" / "otelcol" / "builder-config.yaml"
CONFIGS = sorted(OTEL.glob("*.yaml"))
GATEWAY = OTEL / "gateway.yaml"
KINDS = {"receivers": "receivers", "processors": "processors", "exporters": "exporters",
         "extensions": "extensions"}

# Component types of the modules in the builder manifest, from each module's metadata.yaml
# (`type`, and `deprecated_type`: the alias the factory also registers) at v0.152.0, and
# the signals each supports. A module added to the manifest must be added here.
MODULES: dict[str, tuple[str, tuple[str, ...], frozenset[str]]] = {
    "go.opentelemetry.io/collector/receiver/otlpreceiver": ("receivers", ("otlp",), frozenset({"logs", "metrics", "traces"})),
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8seventsreceiver": ("receivers", ("k8s_events",), frozenset({"logs"})),
    "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8sobjectsreceiver": ("receivers", ("k8s_objects", "k8sobjects"), frozenset({"logs"})),
    "go.opentelemetry.io/collector/processor/memorylimiterprocessor": ("processors", ("memory_limiter",), frozenset({"logs", "metrics", "traces"})),
    "go.opentelemetry.io/collector/processor/batchprocessor": ("processors", ("batch",), frozenset({"logs", "metrics", "traces"})),
    "github.com/open-telemetry/opentelemetry-collector-contrib/processor/resourceprocessor": ("processors", ("resource",), frozenset({"logs", "metrics", "traces"})),
    "github.com/open-telemetry/opentelemetry-collector-contrib/processor/groupbyattrsprocessor": ("processors", ("groupbyattrs",), frozenset({"logs", "metrics", "traces"})),
    "github.com/open-telemetry/opentelemetry-collector-contrib/processor/transformprocessor": ("processors", ("transform",), frozenset({"logs", "metrics", "traces"})),
    "github.com/open-telemetry/opentelemetry-collector-contrib/processor/attributesprocessor": ("processors", ("attributes",), frozenset({"logs", "metrics", "traces"})),
    "go.opentelemetry.io/collector/exporter/otlphttpexporter": ("exporters", ("otlp_http", "otlphttp"), frozenset({"logs", "metrics", "traces"})),
    "go.opentelemetry.io/collector/exporter/otlpexporter": ("exporters", ("otlp_grpc", "otlp"), frozenset({"logs", "metrics", "traces"})),
    "go.opentelemetry.io/collector/exporter/debugexporter": ("exporters", ("debug",), frozenset({"logs", "metrics", "traces"})),
    "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter": ("exporters", ("file",), frozenset({"logs", "metrics", "traces"})),
    "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter": ("exporters", ("prometheus",), frozenset({"metrics"})),
    "github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension": ("extensions", ("health_check",), frozenset()),
    "github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage": ("extensions", ("file_storage",), frozenset()),
    "github.com/open-telemetry/opentelemetry-collector-contrib/extension/k8sleaderelector": ("extensions", ("k8s_leader_elector",), frozenset()),
}


def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text())


def available() -> dict[str, dict[str, frozenset[str]]]:
    """kind -> type -> signals, for the modules the manifest builds."""
    out: dict[str, dict[str, frozenset[str]]] = {k: {} for k in KINDS}
    for kind in KINDS:
        for entry in manifest().get(kind, []):
            module = entry["gomod"].split()[0]
            assert module in MODULES, f"{module} is in the manifest but not in this test's MODULES"
            for type_ in MODULES[module][1]:
                out[kind][type_] = MODULES[module][2]
    return out


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def type_of(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def signal_of(pipeline_id: str) -> str:
    return pipeline_id.split("/", 1)[0]


@pytest.fixture(params=CONFIGS, ids=lambda p: p.name)
def config(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load(request.param)


def test_there_is_a_gateway_and_a_k8s_events_variant() -> None:
    assert {p.name for p in CONFIGS} >= {"gateway.yaml", "gateway-k8s-events.yaml"}


def test_manifest_modules_are_all_known_and_pinned_to_one_release() -> None:
    versions = {entry["gomod"].split()[1] for kind in KINDS for entry in manifest().get(kind, [])}
    assert versions == {"v0.152.0"}
    assert set(MODULES) == {entry["gomod"].split()[0] for kind in KINDS for entry in manifest().get(kind, [])}
    assert "otlp_http" in available()["exporters"] and "otlphttp" in available()["exporters"]


def test_every_component_exists_in_the_built_collector(config: dict[str, Any]) -> None:
    have = available()
    for kind in KINDS:
        for component_id in config.get(kind) or {}:
            assert type_of(component_id) in have[kind], f"{kind}: {component_id} is not in {MANIFEST.name}"
            assert type_of(component_id) not in ("otlphttp",), f"{component_id}: use the type name otlp_http"


def test_pipelines_reference_defined_components_and_every_defined_one_is_used(config: dict[str, Any]) -> None:
    service = config["service"]
    used: dict[str, set[str]] = {k: set() for k in KINDS}
    have = available()
    for pipeline_id, pipeline in service["pipelines"].items():
        signal = signal_of(pipeline_id)
        assert signal in ("logs", "metrics", "traces"), pipeline_id
        assert pipeline.get("receivers") and pipeline.get("exporters"), pipeline_id
        for kind in ("receivers", "processors", "exporters"):
            for component_id in pipeline.get(kind, []):
                assert component_id in (config.get(kind) or {}), f"{pipeline_id}: {component_id} not defined"
                assert signal in have[kind][type_of(component_id)], f"{pipeline_id}: {component_id} has no {signal}"
                used[kind].add(component_id)
            assert len(pipeline.get(kind, [])) == len(set(pipeline.get(kind, []))), pipeline_id
    used["extensions"] = set(service.get("extensions", []))
    for kind in KINDS:
        assert used[kind] == set(config.get(kind) or {}), f"{kind} defined but unused, or used but undefined"


def test_processors_are_in_the_recommended_order(config: dict[str, Any]) -> None:
    for pipeline_id, pipeline in config["service"]["pipelines"].items():
        processors = pipeline["processors"]
        assert processors[0] == "memory_limiter", pipeline_id
        assert processors[-1] == "batch", pipeline_id
        assert processors.index("resource/cluster") < processors.index("batch")
        if signal_of(pipeline_id) == "logs":
            assert processors.index("resource/cluster") < processors.index("groupbyattrs/namespace")


def test_required_fields(config: dict[str, Any]) -> None:
    receivers, processors, exporters = config["receivers"], config["processors"], config["exporters"]
    assert receivers["otlp"]["protocols"]["grpc"]["endpoint"].endswith(":4317")
    assert receivers["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")
    limiter = processors["memory_limiter"]
    assert limiter["check_interval"] and (limiter.get("limit_mib") or limiter.get("limit_percentage"))
    (cluster,) = processors["resource/cluster"]["attributes"]
    assert cluster["key"] == "k8s.cluster.name" and cluster["action"] == "insert"  # never overwrite the sender's
    assert processors["groupbyattrs/namespace"]["keys"] == ["k8s.namespace.name"]
    loki = exporters["otlp_http/loki"]
    assert re.fullmatch(r"\$\{env:LOKI_OTLP_ENDPOINT:-https?://[^}]+/otlp\}", loki["endpoint"])
    assert exporters["prometheus"]["endpoint"].endswith(":8889")
    statements = processors["transform/cluster-label"]["metric_statements"][0]["statements"]
    assert any('attributes["cluster"]' in s and 'resource.attributes["k8s.cluster.name"]' in s for s in statements)
    assert config["extensions"]["health_check"]["endpoint"].endswith(":13133")


def test_every_environment_variable_has_a_default(config: dict[str, Any]) -> None:
    text = yaml.safe_dump(config)
    references = re.findall(r"\$\{env:([A-Z0-9_]+)(:-[^}]*)?\}", text)
    assert references
    for name, default in references:
        assert default, f"${{env:{name}}} has no default: the config would not start without it"


def test_the_k8s_events_variant_is_the_gateway_plus_the_receiver() -> None:
    gateway, variant = load(GATEWAY), load(OTEL / "gateway-k8s-events.yaml")
    for kind in KINDS:
        for component_id, settings in (gateway.get(kind) or {}).items():
            assert variant[kind][component_id] == settings, f"{kind}: {component_id} differs from gateway.yaml"
    for pipeline_id, pipeline in gateway["service"]["pipelines"].items():
        assert variant["service"]["pipelines"][pipeline_id] == pipeline
    extra = variant["service"]["pipelines"]["logs/k8s_events"]
    assert extra["receivers"] == ["k8s_events"]
    assert extra["exporters"] == gateway["service"]["pipelines"]["logs"]["exporters"]  # the same Loki
    (name,) = variant["processors"]["resource/k8s-events"]["attributes"]
    assert name["key"] == "service.name" and name["value"] != "kubevents"  # told apart in LogQL
    assert "resource/k8s-events" in extra["processors"]


# --- the real Collector ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def otelcol() -> Path:
    """The Collector built from the manifest (built now when missing: this takes minutes)."""
    return server_binary("otelcol")


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_collector_validates_the_config(otelcol: Path, path: Path) -> None:
    out = subprocess.run([str(otelcol), "validate", f"--config={path}"], capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("breakage", [
    ("set(datapoint.attributes", "sett(datapoint.attributes"),  # an OTTL function that does not exist
    ("exporters: [otlp_http/loki]", "exporters: [otlp_http/lokki]"),  # an undefined exporter
    ("check_interval: 1s", "check_interval: 1s\n    limit_mebibytes: 10"),  # an unknown field
])
def test_collector_validate_rejects_a_broken_config(otelcol: Path, tmp_path: Path, breakage: tuple[str, str]) -> None:
    old, new = breakage
    text = GATEWAY.read_text()
    assert old in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace(old, new, 1))
    out = subprocess.run([str(otelcol), "validate", f"--config={broken}"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0


@pytest.mark.timeout(3600)
def test_this_tests_component_table_matches_what_the_collector_reports(otelcol: Path) -> None:
    """`otelcol components` names each listed component with its module: it must agree with MODULES.
    (the listing leaves out the two exporters with a deprecated alias; the
    validate tests above prove otlp_http is accepted.)"""
    out = subprocess.run([str(otelcol), "components"], capture_output=True, text=True, timeout=60, check=True)
    listed = yaml.safe_load(out.stdout)
    seen = 0
    for kind in KINDS:
        for component in listed[kind]:
            module = component["module"].split()[0]
            assert MODULES[module][0] == kind and component["name"] in MODULES[module][1], component
            seen += 1
    assert seen >= len(MODULES) - 2
