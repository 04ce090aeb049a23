"""Ingest's append script (ingest/lua/append_once.lua with visits.lua and numbers.lua)
run directly on a real Valkey: the splice of the visitor's number and the visit's id into
the row, visitor numbers, visit assignment, dedup of client event_ids, the call mark; and
schemas/entry.py's side of the rules it shares (TAIL, NUMBER_DAY, the visit id read back
by VISIT_OPENED) agreeing with the script's."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson
import pytest
import redis
from clickhouse_connect.driver.client import Client
from redis.commands.core import Script

from foundation.keys import ShardKeys
from foundation.settings import Settings
from ingest.stream import APPEND_ONCE, CALL_MARK_S, VISIT_GAP_MS, append_args
from ingest.visitors import DAY_S, salt_expiry
from schemas import entry

DAY0 = int(time.time() // DAY_S)  # today (UTC): its numbers' hash expires tomorrow night
T0 = (DAY0 * DAY_S + DAY_S // 2) * 1000  # today at noon, in ms
GAP = VISIT_GAP_MS


def _row(event_id: str = "", site: str = "s", visitor: int = 7, ms: int = T0) -> bytes:
    moment = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    return entry.encode_row(
        event_id=event_id or str(uuid.uuid4()),
        site_id=site,
        event_type="pageview",
        path="/",
        user_id="",
        ts=moment,
        received_at=moment,
        visitor_id=visitor,
    )


class Appender:
    """APPEND_ONCE on one shard, each call with a fresh mark."""

    def __init__(self, conn: redis.Redis, shard: ShardKeys, numbers: int = 1_000) -> None:
        self.conn = conn
        self.shard = shard
        self.per_day = numbers
        self.script: Script = conn.register_script(APPEND_ONCE)

    def __call__(self, *groups: tuple[bytes, str, bytes, int, int, int], call: str = "") -> int:
        args = append_args(self.shard, 3600, self.per_day)
        for group in groups:
            args += list(group)
        mark = self.shard.calls + (call or uuid.uuid4().hex)
        return int(self.script(keys=[self.shard.stream, mark], args=args))

    def rows(self) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in self.conn.xrange(self.shard.stream)]

    def sessions(self) -> list[int]:
        return [orjson.loads(f[entry.ROW_FIELD])["session_id"] for f in self.rows()]

    def numbers(self) -> list[int]:
        return [orjson.loads(f[entry.ROW_FIELD])["visitor_no"] for f in self.rows()]


@pytest.fixture
def append(make_settings: Callable[..., Settings], redis_conn: redis.Redis) -> Iterator[Appender]:
    yield Appender(redis_conn, make_settings().keys.shard(0))


def event(
    ms: int, visitor: int = 7, client_id: bytes = b"", site: str = "s", day: int = 0
) -> tuple[bytes, str, bytes, int, int, int]:
    return (_row(site=site, visitor=visitor, ms=ms), site, client_id, visitor, ms, day)


def test_the_number_and_visit_id_are_spliced_where_encode_row_would_write_them(
    append: Appender,
) -> None:
    """The row as the script stores it is the row encode_row makes with that visitor_no
    and session_id: the script cuts TAIL and writes TAIL_FORMAT, both schemas/entry.py's."""
    row = _row(event_id=str(uuid.UUID(int=1)))
    assert row.endswith(entry.TAIL)
    assert append((row, "s", b"", 7, T0, DAY0)) == 1
    stored = append.rows()[0][entry.ROW_FIELD]
    number = DAY0 * entry.NUMBER_DAY + 1
    expected = orjson.loads(row) | {"visitor_no": number, "session_id": T0}
    assert stored == orjson.dumps(expected)
    assert stored == row[: -len(entry.TAIL)] + entry.TAIL_FORMAT % (number, T0)


def test_an_event_without_a_visitor_is_stored_as_encoded(append: Appender) -> None:
    row = _row(visitor=0)
    assert append((row, "s", b"", 0, T0, DAY0)) == 1
    assert append.rows() == [{entry.ROW_FIELD: row}]


