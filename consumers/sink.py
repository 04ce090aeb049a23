"""Writing one batch of stream entries into ClickHouse as one idempotent insert."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseError

from foundation.errors import RowsRejected, SinkUnavailable

EVENTS_TABLE = "events"

# The token names the batch by its stream IDs: inserting the same batch again is a
# no-op in `events` and, with the second setting, in every materialized view's table.
# Unknown keys are an error rather than silently dropped: such a row is not ours.
INSERT_SETTINGS = {
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "input_format_skip_unknown_fields": 0,
}

# Session settings of the client that inserts: no LLVM JIT for the views' aggregation.
# Draining ran as fast without it (bench, 3M events: 117k/111k with, 122k/110k without)
# and the consuming process keeps about 15 MB less resident code (10M: 512 -> 496 MB).
WRITER_SESSION = {
    "compile_expressions": 0,
    "compile_aggregate_expressions": 0,
    "compile_sort_description": 0,
}

# ClickHouse error codes meaning the rows themselves are bad: retrying cannot help.
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        26,  # CANNOT_PARSE_QUOTED_STRING
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        32,  # ATTEMPT_TO_READ_AFTER_EOF
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        349,  # CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
        376,  # CANNOT_PARSE_UUID
    }
)

# Which of these (site, event ID) pairs are already stored. The site filter keeps the
# read on the primary key's prefix; the bloom-filter index on event_id skips most
# granules; the caller matches whole pairs, so IDs never collide across sites.
EXISTING_IDS = """
SELECT DISTINCT site_id, toString(event_id)
FROM events
WHERE site_id IN {sites:Array(String)} AND event_id IN {ids:Array(UUID)}
"""


def batch_token(stream: str, ids: Sequence[bytes]) -> str:
    """Deterministic insert-deduplication token for a batch of stream entry IDs."""
    return f"{stream}/{ids[0].decode()}/{ids[-1].decode()}/{len(ids)}"


def _code(exc: BaseException) -> int | None:
    """ClickHouse's error code, which clickhouse-connect carries on its errors."""
    return exc.code if isinstance(exc, ClickHouseError) else None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0][:500] if str(exc).strip() else type(exc).__name__


class ClickHouseSink:
    """Inserts JSONEachRow lines into `events` (blocking; run it in a thread)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def insert(self, rows: Sequence[bytes], token: str) -> None:
        """One INSERT for the whole batch.

        Raises RowsRejected when the data is bad, SinkUnavailable for anything else.
        """
        try:
            self._client.raw_insert(
                EVENTS_TABLE,
                insert_block=b"\n".join(rows),
                fmt="JSONEachRow",
                settings={**INSERT_SETTINGS, "insert_deduplication_token": token},
            )
        except Exception as exc:
            # Anything but bad rows is retried: a batch is never given up for an error
            # that is not the rows' own (a transport error, a full disk, a crash).
            code = _code(exc)
            if code in DATA_ERROR_CODES:
                raise RowsRejected(_first_line(exc), code) from exc
            raise SinkUnavailable(_first_line(exc), code) from exc

    def existing(self, sites: Collection[str], event_ids: Collection[str]) -> set[tuple[str, str]]:
        """The (site_id, event_id) pairs among these sites and IDs already in `events`."""
        if not event_ids:
            return set()
        try:
            result = self._client.query(
                EXISTING_IDS, parameters={"sites": list(sites), "ids": list(event_ids)}
            )
        except Exception as exc:
            raise SinkUnavailable(_first_line(exc), _code(exc)) from exc
        return {(str(row[0]), str(row[1])) for row in result.result_rows}

    def ping(self) -> bool:
        """True when the engine answers a trivial query."""
        try:
            return bool(self._client.query("SELECT 1").result_rows)
        except Exception:
            return False
