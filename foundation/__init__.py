"""The foundation every room stands on: errors, HTTP helpers, JSON bodies, settings, Redis
keys and the shard layout, engine client types, Lua loading, metrics, health, and the
process helpers of tests and benchmarks. It imports no room."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hitstream")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
