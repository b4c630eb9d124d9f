"""kubevents: Kubernetes Events as classified, correlated OpenTelemetry logs.

The package mirrors the pipeline (see docs/architecture in the README):
``source -> normalize -> classify -> correlate -> patterns -> sinks``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kubevents")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
