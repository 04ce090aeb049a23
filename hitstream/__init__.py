"""hitstream's composition root: the app factory, the CLI, the server and the engines they open."""

from foundation import __version__

__all__ = ["__version__"]
