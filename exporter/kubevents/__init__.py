"""kubevents: Kubernetes Events as classified, correlated OpenTelemetry logs.

The package mirrors the pipeline (see docs/architecture in the README):
``source -> normalize -> classify -> correlate -> patterns -> sinks``.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubevents.emitting import emit

try:
    __version__ = version("kubevents")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "emit"]


def __getattr__(name: str) -> object:
    # ``kubevents.emit`` (docs/app-events.md), imported on first use: ``import kubevents``
    # stays free of the HTTP client for the modules that only want the version.
    if name == "emit":
        from kubevents.emitting import emit

        return emit
    raise AttributeError(f"module 'kubevents' has no attribute {name!r}")
