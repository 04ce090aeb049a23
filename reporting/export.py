"""GET /api/sites/{site_id}/export: a site's raw events over a range, streamed (admin).

NDJSON and CSV flow from the engine block by block; Parquet, whose footer needs the
whole file, is written by the embedded engine to a private temporary file in the data
dir (a server streams it itself) and sent from there. Memory stays flat at any size.
How many run at once, for how long, and their files' disk: reporting/exportlimits.py.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Generator
from functools import partial
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from anyio import to_thread
from clickhouse_connect.driver.client import Client
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from foundation.clients import close_quietly
from foundation.http import APIError, validation_details
from reporting import csvcells
from reporting.exportlimits import ExportLimits
from reporting.model import QueryError
from reporting.parse import explicit_range
from reporting.periods import Period, resolve
from schemas.event import clickhouse_time
from sites.access import require_admin

# What an export holds: every stored column but the site (it is the site's).
COLUMNS = (
    "event_id", "event_type", "ts", "received_at", "path", "hostname", "referrer", "source",
    "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "props",
    "visitor_id", "user_id", "browser", "browser_version", "os", "os_version", "device",
    "country", "interactive", "engagement_ms", "scroll_depth", "revenue_amount",
    "revenue_currency",
)  # fmt: skip
# The text columns (the others are numbers, times, UUIDs, a flag and a map: none can
# start a formula); in CSV the engine quotes their formula-like values (reporting.csvcells).
TEXT_COLUMNS = frozenset({
    "event_type", "path", "hostname", "referrer", "source", "utm_source", "utm_medium",
    "utm_campaign", "utm_term", "utm_content", "user_id", "browser", "browser_version", "os",
    "os_version", "device", "country", "revenue_currency",
})  # fmt: skip
# Day by day in the table's own order (sorting by time would hold a day's rows in memory).
EXPORT = """
SELECT {columns} FROM events
WHERE site_id = {{site_id:String}}
  AND ts >= {{t0:DateTime64(3, 'UTC')}} AND ts < {{t1:DateTime64(3, 'UTC')}}
ORDER BY site_id, toDate(ts)
"""
EXPORT_AS_IS = EXPORT.format(columns=", ".join(COLUMNS))
EXPORT_CSV = EXPORT.format(
    columns=", ".join(csvcells.cell_sql(c) if c in TEXT_COLUMNS else c for c in COLUMNS)
)
FORMATS = {
    "ndjson": ("JSONEachRow", "application/x-ndjson"),
    "csv": ("CSV", "text/csv; charset=utf-8"),
    "parquet": ("Parquet", "application/vnd.apache.parquet"),
}
CHUNK = 1 << 16


class ExportQuery(BaseModel):
    """`from` and `to`: dates (whole days in the site's zone) or date-times with offsets."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str
    to: str
    format: Literal["ndjson", "csv", "parquet"] = "ndjson"


def _period(query: ExportQuery, tz: ZoneInfo) -> Period:
    bounds = explicit_range(query.from_, query.to, names=("from", "to"), whole="from")
    return resolve(bounds, tz, dt.datetime.now(dt.UTC))


def _parameters(site_id: str, period: Period) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "t0": clickhouse_time(period.start),
        "t1": clickhouse_time(period.end),
    }


def _stream(
    client: Client, sql: str, parameters: dict[str, Any], fmt: str
) -> Generator[bytes, None, None]:
    """The engine's output in chunks; the client is closed when the stream ends."""
    try:
        stream = client.raw_stream(sql, parameters=parameters, fmt=fmt)
        if isinstance(stream, io.IOBase):  # the embedded engine
            try:
                while chunk := stream.read(CHUNK):
                    yield chunk
            finally:
                stream.close()
        else:  # a server, over HTTP
            with stream as chunks:
                yield from chunks
    finally:
        client.close()


def _parquet_file(client: Client, parameters: dict[str, Any], path: Path) -> None:
    """The embedded engine writes Parquet row group by row group into a private file."""
    try:
        client.command(
            f"{EXPORT_AS_IS} INTO OUTFILE '{path}' TRUNCATE FORMAT Parquet", parameters=parameters
        )
    finally:
        client.close()


async def export(request: Request[Any]) -> Response:
    """A site's raw events as NDJSON, CSV (with a header row) or Parquet."""
    # An export costs an engine client and (Parquet) a file: not for other origins' pages.
    await require_admin(request, costly=True)
    site_id = request.path_params["site_id"]
    params = dict(request.query_params)
    if "from" in params:
        params["from_"] = params.pop("from")
    try:
        query = ExportQuery.model_validate(params)
    except ValidationError as exc:
        details = validation_details(exc)
        for item in details:
            item["field"] = "from" if item["field"] == "from_" else item["field"]
        raise APIError(400, "invalid export query", details) from None
    tz = ZoneInfo(await request.state["site_cache"].timezone(site_id))
    try:
        period = _period(query, tz)
    except QueryError as exc:
        details = [{"field": exc.field, "message": exc.message}]
        raise APIError(400, "invalid export query", details) from None
    parameters = _parameters(site_id, period)
    name = f"{site_id}-{period.start.date().isoformat()}.{query.format}"
    headers = {"content-disposition": f'attachment; filename="{name}"'}
    limits: ExportLimits = request.state["export_limits"]
    limits.take()
    try:
        if query.format == "parquet" and limits.directory is not None:
            response, cleanup = await _parquet(request, limits, parameters, headers)
        else:
            response, cleanup = await _streamed(request, query.format, parameters, headers)
    except BaseException:
        limits.give_back()
        raise
    return limits.bounded(response, cleanup)


Headers = dict[str, str]
Sent = tuple[Response, Callable[[], None]]  # a response, and what frees its resources


async def _parquet(
    request: Request[Any], limits: ExportLimits, parameters: dict[str, Any], headers: Headers
) -> Sent:
    """Written to a file by the embedded engine, then sent from it; the file goes after."""
    path = await to_thread.run_sync(limits.new_file)
    try:
        client = await to_thread.run_sync(request.state["export_client"])
        await to_thread.run_sync(_parquet_file, client, parameters, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    media_type = FORMATS["parquet"][1]
    response = FileResponse(path, media_type=media_type, headers=headers)
    return response, partial(path.unlink, missing_ok=True)


async def _streamed(
    request: Request[Any], name: str, parameters: dict[str, Any], headers: Headers
) -> Sent:
    """Streamed from the engine as it reads; closed with the response."""
    fmt, media_type = FORMATS[name]
    client = await to_thread.run_sync(request.state["export_client"])
    if name == "csv":
        sql, parameters = EXPORT_CSV, {**parameters, **csvcells.SQL_PARAMETERS}
        chunks = _with_header(_stream(client, sql, parameters, fmt))
    else:
        chunks = _stream(client, EXPORT_AS_IS, parameters, fmt)
    response = StreamingResponse(chunks, media_type=media_type, headers=headers)
    # When a reader leaves early or is cut, the engine's stream and client are closed
    # now (not by the garbage collector); never started, the client still is.
    return response, partial(_close, chunks, client)


def _close(chunks: Generator[bytes, None, None], client: Client) -> None:
    chunks.close()
    close_quietly(client)


def _with_header(chunks: Generator[bytes, None, None]) -> Generator[bytes, None, None]:
    yield (",".join(COLUMNS) + "\n").encode()
    yield from chunks