def test_visitors_are_numbered_densely_per_site_and_salt_day(
    append: Appender, redis_conn: redis.Redis
) -> None:
    """A visitor met again that day (in the same call or a later one) keeps its number;
    a new one takes the next; another site or salt day counts from 1 again; a visitor
    whose day is 0 (a signed-in user's, or a day salted before numbering) gets none. The
    day's hash expires with its salt."""
    assert (
        append(event(T0, 7, day=DAY0), event(T0 + 1, 8, day=DAY0), event(T0 + 2, 7, day=DAY0)) == 3
    )
    assert append(event(T0 + 3, 9, day=DAY0), event(T0 + 4, 8, day=DAY0)) == 2
    assert append(event(T0 + 5, 7, site="t", day=DAY0), event(T0 + 6, 7, day=DAY0 + 1)) == 2
    assert append(event(T0 + 7, 10, day=0)) == 1
    base, next_day = DAY0 * entry.NUMBER_DAY, (DAY0 + 1) * entry.NUMBER_DAY
    assert append.numbers() == [
        base + 1,
        base + 2,
        base + 1,
        base + 3,
        base + 2,
        base + 1,
        next_day + 1,
        0,
    ]
    key = f"{append.shard.numbers}s:{DAY0}"
    assert redis_conn.hget(key, "#") == b"3"
    assert redis_conn.expiretime(key) == salt_expiry(DAY0)


def test_a_shard_numbers_in_a_range_of_its_own(
    make_settings: Callable[..., Settings], redis_conn: redis.Redis
) -> None:
    """A site moved to another shard (the shard count changed) numbers on there, in that
    shard's range: no two visitors of a day share a number."""
    third = Appender(redis_conn, make_settings().keys.shard(3))
    assert third(event(T0, 7, day=DAY0)) == 1
    assert third.numbers() == [DAY0 * entry.NUMBER_DAY + 3 * entry.NUMBER_SHARD + 1]


def test_visitors_past_the_days_cap_are_counted_by_id(
    make_settings: Callable[..., Settings], redis_conn: redis.Redis
) -> None:
    """The day's cap is the one set at its first number (a changed setting takes effect
    the next day): a visitor past it gets no number on any event that day, those before
    it keep theirs."""
    first = Appender(redis_conn, make_settings().keys.shard(0), numbers=2)
    assert first(event(T0, 7, day=DAY0), event(T0, 8, day=DAY0), event(T0, 9, day=DAY0)) == 3
    raised = Appender(redis_conn, first.shard, numbers=10)
    assert (
        raised(event(T0 + 1, 9, day=DAY0), event(T0 + 1, 7, day=DAY0), event(T0, 10, day=DAY0)) == 3
    )
    base = DAY0 * entry.NUMBER_DAY
    assert raised.numbers() == [base + 1, base + 2, 0, 0, base + 1, 0]
    assert redis_conn.hget(f"{first.shard.numbers}s:{DAY0}", "#") == b"2"


def test_a_day_whose_salt_has_expired_is_not_numbered(
    append: Appender, redis_conn: redis.Redis
) -> None:
    """An ingest clock days behind Redis's: its numbers' hash would expire at once and
    number again from 1, so its visitors are counted by ID instead."""
    assert append(event(T0, 7, day=DAY0 - 3), event(T0 + 1, 7, day=DAY0 - 3)) == 2
    assert append.numbers() == [0, 0]
    assert not redis_conn.keys(append.shard.numbers + "*")


def test_a_deduplicated_event_takes_no_number(append: Appender) -> None:
    chosen = uuid.uuid4().bytes
    assert append(event(T0, 7, client_id=chosen, day=DAY0)) == 1
    assert append(event(T0 + 1, 8, client_id=chosen, day=DAY0), event(T0 + 2, 9, day=DAY0)) == 1
    assert append.numbers() == [DAY0 * entry.NUMBER_DAY + 1, DAY0 * entry.NUMBER_DAY + 2]


