"""deploy/compose: the local stack, checked without a Docker engine.

The compose file is loaded by compose-go (the loader of `docker compose config`, built by
tests/deploy/build.sh), Loki's config by the real Loki, Prometheus' by promtool, and the
wiring between them (service names, ports, mounted files) against each config.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
import yaml

from kubevents.settings import load_settings
from tests.rules.rules_support import load_grafana

ROOT = Path(__file__).resolve().parents[2]
# the first test may build kustomize/composecheck (tests/deploy/build.sh): minutes on a fresh machine
pytestmark = pytest.mark.timeout(1800)

COMPOSE = ROOT / "deploy" / "compose"
FILE = COMPOSE / "compose.yaml"
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"


@pytest.fixture(scope="module")
def project(composecheck: Path) -> dict[str, Any]:
    out = subprocess.run([str(composecheck), str(FILE)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def service(project: dict[str, Any], name: str) -> dict[str, Any]:
    return project["services"][name]


def mounts(project: dict[str, Any], name: str) -> dict[str, Path]:
    """container path -> host path of a service's bind mounts."""
    return {v["target"]: Path(v["source"]) for v in service(project, name).get("volumes", []) if v["type"] == "bind"}


def mounted(project: dict[str, Any], name: str, host: Path) -> str:
    (target,) = [t for t, s in mounts(project, name).items() if s == host]
    return target


def published(project: dict[str, Any], name: str) -> set[int]:
    return {int(p["target"]) for p in service(project, name).get("ports", [])}


def arg(argv: list[str], flag: str) -> str:
    (value,) = [a.split("=", 1)[1] for a in argv if a.startswith(f"{flag}=")]
    return value


