"""A consumer of the group: FastStream reads new batches; recovery handles the rest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from anyio import CapacityLimiter
from faststream import AckPolicy, Context
from faststream.message import StreamMessage
from faststream.redis import RedisBroker, RedisClusterBroker, StreamSub
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ResponseError

from consumers.processor import BatchProcessor
from consumers.recovery import LOST_READ_CHECK_S, Recovery
from consumers.retries import pause
from consumers.sink import ClickHouseSink
from foundation import layout
from foundation.clients import RedisClient
from foundation.errors import REDIS_ERRORS, Stopping
from foundation.keys import ShardKeys
from foundation.metrics import Metrics
from foundation.settings import Settings

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
# Failed reads in a row (FastStream retries every 5 s) after which the broker is made
# anew: after a failover, a cluster client can keep asking a node that is gone.
REBUILD_AFTER_FAILURES = 2
# Batches a consumer inserts at once, whatever the number of shards it reads.
INSERT_THREADS = 2


def read_deadline_s(settings: Settings) -> float:
    """How long a stream read may take in all: its block time, then its answer."""
    return settings.poll_interval_ms / 1000 + READ_TIMEOUT_S


def lost_after_ms(settings: Settings) -> int:
    """Delivered this long ago and held by no handler: that read has failed (its
    deadline passed), so no answer can still bring the entries."""
    return int(read_deadline_s(settings) * 1000) + 1000


async def ensure_group(redis: RedisClient, stream: str, group: str) -> bool:
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


class ReadWatch:
    """When a shard's stream reads last completed, and how many have failed since.

    FastStream retries a failed read every few seconds without telling anyone; this is
    how /health learns that a consumer has stopped reading (a dead node, a network
    partition) and how the consumer knows to rebuild its client. Time spent writing a
    batch does not count as a stall: ClickHouse has its own check.
    """

    def __init__(self) -> None:
        self.completed_at = time.monotonic()
        self.failures = 0
        self.handling = False

    def completed(self) -> None:
        self.completed_at, self.failures = time.monotonic(), 0

    def failed(self) -> None:
        self.failures += 1

    def stalled_for(self) -> float:
        """Seconds since a read last completed; 0 while a batch is being written."""
        return 0.0 if self.handling else time.monotonic() - self.completed_at


def _watched(subscriber: Any, watch: ReadWatch) -> None:
    """Note each of the subscriber's stream reads (FastStream's `_xreadgroup`) in `watch`."""
    read = subscriber._xreadgroup

    async def watched_read(**kwargs: Any) -> Any:
        try:
            response = await read(**kwargs)
        except Exception:
            watch.failed()
            raise
        watch.completed()
        return response

    subscriber._xreadgroup = watched_read


@dataclass
class ShardReader:
    """What one consumer runs for one shard: its batch processor, its recovery, the
    subscriber that reads it, and the watch on those reads."""

    processor: BatchProcessor
    recovery: Recovery
    watch: ReadWatch = field(default_factory=ReadWatch)
    subscriber: Any = None

    @property
    def stream(self) -> str:
        return self.processor.shard.stream


def create_broker(
    settings: Settings, redis_url: str, cluster: bool, readers: list[ShardReader]
) -> RedisBroker:
    """A FastStream broker (a cluster broker on a Redis Cluster) with one batch subscriber
    per shard, each reading new entries of its stream for the group."""
    options: dict[str, Any] = {
        "logger": faststream_log,
        "log_level": logging.DEBUG,
        "graceful_timeout": settings.shutdown_timeout_s,
        "socket_timeout": read_deadline_s(settings),
    }
    # FastStream's cluster broker does not take a socket read size (its cluster client
    # reads as redis-py does).
    broker = (
        RedisClusterBroker(redis_url, **options)
        if cluster
        else RedisBroker(redis_url, socket_read_size=READ_SIZE, **options)
    )
    for reader in readers:
        _subscribe(broker, settings, reader)
    return broker


def _subscribe(broker: RedisBroker, settings: Settings, reader: ShardReader) -> Any:
    """Add the shard's subscriber to the broker (started by the broker, or by the caller
    when the broker already runs)."""
    processor, watch = reader.processor, reader.watch
    subscriber = broker.subscriber(
        stream=StreamSub(
            reader.stream,
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
    _watched(subscriber, watch)
    linger_s = settings.batch_linger_ms / 1000

    @subscriber
    async def write_batch(message: StreamMessage[Any] = Context("message")) -> None:
        raw = message.raw_message
        watch.handling = True
        try:
            await processor.process(raw["message_ids"], raw["data"])
        except Stopping:
            log.info("shutting down: %d entries stay pending", len(raw["message_ids"]))
            return
        finally:
            watch.handling = False
            watch.completed()
        if len(raw["message_ids"]) < settings.batch_size:
            # Every insert writes three parts (events and two views): at low rates, let
            # the next batch fill a little instead of inserting each trickle on its own.
            await processor.pause(linger_s)

    reader.subscriber = subscriber
    return subscriber


class Consumer:
    """One member of the consumer group, on every shard it reads, from start-up
    recovery to graceful stop."""

    def __init__(
        self,
        settings: Settings,
        name: str,
        redis_url: str,
        redis: RedisClient,
        sink: ClickHouseSink,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._name = name
        self._redis_url = redis_url
        self._redis = redis
        self._sink = sink
        self._metrics = metrics
        self._cluster = isinstance(redis, RedisCluster)
        # One pool of engine threads for all shards: a consumer inserts at most this
        # many batches at once, however many shards it reads.
        self._threads = CapacityLimiter(INSERT_THREADS)
        self.readers: dict[str, ShardReader] = {}
        self._broker: RedisBroker | None = None
        # Held while the broker or its subscribers change (a rebuild, a restarted or new
        # subscriber): one must not start what the other is replacing.
        self._brokering = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._recovering = True
        self._stopped = asyncio.Event()  # set by stop(); wakes the rounds' waits at once

    def _reader(self, shard: ShardKeys) -> ShardReader:
        processor = BatchProcessor(
            self._settings,
            shard,
            self._name,
            self._redis,
            self._sink,
            self._metrics,
            self._threads,
        )
        return ShardReader(processor, Recovery(self._settings, self._redis, processor))

    async def _new_shards(self) -> list[ShardReader]:
        """Readers for the shards to read that this consumer does not read yet."""
        settings = self._settings
        await layout.record(self._redis, settings.keys)  # again: Redis may have been flushed
        shards = await layout.shards_to_read(self._redis, settings.keys, settings.consumed_shards)
        added = []
        for shard in shards:
            if shard.name in self.readers:
                continue
            await ensure_group(self._redis, shard.stream, settings.group)
            reader = self.readers[shard.name] = self._reader(shard)
            added.append(reader)
        return added

    async def start(self) -> None:
        """Create the groups, then run in the background: own pending first, then new
        entries, on every shard.

        Start-up does not wait for ClickHouse: ingest keeps accepting while it is away.
        """
        readers = await self._new_shards()
        self._broker = create_broker(self._settings, self._redis_url, self._cluster, readers)
        self._task = asyncio.create_task(self._run(), name="hitstream-consumer")

    async def _run(self) -> None:
        try:
            for reader in list(self.readers.values()):
                await reader.recovery.drain_own_pending()
        except Stopping:
            return
        if self._stopped.is_set() or self._broker is None:  # stopped during start-up
            return
        await self._broker.start()
        for reader in self.readers.values():
            reader.watch.completed()
        self._recovering = False
        await asyncio.gather(
            self._every(self._settings.maintenance_interval_s, self._maintain, "recovery"),
            self._every(LOST_READ_CHECK_S, self._look_for_lost_reads, "lost reads"),
        )

    async def _every(
        self, interval: float, step: Callable[[], Awaitable[object]], what: str
    ) -> None:
        """Run `step` every `interval` until stopped; a Redis error is logged and the next
        round tries again."""
        while not self._stopped.is_set():
            try:
                await step()
            except Stopping:
                return
            except REDIS_ERRORS as exc:
                log.warning("%s round failed: %s", what, exc)
            await pause(self._stopped, interval)

    async def _look_for_lost_reads(self) -> None:
        lost_after = lost_after_ms(self._settings)
        for reader in list(self.readers.values()):
            await _shard_step(reader, reader.recovery.drain_lost_reads(lost_after), "lost reads")
        if any(self._lost(reader) for reader in self.readers.values()):
            await self._rebuild()

    def _lost(self, reader: ShardReader) -> bool:
        """Whether the shard's reading needs a new broker: its reads kept failing, its
        reading task ended on an error FastStream does not retry (a cluster's CLUSTERDOWN
        is one), or no read completed for the stall bound."""
        if not reader.subscriber.running:
            return False  # stopped on NOGROUP: the maintenance round restarts it
        tasks = getattr(reader.subscriber, "tasks", ())
        return (
            reader.watch.failures >= REBUILD_AFTER_FAILURES
            or (bool(tasks) and all(task.done() for task in tasks))
            or reader.watch.stalled_for() > self._settings.consumer_stall_s
        )

    async def _maintain(self) -> None:
        """Each round: read new shards, keep reading the others, reclaim, trim."""
        await self._keep_reading()
        for reader in list(self.readers.values()):
            await _shard_step(reader, reader.recovery.maintain(), "recovery")

    async def _keep_reading(self) -> None:
        """Recreate a lost group, restart a stopped subscriber, start new shards.

        A FLUSHALL or a fresh Redis loses the stream and its group; FastStream's
        subscriber then stops for good on NOGROUP. The group comes back at the stream's
        start, so events accepted since are all read.
        """
        if self._stopped.is_set() or self._broker is None:
            return
        async with self._brokering:
            await self._keep_subscribers()

    async def _keep_subscribers(self) -> None:
        if self._stopped.is_set() or self._broker is None:
            return
        for reader in list(self.readers.values()):
            if await ensure_group(self._redis, reader.stream, self._settings.group):
                log.warning(
                    "the consumer group of %s was missing (Redis flushed or new); recreated it",
                    reader.stream,
                )
            # Stopping also stops the subscriber: that one must not be brought back.
            if not reader.subscriber.running and not self._stopped.is_set():
                log.warning("the subscriber of %s had stopped; restarting it", reader.stream)
                await reader.subscriber.start()
        for reader in await self._new_shards():
            log.info("reading the new shard %s", reader.stream)
            subscriber = _subscribe(self._broker, self._settings, reader)
            if not self._stopped.is_set():
                await subscriber.start()

    async def _rebuild(self) -> None:
        """A fresh broker after repeated failed reads: a cluster client whose view of the
        nodes went stale in a failover (it kept asking a dead node) reads again."""
        if self._stopped.is_set() or self._broker is None:
            return
        async with self._brokering:
            log.warning("stream reads keep failing; reconnecting the consumer's readers")
            old = self._broker
            with contextlib.suppress(Exception):
                async with asyncio.timeout(READER_STOP_S):
                    await _stop_broker(old, self._reading_tasks(old))
            readers = list(self.readers.values())
            for reader in readers:
                reader.watch.completed()  # a fresh start for the new broker's reads
            url = await self._live_url()
            self._broker = create_broker(self._settings, url, self._cluster, readers)
            if not self._stopped.is_set():
                await self._broker.start()

    async def _live_url(self) -> str:
        """A URL to build the broker from: on a cluster, a primary that answers now (the
        node the setting names may be the one that died)."""
        if not isinstance(self._redis, RedisCluster):
            return self._redis_url
        for node in self._redis.get_primaries():
            with contextlib.suppress(*REDIS_ERRORS, OSError):
                if await self._redis.ping(target_nodes=node):
                    return _with_host(self._redis_url, node.host, int(node.port))
        return self._redis_url

    async def check(self) -> bool:
        """For /health: True while this consumer can do its work (recovering at start,
        or every subscriber reading, each having completed a read recently)."""
        if self._task is None or self._task.done():
            return False
        if self._recovering:
            return True
        bound = self._settings.consumer_stall_s
        return all(
            reader.subscriber.running and reader.watch.stalled_for() <= bound
            for reader in self.readers.values()
        )

    async def stop(self) -> None:
        """Stop reading, finish and acknowledge the batches in hand, within
        shutdown_timeout_s.

        Retries stop first: a batch ClickHouse cannot take now stays pending.
        """
        self._stopped.set()
        for reader in self.readers.values():
            reader.recovery.stop()
            reader.processor.stop()
        client = None if self._broker is None else _client_of(self._broker)
        tasks = self._reading_tasks()
        if self._broker is not None:
            await self._broker.stop()
        try:
            async with asyncio.timeout(self._settings.shutdown_timeout_s):
                if self._task is not None:
                    await self._task
                for reader in self.readers.values():
                    if reader.subscriber.running:  # started while the broker was stopping
                        tasks += self._reading_tasks()
                        await reader.subscriber.stop()
                for reader in self.readers.values():
                    await reader.recovery.drain_own_pending(at_shutdown=True)
        except (TimeoutError, Stopping):
            log.warning("stopping with entries still pending; they will be redelivered")
        except Exception:
            log.exception("consumer failed while stopping")
        await _reap(tasks, client)

    def _reading_tasks(self, broker: RedisBroker | None = None) -> list[asyncio.Task[Any]]:
        subscribers = (
            [reader.subscriber for reader in self.readers.values()]
            if broker is None
            else list(broker.subscribers)
        )
        return [
            task for sub in subscribers for task in getattr(sub, "tasks", ()) if not task.done()
        ]


async def _shard_step(reader: ShardReader, step: Awaitable[object], what: str) -> None:
    """One shard's part of a round: a shard whose master is away is logged and skipped,
    and the others' parts still run."""
    try:
        await step
    except REDIS_ERRORS as exc:
        log.warning("%s round of shard %s failed: %s", what, reader.processor.shard.name, exc)


def _client_of(broker: RedisBroker) -> Any:
    """The broker's Redis client, while it has one."""
    return getattr(broker.config.broker_config.connection, "_client", None)


async def _stop_broker(broker: RedisBroker, tasks: list[asyncio.Task[Any]]) -> None:
    """Stop a broker, then let its reading tasks end and close its client once more."""
    client = _client_of(broker)
    await broker.stop()
    await _reap(tasks, client)


async def _reap(tasks: list[asyncio.Task[Any]], client: Any) -> None:
    """Wait for FastStream's cancelled reading tasks and take their outcome (one whose
    read failed as the connection closed would end with an exception nobody retrieved),
    then close the client again: a cluster client that a read in flight set up anew
    after the broker closed it would leave its connections open."""
    if tasks:
        done, _ = await asyncio.wait(tasks, timeout=READER_STOP_S)
        for task in done:
            if not task.cancelled():
                task.exception()
    if client is not None:
        with contextlib.suppress(Exception):
            await client.aclose()


def _with_host(url: str, host: str, port: int) -> str:
    """`url` (its scheme, credentials and options) pointed at another node."""
    parts = urlsplit(url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@{host}:{port}" if credentials else f"{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))
