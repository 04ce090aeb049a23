"""A consumer of the group: FastStream reads new batches; recovery handles the rest."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from faststream import AckPolicy, Context
from faststream.message import StreamMessage
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.subscriber.usecases.stream_subscriber import StreamBatchSubscriber
from redis.exceptions import ResponseError

from consumers.deadletter import DeadLetters
from consumers.processor import BatchProcessor
from consumers.recovery import Recovery
from consumers.sink import ClickHouseSink
from hitstream.errors import Stopping
from hitstream.metrics import Metrics
from hitstream.settings import Settings

log = logging.getLogger(__name__)
# FastStream's own messages (subscriber start and stop, "callback ... is being executed"
# at every shutdown) are for debugging it; warnings and errors still show.
faststream_log = logging.getLogger(f"{__name__}.faststream")
faststream_log.setLevel(logging.WARNING)

# A stream read's answer must arrive within this after its block time; and the socket is
# read 1 MiB at a time. A batch's answer is a few MB, and a process busy answering ingest
# runs its event loop only so often: under a burst into `serve` with the cores taken, a
# 5 s deadline passed mid-answer and threw the read away (measured: two reads of 10,000
# in a burst of 300,000); 15 s lets such an answer arrive.
READ_TIMEOUT_S = 15.0
READ_SIZE = 1 << 20


# How long a stopping consumer waits for FastStream's cancelled reading tasks to end.
READER_STOP_S = 5.0


def read_deadline_s(settings: Settings) -> float:
    """How long a stream read may take in all: its block time, then its answer."""
    return settings.poll_interval_ms / 1000 + READ_TIMEOUT_S


def lost_after_ms(settings: Settings) -> int:
    """Delivered this long ago and held by no handler: that read has failed (its
    deadline passed), so no answer can still bring the entries."""
    return int(read_deadline_s(settings) * 1000) + 1000


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> bool:
    """Create the group at the stream's start (id 0), so entries added before it are read;
    True if it had to be created.

    FastStream would create it at `$`, skipping everything already in the stream.
    """
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
        return False
    return True


async def _raw_batch(message: Any) -> StreamMessage[Any]:
    """Hand the handler the raw entries: no per-event JSON decoding in Python."""
    return StreamMessage(raw_message=message, body=b"")


def create_broker(
    settings: Settings, redis_url: str, processor: BatchProcessor
) -> tuple[RedisBroker, StreamBatchSubscriber]:
    """A FastStream broker with one batch subscriber reading new entries for the group."""
    broker = RedisBroker(
        redis_url,
        logger=faststream_log,
        log_level=logging.DEBUG,
        graceful_timeout=settings.shutdown_timeout_s,
        socket_timeout=read_deadline_s(settings),
        socket_read_size=READ_SIZE,
    )
    subscriber = broker.subscriber(
        stream=StreamSub(
            settings.keys.stream,
            group=settings.group,
            consumer=processor.consumer,
            batch=True,
            max_records=settings.batch_size,
            polling_interval=settings.poll_interval_ms,
        ),
        # Acknowledged by the processor, only after ClickHouse took the batch.
        ack_policy=AckPolicy.MANUAL,
        parser=_raw_batch,
    )

    linger_s = settings.batch_linger_ms / 1000

    @subscriber
    async def write_batch(message: StreamMessage[Any] = Context("message")) -> None:
        raw = message.raw_message
        try:
            await processor.process(raw["message_ids"], raw["data"])
        except Stopping:
            log.info("shutting down: %d entries stay pending", len(raw["message_ids"]))
            return
        if len(raw["message_ids"]) < settings.batch_size:
            # Every insert writes three parts (events and two views): at low rates, let
            # the next batch fill a little instead of inserting each trickle on its own.
            await processor.pause(linger_s)

    return broker, subscriber


class Consumer:
    """One member of the consumer group, from start-up recovery to graceful stop."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        redis_url: str,
        redis: aioredis.Redis,
        sink: ClickHouseSink,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._redis = redis
        dead_letters = DeadLetters(redis, settings.keys)
        self.processor = BatchProcessor(settings, name, redis, sink, dead_letters, metrics)
        self.recovery = Recovery(settings, redis, self.processor)
        self._broker, self._subscriber = create_broker(settings, redis_url, self.processor)
        self._task: asyncio.Task[None] | None = None
        self._recovering = True
        self._stopping = False

    async def start(self) -> None:
        """Create the group, then run in the background: own pending first, then new entries.

        Start-up does not wait for ClickHouse: ingest keeps accepting while it is away.
        """
        await ensure_group(self._redis, self._settings.keys.stream, self._settings.group)
        self._task = asyncio.create_task(self._run(), name="hitstream-consumer")

    async def _run(self) -> None:
        try:
            await self.recovery.drain_own_pending()
        except Stopping:
            return
        if self._stopping:  # stopped during start-up: never start reading
            return
        await self._broker.start()
        self._recovering = False
        await asyncio.gather(
            self.recovery.run(self._keep_reading),
            self.recovery.watch_lost_reads(lost_after_ms(self._settings)),
        )

    async def _keep_reading(self) -> None:
        """Each maintenance round: recreate a lost group, restart a stopped subscriber.

        A FLUSHALL or a fresh Redis loses the stream and its group; FastStream's
        subscriber then stops for good on NOGROUP. The group comes back at the stream's
        start, so events accepted since are all read.
        """
        if await ensure_group(self._redis, self._settings.keys.stream, self._settings.group):
            log.warning("the consumer group was missing (Redis flushed or new); recreated it")
        # Stopping also stops the subscriber: that one must not be brought back.
        if not self._subscriber.running and not self._stopping:
            log.warning("the stream subscriber had stopped; restarting it")
            await self._subscriber.start()

    async def check(self) -> bool:
        """For /health: True while this consumer can do its work (recovering at start,
        or its subscriber reading)."""
        if self._task is None or self._task.done():
            return False
        return self._recovering or bool(self._subscriber.running)

    async def stop(self) -> None:
        """Stop reading, finish and acknowledge the batch in hand, within shutdown_timeout_s.

        Retries stop first: a batch ClickHouse cannot take now stays pending.
        """
        self._stopping = True
        self.recovery.stop()
        self.processor.stop()
        readers = self._reading_tasks()
        await self._broker.stop()
        try:
            async with asyncio.timeout(self._settings.shutdown_timeout_s):
                if self._task is not None:
                    await self._task
                if self._subscriber.running:  # started while stop() was stopping the broker
                    readers += self._reading_tasks()
                    await self._subscriber.stop()
                await self.recovery.drain_own_pending(at_shutdown=True)
        except (TimeoutError, Stopping):
            log.warning("stopping with entries still pending; they will be redelivered")
        except Exception:
            log.exception("consumer failed while stopping")
        # FastStream cancels its reading tasks without waiting for them: one whose read
        # failed as the connection closed would end with an exception nobody retrieved.
        if readers:
            done, _ = await asyncio.wait(readers, timeout=READER_STOP_S)
            for task in done:
                if not task.cancelled():
                    task.exception()

    def _reading_tasks(self) -> list[asyncio.Task[Any]]:
        return [task for task in getattr(self._subscriber, "tasks", ()) if not task.done()]
