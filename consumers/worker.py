"""The consumer group: FastStream reads stream batches, the sink inserts them, then XACK."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from anyio import to_thread
from faststream import AckPolicy, Context
from faststream.message import StreamMessage
from faststream.redis import RedisBroker, StreamSub
from redis.exceptions import ResponseError

from consumers.sink import ClickHouseSink, batch_token
from hitstream.errors import SinkUnavailable
from hitstream.settings import Settings
from ingest.stream import ROW_FIELD

log = logging.getLogger(__name__)


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    """Create the group at the stream's start (id 0), so entries added before it are read.

    FastStream would create it at `$`, skipping everything already in the stream.
    """
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def _raw_batch(message: Any) -> StreamMessage[Any]:
    """Hand the handler the raw entries: no per-event JSON decoding in Python."""
    return StreamMessage(raw_message=message, body=b"")


class BatchProcessor:
    """Inserts one batch (retrying with capped exponential backoff), then acknowledges it."""

    def __init__(self, settings: Settings, redis: aioredis.Redis, sink: ClickHouseSink) -> None:
        self._settings = settings
        self._redis = redis
        self._sink = sink
        self._stopping = asyncio.Event()
        self.events_written = 0

    def stop(self) -> None:
        """Stop retrying: a batch that cannot be written stays pending for redelivery."""
        self._stopping.set()

    async def process(self, ids: list[bytes], entries: list[dict[bytes, bytes]]) -> None:
        """Write the batch once it succeeds (or give up at shutdown), then XACK it."""
        rows = [entry[ROW_FIELD] for entry in entries if ROW_FIELD in entry]
        if rows:
            await self._insert_with_backoff(rows, batch_token(self._settings.stream, ids))
        await self._redis.xack(self._settings.stream, self._settings.group, *ids)
        self.events_written += len(rows)

    async def _insert_with_backoff(self, rows: list[bytes], token: str) -> None:
        delay = self._settings.insert_backoff_initial_s
        while True:
            try:
                await to_thread.run_sync(self._sink.insert, rows, token)
                return
            except SinkUnavailable as exc:
                if self._stopping.is_set():
                    raise
                log.warning(
                    "insert of %d events failed (%s); retrying in %.1fs", len(rows), exc, delay
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, self._settings.insert_backoff_max_s)


def create_broker(settings: Settings, redis_url: str, processor: BatchProcessor) -> RedisBroker:
    """A FastStream broker with one batch subscriber in the configured consumer group."""
    broker = RedisBroker(redis_url, logger=log, log_level=logging.DEBUG, graceful_timeout=30.0)
    subscriber = broker.subscriber(
        stream=StreamSub(
            settings.stream,
            group=settings.group,
            consumer=settings.consumer_name,
            batch=True,
            max_records=settings.batch_size,
            polling_interval=settings.poll_interval_ms,
        ),
        ack_policy=AckPolicy.MANUAL,
        parser=_raw_batch,
    )

    @subscriber
    async def write_batch(message: StreamMessage[Any] = Context("message")) -> None:
        raw = message.raw_message
        await processor.process(raw["message_ids"], raw["data"])

    return broker
