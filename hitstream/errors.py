"""The project's exception hierarchy: one root, a subclass for each thing callers handle."""

from __future__ import annotations


class HitstreamError(Exception):
    """Root of every error hitstream raises on purpose."""


class ConfigError(HitstreamError):
    """Settings or environment that cannot work (bad URL, engine that will not start)."""


class StreamUnavailable(HitstreamError):
    """The Redis stream could not take an event; the client should retry later."""


class SinkUnavailable(HitstreamError):
    """ClickHouse rejected or could not take a batch; the batch stays pending."""
