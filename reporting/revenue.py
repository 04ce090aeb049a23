"""Revenue metrics (`total_revenue`, `average_revenue`): which revenue goal's currency a
query or a row answers in, the amount an event row counts, and the answer's value shape.
Plausible's rules (`stats/goal/revenue.ex`); offline, without exchange rates, an amount
counts only in its own currency (docs/query-api.md, Revenue)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from reporting import goals
from reporting.expressions import Binder
from reporting.model import Condition, Query
from reporting.sources import NO_AMOUNT
from schemas.query import GOAL_DIMENSION, REVENUE_METRICS
from sites.goals import Goal

# Plausible's warnings (`meta.metric_warnings`), by code.
WARNINGS = {
    "no_revenue_goals_matching": "Revenue metrics are null as there are no matching revenue goals.",
    "no_single_revenue_currency": (
        "Revenue metrics are null as there are multiple currencies for the selected event:goals."
    ),
}
# Symbols of common currencies (CLDR's English ones); other codes are shown as `XYZ 1.00`.
SYMBOLS = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "CN¥", "INR": "₹", "KRW": "₩",
    "BRL": "R$", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "MXN": "MX$", "HKD": "HK$",
    "ILS": "₪", "VND": "₫", "TWD": "NT$", "PHP": "₱",
}  # fmt: skip
# Units of the short form, smallest first.
_SHORT = tuple((Decimal(10) ** (3 * i), unit) for i, unit in enumerate(("", "K", "M", "B", "T")))


@dataclass(frozen=True)
class Currencies:
    """What a query's revenue is answered in: one currency, or each goal row's (with an
    event:goal dimension), or none with the warning saying why."""

    currency: str = ""
    by_goal: dict[str, str] | None = None
    warning: str = ""


def revenue_goals(query: Query) -> list[Goal]:
    """The revenue goals (event goals with a currency) the query's top-level goal filters
    keep; all of the site's without goal filters."""
    kept = list(query.goals)
    for item in query.filters:
        if isinstance(item, Condition) and item.dimension == GOAL_DIMENSION:
            chosen = {g.goal_id for g in goals.selected(item, query.goals)}
            kept = [g for g in kept if (g.goal_id in chosen) != item.negated]
    return [g for g in kept if g.event_name and g.currency]


def currencies(query: Query) -> Currencies:
    """Plausible's `preload_revenue_currencies`: no revenue goal matched, a currency per
    goal row, a single common currency, or several (then none)."""
    found = revenue_goals(query)
    if not found:
        return Currencies(warning="no_revenue_goals_matching")
    if GOAL_DIMENSION in query.dimensions:
        return Currencies(by_goal={g.display_name: g.currency for g in found})
    distinct = {g.currency for g in found}
    if len(distinct) > 1:
        return Currencies(warning="no_single_revenue_currency")
    return Currencies(currency=distinct.pop())


def amount_sql(query: Query, binder: Binder) -> str:
    """The amount an event row counts (NULL: none): its revenue when stored in the
    currency of the revenue goal it completes, never converted; `r<i>` is the goal row's
    label with an event:goal dimension."""
    resolved = currencies(query)
    strings = "Array(String)"
    if resolved.by_goal:
        at = query.dimensions.index(GOAL_DIMENSION)
        names = binder.bind(list(resolved.by_goal), strings)
        codes = binder.bind(list(resolved.by_goal.values()), strings)
        wanted = f"transform(r{at}, {names}, {codes}, '')"
        return f"if(revenue_currency != '' AND revenue_currency = {wanted}, revenue_amount, NULL)"
    if resolved.currency:
        events = [g.event_name for g in revenue_goals(query)]
        return (
            f"if(revenue_currency = {binder.bind(resolved.currency, 'String')} "
            f"AND event_type IN {binder.bind(events, strings)}, revenue_amount, NULL)"
        )
    return NO_AMOUNT


def shape(query: Query, results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each revenue metric of each row, and of its comparison, as Plausible's `{short,
    value, long, currency}` (null without a currency, and so is its change); returns the
    `meta.metric_warnings` to add."""
    asked = [(i, m) for i, m in enumerate(query.metrics) if m in REVENUE_METRICS]
    if not asked:
        return {}
    resolved = currencies(query)
    at = query.dimensions.index(GOAL_DIMENSION) if resolved.by_goal is not None else -1
    for row in results:
        currency = resolved.currency
        if resolved.by_goal is not None:
            currency = resolved.by_goal.get(row["dimensions"][at], "")
        compared = row.get("comparison")
        for i, _ in asked:
            row["metrics"][i] = money(row["metrics"][i], currency) if currency else None
            if compared is not None:
                before = compared["metrics"][i]
                compared["metrics"][i] = money(before, currency) if currency else None
                if not currency:
                    compared["change"][i] = None
    if not resolved.warning:
        return {}
    warning = {"code": resolved.warning, "warning": WARNINGS[resolved.warning]}
    return {m: warning for _, m in asked}


def money(value: Any, currency: str) -> dict[str, Any]:
    """Plausible's revenue value: `short` with 1 decimal and K/M/B/T, `long` with 2
    decimals and thousands separators, the symbol (or the ISO code) before the number."""
    amount = Decimal(str(value if value is not None else 0))
    return {
        "short": _with_symbol(_short(abs(amount)), amount, currency),
        "value": float(round(amount, 3)),
        "long": _with_symbol(f"{_cents(abs(amount)):,}", amount, currency),
        "currency": currency,
    }


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _short(amount: Decimal) -> str:
    """1 decimal, in the largest unit whose figure stays under 1000 once rounded."""
    for size, suffix in _SHORT:
        scaled = (amount / size).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        if scaled < 1000 or suffix == "T":
            return f"{scaled}{suffix}"
    raise AssertionError("unreachable")


def _with_symbol(number: str, amount: Decimal, currency: str) -> str:
    symbol = SYMBOLS.get(currency, f"{currency} ")
    return f"{'-' if amount < 0 else ''}{symbol}{number}"
