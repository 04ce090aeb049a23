"""Writing one batch of stream entries into ClickHouse as one idempotent insert."""

from __future__ import annotations

from collections.abc import Sequence

from clickhouse_connect.driver.client import Client

from hitstream.errors import SinkUnavailable

EVENTS_TABLE = "events"

# The token names the batch by its stream IDs: inserting the same batch again is a
# no-op in `events` and, with the second setting, in every materialized view's table.
DEDUP_SETTINGS = {"deduplicate_blocks_in_dependent_materialized_views": 1}


def batch_token(stream: str, ids: Sequence[bytes]) -> str:
    """Deterministic insert-deduplication token for a batch of stream entry IDs."""
    return f"{stream}/{ids[0].decode()}/{ids[-1].decode()}/{len(ids)}"


class ClickHouseSink:
    """Inserts JSONEachRow lines into `events` (blocking; run it in a thread)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def insert(self, rows: Sequence[bytes], token: str) -> None:
        """One INSERT for the whole batch; raises SinkUnavailable on any engine error."""
        try:
            self._client.raw_insert(
                EVENTS_TABLE,
                insert_block=b"\n".join(rows),
                fmt="JSONEachRow",
                settings={**DEDUP_SETTINGS, "insert_deduplication_token": token},
            )
        except Exception as exc:
            raise SinkUnavailable(str(exc).splitlines()[0][:500]) from exc

    def ping(self) -> bool:
        """True when the engine answers a trivial query."""
        try:
            return bool(self._client.query("SELECT 1").result_rows)
        except Exception:
            return False
