"""Goals as records: an event goal (a custom event's name) or a page goal (a pageview's
path, `*` and `**` both any characters), their rules, ids and cached JSON form.

The rules are Plausible's (`goals/goals.ex` find_or_create, `goal/schema.ex`,
`filters/utils.ex` page_regex: docs/http-api.md, Goals).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

import orjson

from foundation.errors import HitstreamError
from schemas.urls import UNSAFE, UNSAFE_MESSAGE

MAX_GOALS = 1000
MAX_EVENT_NAME = 120
MAX_PAGE_PATH = 2000
# A page goal's `*` runs and `|` alternatives together. A query matches every event's
# path against all the site's wildcard goals at once (one compiled set a process): a
# thousand goals of ten each compile in about 3 s the first time, twenty each in 7 s.
MAX_PAGE_WILDCARDS = 10
MAX_DISPLAY_NAME = 2010
# Plausible's one reserved name: its engagement events' (`pageleave`).
RESERVED_EVENT_NAMES = ("pageleave",)
EVENT = "event"
PAGE = "page"
# ISO 4217 codes of current currencies (funds and metals aside): a revenue goal's.
_CODES = """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD
    BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB
    EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP
    SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD
    XCG XOF XPF YER ZAR ZMW ZWG ZWL"""
CURRENCIES = frozenset(_CODES.split())


def _now() -> datetime:
    """Now, to the millisecond: what ClickHouse and the cache keep."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class GoalError(HitstreamError, ValueError):
    """A goal refused: the field and Plausible's message for it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Goal:
    """One goal of a site: `event_name` set for an event goal, `page_path` for a page
    goal; `currency` (ISO 4217, event goals only) makes it a revenue goal."""

    site_id: str
    goal_id: int
    event_name: str = ""
    page_path: str = ""
    display_name: str = ""
    currency: str = ""
    deleted: bool = False
    created_at: datetime = field(default_factory=_now)

    @property
    def goal_type(self) -> str:
        return PAGE if self.page_path else EVENT

    def same_target(self, other: Goal) -> bool:
        """The find-or-create key: the same event name, or the same page path."""
        return (self.event_name, self.page_path) == (other.event_name, other.page_path)


def goal_id_of(site_id: str, event_name: str, page_path: str) -> int:
    """A goal's id: a hash of its site and target below 2**53 (JavaScript's safe
    integers), so two requests creating one goal at once make the same record."""
    digest = hashlib.blake2b(
        "\0".join((site_id, event_name, page_path)).encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big") % (1 << 53) or 1


def make_goal(
    site_id: str,
    *,
    event_name: str | None = None,
    page_path: str | None = None,
    display_name: str | None = None,
    currency: str | None = None,
) -> Goal:
    """A new goal from what a client sent (exactly one of event_name and page_path),
    trimmed and defaulted as Plausible does; GoalError names what is wrong."""
    sent = {"event_name": event_name, "page_path": page_path, "display_name": display_name}
    for name, text in sent.items():
        if text is not None and UNSAFE.search(text):
            raise GoalError(name, UNSAFE_MESSAGE)
    if page_path is not None:
        path = page_path.strip()
        if not path:
            raise GoalError("page_path", "can't be blank")
        path = path if path.startswith("/") else "/" + path
        if len(path) > MAX_PAGE_PATH:
            raise GoalError("page_path", f"should be at most {MAX_PAGE_PATH} character(s)")
        if len(re.findall(r"\*+", path)) + path.count("|") > MAX_PAGE_WILDCARDS:
            raise GoalError(
                "page_path",
                f"should have at most {MAX_PAGE_WILDCARDS} wildcards (`*`) and alternatives (`|`)",
            )
        name, cur = "", ""  # a page goal drops a currency, as Plausible's does
        default = f"Visit {path}"
    else:
        name = (event_name or "").strip()
        if not name:
            raise GoalError("event_name", "can't be blank")
        if len(name) > MAX_EVENT_NAME:
            raise GoalError("event_name", f"should be at most {MAX_EVENT_NAME} character(s)")
        if name in RESERVED_EVENT_NAMES:
            raise GoalError(
                "event_name", f"The event name '{name}' is reserved and cannot be used as a goal"
            )
        path = ""
        cur = (currency or "").strip().upper()
        if cur and cur not in CURRENCIES:
            raise GoalError("currency", "is invalid")
        default = name
    shown = (display_name or "").strip() or default
    if len(shown) > MAX_DISPLAY_NAME:
        raise GoalError("display_name", f"should be at most {MAX_DISPLAY_NAME} character(s)")
    return Goal(site_id, goal_id_of(site_id, name, path), name, path, shown, cur)


def find_or_add(existing: list[Goal], wanted: Goal) -> tuple[Goal, bool]:
    """Plausible's find_or_create over a site's live goals: the goal with the same target
    as is (True: it was there), else `wanted` once it breaks no rule (False: to store)."""
    for goal in existing:
        if goal.same_target(wanted):
            if wanted.event_name and goal.currency != wanted.currency:
                shown = goal.currency or "none"
                raise GoalError(
                    "event_name",
                    f"'{goal.event_name}' (with currency: {shown}) has already been taken",
                )
            return goal, True
    if len(existing) >= MAX_GOALS:
        raise GoalError("goal", "Maximum number of goals reached")
    if any(goal.display_name == wanted.display_name for goal in existing):
        raise GoalError("display_name", "has already been taken")
    return replace(wanted, created_at=_now()), False


def page_regex(pattern: str) -> str:
    """A page goal's (or wildcard filter's) path as an anchored regex: Plausible's
    page_regex, where `*` and `**` both match any characters (`/` too) and `|` separates
    alternatives."""
    escaped = re.escape(pattern).replace(r"\|", "|")
    return "^" + escaped.replace(r"\*\*", ".*").replace(r"\*", ".*") + "$"


def is_wildcard(page_path: str) -> bool:
    """A page goal matched by page_regex (else by equality), as Plausible's."""
    return "*" in page_path


def goal_json(goal: Goal) -> bytes:
    """The cached form of a goal (times as epoch milliseconds)."""
    data = asdict(goal)
    data["created_at"] = int(goal.created_at.timestamp() * 1000)
    return orjson.dumps(data)


def goal_from_json(raw: bytes | str) -> Goal:
    data = orjson.loads(raw)
    data["created_at"] = datetime.fromtimestamp(data["created_at"] / 1000, UTC)
    return Goal(**data)
