"""hitstream: the foundation the rooms share, and the composition root (app, cli)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hitstream")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"