def test_compose_go_rejects_an_invalid_file(composecheck: Path, tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(FILE.read_text().replace("read_only: true", "read_onlyy: true", 1))
    out = subprocess.run([str(composecheck), str(broken)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "read_onlyy" in out.stderr


def test_the_stack_has_its_five_services(project: dict[str, Any]) -> None:
    assert set(project["services"]) == {"kubevents", "otelcol", "loki", "prometheus", "grafana"}


def test_every_image_is_pinned_and_kubevents_is_built_from_the_dockerfile(project: dict[str, Any]) -> None:
    for name, svc in project["services"].items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert (repo and tag and tag != "latest" and re.search(r"\d+\.\d+", tag)) or name == "kubevents", image
    build = service(project, "kubevents")["build"]
    assert Path(build["context"]) == ROOT and (ROOT / build["dockerfile"]) == ROOT / "deploy" / "Dockerfile"


def test_every_mounted_file_exists(project: dict[str, Any]) -> None:
    for name in project["services"]:
        for target, source in mounts(project, name).items():
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"


def test_the_collector_runs_the_gateway_config_and_sends_to_loki(project: dict[str, Any]) -> None:
    otelcol = service(project, "otelcol")
    config_path = arg(otelcol["command"], "--config")
    assert mounts(project, "otelcol")[config_path] == ROOT / "otel" / "gateway.yaml"
    gateway = yaml.safe_load((ROOT / "otel" / "gateway.yaml").read_text())
    loki_url = urlsplit(otelcol["environment"]["LOKI_OTLP_ENDPOINT"])
    assert "LOKI_OTLP_ENDPOINT" in gateway["exporters"]["otlp_http/loki"]["endpoint"]
    loki = yaml.safe_load((COMPOSE / "loki.yaml").read_text())
    assert (loki_url.hostname, loki_url.port, loki_url.path) == ("loki", loki["server"]["http_listen_port"], "/otlp")
    assert otelcol["image"].endswith(":" + yaml.safe_load(
        (ROOT / "tests/servers/otelcol/builder-config.yaml").read_text())["dist"]["version"])
    ports = {int(e["endpoint"].rsplit(":", 1)[1]) for e in gateway["receivers"]["otlp"]["protocols"].values()}
    assert ports <= published(project, "otelcol")


def test_kubevents_sends_to_the_collector_and_serves_metrics(project: dict[str, Any], tmp_path: Path) -> None:
    kubevents = service(project, "kubevents")
    host_script = mounts(project, "kubevents")[kubevents["entrypoint"][1]]
    assert host_script == COMPOSE / "replay-loop.py"
    recording, *flags = kubevents["command"]
    assert mounts(project, "kubevents")[recording] == DEMO
    settings = load_settings(str(mounts(project, "kubevents")[arg(flags, "--config")]), env={})
    (sink,) = settings.sink_specs
    kind, url = sink.kind, sink.arg
    gateway = yaml.safe_load((ROOT / "otel" / "gateway.yaml").read_text())
    grpc_port = int(gateway["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(":", 1)[1])
    assert kind == "otlp" and (urlsplit(url).hostname, urlsplit(url).port) == ("otelcol", grpc_port)
    assert settings.cluster_name and not settings.metrics.otlp  # Prometheus scrapes it: no second copy
    assert settings.metrics.port in published(project, "kubevents")
    assert kubevents["read_only"] and kubevents["user"] == "65532:65532" and kubevents["cap_drop"] == ["ALL"]


def test_prometheus_scrapes_what_the_stack_serves(project: dict[str, Any], tmp_path: Path) -> None:
    prometheus = service(project, "prometheus")
    config_file = mounts(project, "prometheus")[arg(prometheus["command"], "--config.file")]
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed (make test installs Debian's prometheus package)"
    check = subprocess.run([promtool, "check", "config", "--syntax-only", str(config_file)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    config = yaml.safe_load(config_file.read_text())
    targets = {job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
               for job in config["scrape_configs"]}
    kubevents = load_settings(str(COMPOSE / "kubevents.yaml"), env={})
    gateway = yaml.safe_load((ROOT / "otel" / "gateway.yaml").read_text())
    telemetry = gateway["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]["prometheus"]
    assert targets == {
        "kubevents": [f"kubevents:{kubevents.metrics.port}"],
        "otelcol-exporter": [f"otelcol:{gateway['exporters']['prometheus']['endpoint'].rsplit(':', 1)[1]}"],
        "otelcol": [f"otelcol:{telemetry['port']}"],
    }
    # every series of kubevents gets the cluster label its records carry
    (kubevents_job,) = [j for j in config["scrape_configs"] if j["job_name"] == "kubevents"]
    assert kubevents_job["static_configs"][0]["labels"]["cluster"] == kubevents.cluster_name
    # the alert rules select the job names this config gives
    alerts = "".join(p.read_text() for p in (ROOT / "rules" / "alerts").glob("*.yaml"))
    assert set(re.findall(r'job\s*=~?\s*"([^"]+)"', alerts)) <= set(targets)
    # the alert rules are mounted where rule_files looks
    (pattern,) = config["rule_files"]
    rules_dir = mounts(project, "prometheus")[str(Path(pattern).parent)]
    assert rules_dir == ROOT / "rules" / "alerts" and list(rules_dir.glob(Path(pattern).name))


def test_the_loki_config_mounts_the_ruler_rules_and_publishes_its_port(project: dict[str, Any]) -> None:
    """Read, not run: Loki is under the AGPL, which this project neither builds nor runs
    (docs/testing.md). The compose stack still names its image for users who run it."""
    config_file = mounts(project, "loki")[arg(service(project, "loki")["command"], "-config.file")]
    config = yaml.safe_load(config_file.read_text())
    assert mounts(project, "loki")[config["ruler"]["storage"]["local"]["directory"]] == ROOT / "rules" / "loki"
    assert config["server"]["http_listen_port"] in published(project, "loki")
    assert config["limits_config"]["retention_period"]


def test_grafana_provisioning_points_at_the_stack(project: dict[str, Any]) -> None:
    grafana = mounts(project, "grafana")
    provisioning = grafana["/etc/grafana/provisioning"]
    assert provisioning == ROOT / "grafana" / "provisioning"
    # the uid variables as compose gives them to Grafana (their defaults, interpolated)
    env = {k: v for k, v in service(project, "grafana")["environment"].items() if k.startswith("KUBEVENTS_")}
    assert env == {"KUBEVENTS_PROMETHEUS_UID": "prometheus", "KUBEVENTS_LOKI_UID": "loki"}
    datasources = {d["uid"]: d for f in (provisioning / "datasources").glob("*.yaml")
                   for d in load_grafana(f, env)["datasources"]}
    loki_port = yaml.safe_load((COMPOSE / "loki.yaml").read_text())["server"]["http_listen_port"]
    assert datasources["prometheus"]["url"] == "http://prometheus:9090" and 9090 in published(project, "prometheus")
    assert datasources["loki"]["url"] == f"http://loki:{loki_port}"
    providers = [p for f in (provisioning / "dashboards").glob("*.yaml")
                 for p in yaml.safe_load(f.read_text())["providers"]]
    assert providers
    for provider in providers:
        path = provider["options"]["path"]
        assert grafana[path] == ROOT / "grafana" / "dashboards" and list(grafana[path].glob("*.json"))


def test_the_replay_loop_plays_rounds_of_new_events_at_the_current_time(tmp_path: Path) -> None:
    """Two rounds at 3000x speed: every record once, times shifted to now, new uids per round."""
    plain = tmp_path / "plain.jsonl"
    subprocess.run([str(Path(sys.executable).parent / "kubevents"), "replay", str(DEMO), "--no-summary", "--sink",
                    f"jsonl:{plain}"], check=True, capture_output=True, timeout=120)
    looped = tmp_path / "looped.jsonl"
    began = time.time()
    out = subprocess.run(
        [sys.executable, str(COMPOSE / "replay-loop.py"), str(DEMO), "--start=2026-11-20T10:00:00Z",
         "--speed=3000", "--pause=0", "--rounds=2"],
        capture_output=True, text=True, timeout=120,
        env={"KUBEVENTS_SINKS": f"jsonl:{looped}", "KUBEVENTS_METRICS_PORT": "0", "KUBEVENTS_CLUSTER_NAME": "demo",
             "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr
    ended = time.time()
    records = [orjson.loads(line) for line in looped.read_bytes().splitlines()]
    events = [r for r in records if r["event_name"] == "k8s.event"]
    plain_events = [r for r in (orjson.loads(x) for x in plain.read_bytes().splitlines())
                    if r["event_name"] == "k8s.event"]
    assert len(events) == 2 * len(plain_events)  # every Event of each round, once
    uids = [r["attributes"]["k8s.event.uid"] for r in events]
    first, second = set(uids[: len(plain_events)]), set(uids[len(plain_events):])
    assert first and not first & second  # round 2 is new Events, not repeats

    def stamp(r: dict[str, Any]) -> float:
        return dt.datetime.fromisoformat(r["timestamp"][:19] + "+00:00").timestamp()

    # the recording's 10:00 is "now" (±1 h of initial list before it; 37 min after it at 3000x is ~1 s)
    assert all(began - 3600 <= stamp(r) <= ended + 40 * 60 for r in events)
    assert max(stamp(r) for r in events) >= began + 30 * 60
    assert {r["resource"]["k8s.cluster.name"] for r in records} == {"demo"}
