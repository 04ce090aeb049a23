"""The foundation every room stands on: errors, HTTP helpers, settings, keys, metrics."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hitstream")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
