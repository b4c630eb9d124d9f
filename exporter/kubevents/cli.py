"""Command line: parse arguments, load settings, call into ``app``. No logic here.

Exit codes: 0 success; 1 the command ran and failed (a rule test failed,
nothing could be read); 2 the invocation or configuration is wrong.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from kubevents import __version__, app
from kubevents.errors import ConfigError, KubeventsError, OutputError, RulesError, output_error
from kubevents.settings import Settings, load_settings, unknown_env

logger = logging.getLogger("kubevents")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config file (env KUBEVENTS_CONFIG)")
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="level of kubevents' own logs",
    )
    parser.add_argument(
        "--rules", metavar="DIR", action="append", help="extra rules directory (repeatable)"
    )
    parser.add_argument("--cluster-name", metavar="NAME", help="k8s.cluster.name on every record")


SINK_HELP = "console | jsonl[:PATH] | otlp[:ENDPOINT] | otlp+http[:URL] | loki:URL (repeatable)"


def _delivery(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spool",
        metavar="DIR",
        help="on-disk spool for network sinks: survives outages and restarts",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``kubevents`` command."""
    parser = argparse.ArgumentParser(
        prog="kubevents",
        description="Kubernetes Events as classified, correlated OpenTelemetry logs and metrics.",
    )
    parser.add_argument("--version", action="version", version=f"kubevents {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    replay = sub.add_parser("replay", help="replay recorded Events (kubectl dumps, watch logs)")
    _common(replay)
    replay.add_argument(
        "files", nargs="+", metavar="FILE", help="input file, .gz accepted, - for stdin"
    )
    replay.add_argument("--sink", action="append", metavar="SPEC", help=SINK_HELP)
    replay.add_argument(
        "--now",
        metavar="TIME",
        help="the time kubectl text's ages count back from, RFC 3339"
        " (default: the file's modification time; stdin: the current time)",
    )
    replay.add_argument("--no-summary", action="store_true", help="do not print the summary")
    replay.add_argument(
        "--shift-to-now",
        action="store_true",
        help="move Event times so the newest is now (demos, load tests on a real backend)",
    )
    replay.add_argument(
        "--top", type=int, metavar="N", help="reasons/objects listed in the summary"
    )
    replay.add_argument(
        "--explain",
        action="append",
        metavar="INCIDENT",
        help="print how an incident's Events were linked (any id it had; 'all': every one)",
    )
    _delivery(replay)
    replay.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /metrics on PORT during the replay (default: not served)",
    )
    replay.add_argument(
        "--hold",
        type=float,
        metavar="SECONDS",
        help="keep serving /metrics this long after the replay (for a Prometheus scrape)",
    )

    run = sub.add_parser("run", help="watch a cluster's Events and export them")
    _common(run)
    run.add_argument("--sink", action="append", metavar="SPEC", help=SINK_HELP)
    _delivery(run)
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="port of /metrics, /healthz, /readyz (default 9464; 0 disables)",
    )
    run.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig (default: in-cluster, KUBECONFIG, ~/.kube/config)",
    )
    run.add_argument("--context", metavar="NAME", help="kubeconfig context")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        metavar="NS",
        help="watch only this namespace (repeatable)",
    )
    run.add_argument(
        "--field-selector", metavar="SEL", help="server-side filter, e.g. type!=Normal"
    )
    run.add_argument(
        "--api", choices=["auto", "events.k8s.io/v1", "v1"], help="Events API (default auto)"
    )
    run.add_argument("--checkpoint", metavar="FILE", help="checkpoint file (resume after restart)")
    run.add_argument(
        "--initial",
        metavar="POLICY",
        help="first start without checkpoint: all | none | since=DURATION",
    )
    run.add_argument(
        "--leader-elect", action="store_true", help="run leader election on a Lease (HA)"
    )
    run.add_argument("--lease-name", metavar="NAME", help="Lease name (default kubevents)")
    run.add_argument(
        "--lease-namespace", metavar="NS", help="Lease namespace (default POD_NAMESPACE)"
    )

    rules = sub.add_parser("rules", help="test or check rule files")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="ACTION", required=True)
    test = rules_sub.add_parser("test", help="run rule unit tests")
    _common(test)
    test.add_argument("files", nargs="+", metavar="FILE", help="rule test file")
    check = rules_sub.add_parser("check", help="validate rule files")
    _common(check)
    check.add_argument(
        "dirs", nargs="*", metavar="DIR", help="rules directory (default: configured)"
    )

    report = sub.add_parser(
        "report", help="one self-contained HTML page of incidents, patterns and hot spots"
    )
    _common(report)
    report.add_argument(
        "files",
        nargs="+",
        metavar="INPUT",
        help="Event dump (anything replay reads) or kubevents jsonl records; - for stdin",
    )
    report.add_argument(
        "-o", "--output", default="report.html", metavar="FILE", help="page to write"
    )
    report.add_argument("--title", metavar="TEXT", help="title of the page")
    report.add_argument(
        "--grafana-url", metavar="URL", help="Grafana base URL: link incidents to Explore"
    )
    report.add_argument(
        "--grafana-datasource", default="loki", metavar="UID", help="Loki data source uid"
    )
    _emit_parser(sub)

    check_config = sub.add_parser("check-config", help="validate the config and print the result")
    _common(check_config)

    sub.add_parser("version", help="print the version")
    return parser


