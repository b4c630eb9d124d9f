"""The kubevents error hierarchy.

Every failure kubevents reports on purpose is one of these, so the CLI can turn
it into a one-line message and an exit code instead of a traceback::

    KubeventsError
    ├── ConfigError          a settings file, env var or flag is wrong
    ├── RulesError           a rule file or rule test file is wrong
    ├── InputError           a replay input cannot be read at all
    ├── OutputError          stdout or a jsonl file cannot be written (closed, disk full)
    ├── SourceError          talking to the Kubernetes API failed
    │   ├── ApiError         ... with a Kubernetes Status (code, reason)
    │   └── ClientConfigError  ... because the kubeconfig or credentials are unusable
    │                          (also a ConfigError: the CLI exits 2 on it)
    └── SinkError            a sink could not deliver
        └── RetryableSinkError   ... but a later attempt may succeed

Adapters catch library errors at the edge and re-raise them as ours with
``raise ... from e`` so the original stays attached for debugging.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

# Untrusted text (server bodies, file contents) is cut to this many characters
# before it goes into an error message or a log line.
TEXT_MAX = 256


_LINE_BREAKS = re.compile(r"\s*[\r\n]+\s*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clip(text: str, limit: int = TEXT_MAX) -> str:
    """``text`` on one line (line breaks folded to `` / ``, control characters dropped),
    cut to ``limit`` characters with the cut marked: what a log line may quote."""
    text = _CONTROL.sub("", _LINE_BREAKS.sub(" / ", text.strip()))
    return text if len(text) <= limit else text[:limit] + "…"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class KubeventsError(Exception):
    """Base class of every error kubevents raises on purpose."""


class ConfigError(KubeventsError):
    """A configuration file, environment variable or flag is invalid."""


class RulesError(KubeventsError):
    """A rule file is invalid; the message names the file, line and rule id."""


class InputError(KubeventsError):
    """A replay input cannot be opened or holds nothing readable."""


class OutputError(KubeventsError):
    """A local output (stdout, a jsonl file) cannot be written: nothing can go on."""


def output_error(where: str, e: OSError | None = None) -> OutputError:
    """The one-line error for an output that cannot be written."""
    why = (e.strerror or str(e)) if e is not None else "it is closed"
    return OutputError(f"{where}: cannot write: {why}")


class SourceError(KubeventsError):
    """The Kubernetes API could not be read."""


class ApiError(SourceError):
    """The API server answered with an error Status."""

    def __init__(
        self, status: int, reason: str = "", message: str = "", retry_after: float | None = None
    ) -> None:
        self.status = status
        self.reason = reason
        self.message = clip(message)
        self.retry_after = retry_after
        """Seconds the server asked us to wait (``Retry-After``), if it did."""
        super().__init__(f"API error {status} {reason}: {self.message}".rstrip(": "))


class ClientConfigError(SourceError, ConfigError):
    """The Kubernetes client configuration (kubeconfig, in-cluster files, credential
    plugin) cannot be used: invalid configuration, like any ConfigError."""


class SinkError(KubeventsError):
    """A sink failed to deliver a batch."""


class RetryableSinkError(SinkError):
    """A sink failed, but the same batch may succeed later."""