def test_visits_are_told_by_the_gap(append: Appender, redis_conn: redis.Redis) -> None:
    """A visit's id is its first event's ms; an event within the gap of the last joins
    it (also one a little earlier than the first), one a gap later starts a new visit,
    a much older one (an import) has a visit of its own and leaves the current one."""
    late = T0 + GAP - 1
    assert append(event(T0), event(T0 + 1000), event(late)) == 3
    assert append(event(T0 - 60_000)) == 1  # before the first, within the gap: joins
    assert append(event(late + GAP)) == 1  # a whole gap after the last: a new visit
    assert append(event(T0 - 10 * GAP)) == 1  # an import: its own visit
    assert append(event(late + GAP + 5)) == 1  # the current visit was left alone
    assert append(event(T0, visitor=8)) == 1  # another visitor: a visit of its own
    assert append.sessions() == [
        T0, T0, T0, T0, late + GAP, T0 - 10 * GAP, late + GAP, T0,
    ]  # fmt: skip
    stored = redis_conn.get(append.shard.visits + "s:7")
    assert stored == f"{late + GAP} {late + GAP + 5}".encode()
    assert 0 < redis_conn.pttl(append.shard.visits + "s:7") <= 2 * GAP


def test_a_client_event_id_is_appended_once_per_site(append: Appender) -> None:
    """Within a call and across calls; the same id on another site is another event.
    The entry carries the client-id field; the id's slice set expires."""
    chosen = uuid.uuid4().bytes
    assert append(event(T0, client_id=chosen), event(T0 + 1, client_id=chosen)) == 1
    assert append(event(T0 + 2, client_id=chosen)) == 0
    assert append(event(T0 + 3, client_id=chosen, site="t")) == 1
    rows = append.rows()
    assert len(rows) == 2
    assert all(r[entry.CLIENT_ID_FIELD] == entry.CLIENT_ID_MARK for r in rows)
    slices = append.conn.keys(append.shard.dedup + "s:*")
    assert len(slices) == 1 and append.conn.ttl(slices[0]) >= 3600


def test_a_deduplicated_event_takes_no_part_in_visits(append: Appender) -> None:
    chosen = uuid.uuid4().bytes
    assert append(event(T0, client_id=chosen)) == 1
    assert append(event(T0 + 3 * GAP, client_id=chosen)) == 0
    assert append(event(T0 + GAP - 1)) == 1
    assert append.sessions() == [T0, T0]


def test_a_call_sent_again_appends_nothing(append: Appender, redis_conn: redis.Redis) -> None:
    """redis-py resends a call whose connection broke after the server ran it (a failover
    on a cluster): the script finds its call's mark and stores nothing a second time."""
    assert append(event(T0), call="once") == 1
    assert append(event(T0), call="once") == -1
    assert len(append.rows()) == 1
    assert 0 < redis_conn.ttl(append.shard.calls + "once") <= CALL_MARK_S
    assert append(event(T0), call="other") == 1
    assert len(append.rows()) == 2


def test_a_stream_key_of_another_type_is_refused_before_any_write(
    append: Appender, redis_conn: redis.Redis
) -> None:
    redis_conn.set(append.shard.stream, b"not a stream")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        append(event(T0, client_id=uuid.uuid4().bytes, day=DAY0), call="refused")
    assert not redis_conn.exists(append.shard.calls + "refused")
    assert not redis_conn.keys(append.shard.dedup + "*")
    assert not redis_conn.exists(append.shard.visits + "s:7")
    assert not redis_conn.keys(append.shard.numbers + "*")


def test_clickhouse_reads_a_visit_opened_at_its_first_event(append: Appender, ch: Client) -> None:
    """The visit id the script assigns, read back by entry.VISIT_OPENED (as the stats
    compiler does), is the time of the visit's first event."""
    assert append(event(T0 + 123), event(T0 + 60_000)) == 2
    [first, second] = append.sessions()
    assert first == second == T0 + 123
    opened = ch.query(
        f"SELECT {entry.VISIT_OPENED} FROM (SELECT {{id:UInt64}} AS session_id)",
        parameters={"id": first},
    ).result_rows[0][0]
    assert opened.replace(tzinfo=UTC) == datetime.fromtimestamp((T0 + 123) / 1000, UTC)
