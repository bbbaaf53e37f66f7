"""meshgen: one service catalog in, a working, verified service mesh out."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("meshgen")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