def _emit_parser(sub: Any) -> None:
    emit = sub.add_parser("emit", help="record an application event (a deploy, a config change)")
    emit.add_argument("--config", metavar="FILE", help="YAML config file (env KUBEVENTS_CONFIG)")
    emit.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    emit.add_argument("--regarding", required=True, metavar="KIND/NAME", help="e.g. deployment/web")
    emit.add_argument("--namespace", "-n", dest="emit_namespace", metavar="NS",
                      help="the object's namespace (default POD_NAMESPACE)")  # fmt: skip
    emit.add_argument(
        "--reason", required=True, help="DeployStarted, ConfigChanged... (docs/app-events.md)"
    )
    emit.add_argument("--note", default="", help="free text, up to 1024 characters")
    emit.add_argument("--id", dest="emit_id", default="", metavar="ID",
                      help="makes the Event name deterministic: a retry records nothing twice")  # fmt: skip
    emit.add_argument("--type", dest="emit_type", default="", choices=["Normal", "Warning"])
    emit.add_argument(
        "--action", dest="emit_action", default="", metavar="ACTION", help="default: the reason's"
    )
    emit.add_argument("--reporting-controller", default="", metavar="NAME",
                      help="the app or pipeline (default KUBEVENTS_REPORTING_CONTROLLER, kubevents/emit)")  # fmt: skip
    emit.add_argument(
        "--reporting-instance", default="", metavar="NAME", help="default: the host name"
    )
    emit.add_argument("--regarding-api-version", default="", metavar="GROUP/VERSION",
                      help="for a kind --regarding does not know (e.g. argoproj.io/v1alpha1)")  # fmt: skip
    emit.add_argument("--kubeconfig", metavar="FILE",
                      help="kubeconfig (default: in-cluster, KUBECONFIG, ~/.kube/config)")  # fmt: skip
    emit.add_argument("--context", metavar="NAME", help="kubeconfig context")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flag values by settings path; only flags that were given."""
    pairs = {
        "log_level": getattr(args, "log_level", None),
        "cluster_name": getattr(args, "cluster_name", None),
        "rules.dirs": tuple(args.rules) if getattr(args, "rules", None) else None,
        "sinks": tuple(args.sink) if getattr(args, "sink", None) else None,
        "replay.summary": False if getattr(args, "no_summary", False) else None,
        "replay.shift_to_now": True if getattr(args, "shift_to_now", False) else None,
        "replay.top": getattr(args, "top", None),
        "replay.hold_s": getattr(args, "hold", None),
        "metrics.port": getattr(args, "metrics_port", None),
        "delivery.spool_dir": getattr(args, "spool", None),
        "watch.kubeconfig": getattr(args, "kubeconfig", None),
        "watch.context": getattr(args, "context", None),
        "watch.namespaces": tuple(args.namespace) if getattr(args, "namespace", None) else None,
        "watch.field_selector": getattr(args, "field_selector", None),
        "watch.api": getattr(args, "api", None),
        "watch.checkpoint": getattr(args, "checkpoint", None),
        "watch.initial": getattr(args, "initial", None),
        "leader.enabled": True if getattr(args, "leader_elect", False) else None,
        "leader.lease_name": getattr(args, "lease_name", None),
        "leader.lease_namespace": getattr(args, "lease_namespace", None),
    }
    return {key: value for key, value in pairs.items() if value is not None}


def _now_ns(text: str | None) -> int | None:
    """``--now`` in ns since the epoch (None: not given)."""
    if text is None:
        return None
    from kubevents.source.kubectl_text import parse_reference_time

    try:
        return parse_reference_time(text)
    except ValueError as e:
        raise ConfigError(f"--now: {e}") from None


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=settings.log_level.upper(),
        format="kubevents: %(levelname)s: %(message)s",
    )


def _dump_settings(settings: Settings) -> str:
    import dataclasses

    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return list(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return yaml.safe_dump(redact(plain(dataclasses.asdict(settings))), sort_keys=False)


SECRET_KEYS = frozenset({"headers", "password", "bearer_token"})
"""Settings whose values may hold credentials: never printed."""


def redact(value: Any) -> Any:
    """``value`` with the values of :data:`SECRET_KEYS` replaced (header names kept)."""
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        if key in SECRET_KEYS and item:
            if isinstance(item, list):
                item = [f"{str(h).partition('=')[0]}=<redacted>" for h in item]
            else:
                item = "<redacted>"
        out[key] = redact(item)
    return out


def run(argv: Sequence[str]) -> int:
    """Run the command line ``argv``; return the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(f"kubevents {__version__}")
        return 0
    config = args.config or os.environ.get("KUBEVENTS_CONFIG")
    settings = load_settings(config, overrides=_overrides(args))
    _setup_logging(settings)
    for warning in unknown_env(os.environ):
        logger.warning("%s", warning)
    if args.command == "replay":
        # replay serves /metrics only when asked on the command line (it is a batch job)
        port = settings.metrics.port if args.metrics_port else None
        if settings.replay.hold_s > 0 and port is None:
            raise ConfigError(
                "--hold (replay.hold_s) needs --metrics-port: without it no /metrics is served"
            )
        return app.replay(
            settings,
            args.files,
            metrics_port=port,
            now_ns=_now_ns(args.now),
            explain=args.explain or (),
        )
    if args.command == "run":
        return app.run_cluster(settings)
    if args.command == "rules" and args.rules_command == "test":
        return app.rules_test(settings, args.files, sys.stdout)
    if args.command == "rules" and args.rules_command == "check":
        return app.rules_check(settings, args.dirs, sys.stdout)
    if args.command == "report":
        from kubevents.report import write_report

        data = write_report(
            settings,
            args.files,
            args.output,
            grafana_url=args.grafana_url or "",
            grafana_datasource=args.grafana_datasource,
            title=args.title or "",
        )
        print(
            f"{args.output}: {len(data.incidents)} incidents, {data.records} Event records",
            file=sys.stderr,
        )
        return 0
    if args.command == "emit":
        from kubevents.emitting import emit_command

        return emit_command(
            regarding=args.regarding,
            reason=args.reason,
            note=args.note,
            namespace=args.emit_namespace,
            event_id=args.emit_id,
            type=args.emit_type,
            action=args.emit_action,
            reporting_controller=args.reporting_controller,
            reporting_instance=args.reporting_instance,
            regarding_api_version=args.regarding_api_version,
            kubeconfig=settings.watch.kubeconfig,
            context=settings.watch.context,
            out=print,
        )
    if args.command == "check-config":
        app.check_config(settings)
        app.write_text(sys.stdout, _dump_settings(settings))
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kubevents`` console script (``argv``: a command line run in this
    process, as the tests do; by default the process's own, which ends on return)."""
    try:
        code = run(sys.argv[1:] if argv is None else argv)
        _flush_stdout()
        if argv is None:
            _ending()
        return code
    except (ConfigError, RulesError) as e:
        _error(e)
        return 2
    except OutputError as e:
        _error(e)
        _drop_stdout()
        return 1
    except KubeventsError as e:
        _error(e)
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); not an error worth a traceback.
        _drop_stdout()
        return 0
    except KeyboardInterrupt:
        return 130


def _ending() -> None:
    """The process ends next: what it holds is frozen, so that the interpreter's last
    collections neither walk nor free it object by object (after a replay of 150,000 lines,
    whose tables it leaves to the collector, that took 0.2-0.4 s; the system takes the
    memory back at once)."""
    gc.freeze()


def _error(e: Exception) -> None:
    if sys.stderr is not None:
        print(f"kubevents: error: {e}", file=sys.stderr)


def _flush_stdout() -> None:
    """Flush stdout now, so a full disk is reported here and not ignored at exit."""
    if sys.stdout is None:
        return
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise output_error("stdout", e) from e


def _drop_stdout() -> None:
    """Point stdout at /dev/null: what is still buffered must not fail again at exit."""
    if sys.stdout is None:
        return
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
