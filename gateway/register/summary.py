"""The register at a glance: the figures of a period, for the list page's strip, the
Reports page's charts and ``c4f-gateway register report --summary``.

Every figure counts records (an original with its follow-ups, :mod:`.record`) whose
original falls in ``[since, until)``. A *disclosure* is a message a member of staff sent
outside the centre that actually left: accepted, external, not the gateway's own notice,
not purged (its details are gone), and not a message held for approval now, nor one
refused, withdrawn or expired. *Sent* counts every message the gateway accepted from a
member of staff (held ones included), external or internal.
Months are local calendar months, as every time the register shows.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from gateway.register.criteria import Filters
from gateway.register.index import (
    CONSENT_SHIFT,
    DISCLOSED,
    HELD,
    INCOMPLETE,
    OUTSTANDING,
    REFUSED,
    SENT,
    WITHOUT,
    hold_times,
    is_disclosure,
    month_of,
    organisation_names,
)
from gateway.register.index_counts import groups, month_start, next_month
from gateway.register.index_read import names, where
from gateway.register.ledger import Register
from gateway.register.record import CONSENT_VALUES, REFUSED_OR_NOT_SOUGHT, Record
from gateway.register.scope import RegisterScope

AGE_BANDS = ("under 7 days", "7 to 30 days", "30 to 90 days", "over 90 days")
_BAND_DAYS = (7, 30, 90)
TOP_ORGANISATIONS = 15


@dataclass(frozen=True)
class Summary:
    since: float | None
    until: float | None
    sent: int  # accepted messages (not gateway notices), external or internal
    refused: int  # refused at the door (kind "refused")
    held_now: int  # held for approval right now
    without_consent: int  # external disclosures with consent refused or not sought
    incomplete: int  # records whose disclosure details are incomplete
    inform_outstanding: int  # without consent, "person informed" not yet answered
    # ("2026-11", {"obtained": n, "refused": n, "not-sought": n, "not-recorded": n}),
    # oldest first, every month in the period
    by_month: list[tuple[str, dict[str, int]]]
    # receiving organisation (contact organisation, else the domain) -> disclosures,
    # top 15, descending then by name
    by_organisation: list[tuple[str, int]]
    # (month, held, decided, median hours from hold to decision or None)
    holds_by_month: list[tuple[str, int, int, float | None]]
    # (AGE_BANDS[i], n): incomplete records by the age of their original
    incomplete_by_age: list[tuple[str, int]]
    disclosures: int = 0  # external disclosures in the period (the by_month total)


def months(first: str, last: str) -> list[str]:
    """Every month from ``first`` to ``last`` ("YYYY-MM"), both included."""
    out = []
    while first <= last:
        out.append(first)
        first = next_month(first)
    return out


def period_months(
    since: float | None, until: float | None, now: float, oldest: float | None
) -> list[str]:
    """The months a period covers: from ``since`` (else the oldest record, else the last
    month) to the month before ``until`` ends (else this month)."""
    last = month_of(until - 1 if until is not None else now)
    start = since if since is not None else oldest
    first = month_of(start) if start is not None else last
    return months(first, last) if first <= last else []


def age_band(age_seconds: float) -> int:
    days = age_seconds / 86400.0
    for i, limit in enumerate(_BAND_DAYS):
        if days < limit:
            return i
    return len(_BAND_DAYS)


def median_hours(waits: list[float]) -> float | None:
    return round(statistics.median(waits) / 3600.0, 1) if waits else None


def top_organisations(counts: dict[Any, int], names: dict[Any, str]) -> list[tuple[str, int]]:
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], names[kv[0]].lower(), kv[0]))
    return [(names[k], n) for k, n in ranked[:TOP_ORGANISATIONS]]


def summarise_records(
    records: Iterable[Record],
    *,
    since: float | None,
    until: float | None,
    now: float,
    scope: Callable[[Record], bool] | None = None,
) -> Summary:
    """The figures over already folded records (``Register.records()``). An organisation
    is named as first written in the register (the index keeps that spelling)."""
    records = list(records)
    org_names: dict[str, str] = {}
    for r in records:
        for key, (_, name) in organisation_names(r).items():
            org_names.setdefault(key, name)
    chosen = [
        r
        for r in records
        if r.kind in ("accepted", "refused")
        and (since is None or r.at >= since)
        and (until is None or r.at < until)
        and (scope is None or scope(r))
    ]
    oldest = min((r.at for r in chosen), default=None)
    all_months = period_months(since, until, now, oldest)
    by_month = {m: dict.fromkeys(CONSENT_VALUES, 0) for m in all_months}
    held_count: Counter[str] = Counter()
    decided_count: Counter[str] = Counter()
    waits: dict[str, list[float]] = {}
    orgs: Counter[str] = Counter()
    ages = [0] * len(AGE_BANDS)
    sent = refused = held_now = without = incomplete = outstanding = disclosures = 0
    for r in chosen:
        if r.kind == "refused":
            refused += 1
            continue
        if not r.notice:
            sent += 1
        if r.approval == "held":
            held_now += 1
        held_at, decided_at = hold_times(r)
        if held_at is not None:
            month = month_of(r.at)
            held_count[month] += 1
            if decided_at is not None:
                decided_count[month] += 1
                waits.setdefault(month, []).append(decided_at - held_at)
        if r.missing:
            incomplete += 1
            ages[age_band(now - r.at)] += 1
        if not is_disclosure(r):
            continue
        disclosures += 1
        consent = r.consent if r.consent in CONSENT_VALUES else "not-recorded"
        by_month.setdefault(month_of(r.at), dict.fromkeys(CONSENT_VALUES, 0))[consent] += 1
        if consent in REFUSED_OR_NOT_SOUGHT:
            without += 1
            if not r.informed:
                outstanding += 1
        for key in organisation_names(r):
            orgs[key] += 1
    return Summary(
        since=since,
        until=until,
        sent=sent,
        refused=refused,
        held_now=held_now,
        without_consent=without,
        incomplete=incomplete,
        inform_outstanding=outstanding,
        by_month=sorted(by_month.items()),
        by_organisation=top_organisations(dict(orgs), org_names),
        holds_by_month=[
            (m, held_count[m], decided_count[m], median_hours(waits.get(m, []))) for m in all_months
        ],
        incomplete_by_age=list(zip(AGE_BANDS, ages, strict=True)),
        disclosures=disclosures,
    )


def summarise(
    register: Register,
    *,
    since: float | None,
    until: float | None,
    now: float,
    scope: RegisterScope | None = None,
    charts: bool = True,
) -> Summary:
    """The figures of ``[since, until)`` in ``register``, limited to the records ``scope``
    shows (a manager's, ``[web] manager_scope``). ``charts=False``: the six totals only
    (the list's strip), with the lists left empty.

    Read from the register's index: its records counted by month, facts (the bits of
    :func:`gateway.register.index.facts_of`) and first organisation, from the tally for
    whole months (:func:`gateway.register.index_counts.groups`). :func:`summarise_records`
    counts the same over folded records (the tests hold the two together)."""
    period = Filters(since=since, until=until, include_notices=True)
    counted = groups(register, period, scope)
    assert counted is not None  # a period only
    total: Counter[int] = Counter()
    monthly: dict[str, dict[str, int]] = {}
    for month, facts, _, n in counted:
        for bit in (SENT, REFUSED, HELD, DISCLOSED, WITHOUT, OUTSTANDING, INCOMPLETE):
            if facts & bit:
                total[bit] += n
        if facts & DISCLOSED:
            consent = CONSENT_VALUES[(facts >> CONSENT_SHIFT) & 3]
            cell = monthly.setdefault(month, dict.fromkeys(CONSENT_VALUES, 0))
            cell[consent] += n
    strip = Summary(
        since=since,
        until=until,
        sent=total[SENT],
        refused=total[REFUSED],
        held_now=total[HELD],
        without_consent=total[WITHOUT],
        incomplete=total[INCOMPLETE],
        inform_outstanding=total[OUTSTANDING],
        by_month=[],
        by_organisation=[],
        holds_by_month=[],
        incomplete_by_age=[],
        disclosures=total[DISCLOSED],
    )
    if not charts:
        return strip
    found = where(register, period, scope)
    assert found is not None  # every filter used here is indexed
    sql, args = found
    query = register.store.query
    ages = [0] * len(AGE_BANDS)
    for (at,) in query(  # the incomplete records younger than the oldest band
        "SELECT i.at FROM register_index i INDEXED BY register_index_incomplete"  # noqa: S608
        f" WHERE i.at > ? AND i.incomplete = 1 AND {sql}",
        (now - _BAND_DAYS[-1] * 86400.0, *args),
    ):
        ages[age_band(now - float(at))] += 1
    ages[-1] = total[INCOMPLETE] - sum(ages[:-1])
    first = min((g[0] for g in counted if g[3]), default=None)
    oldest = None if first is None else month_start(first)
    all_months = period_months(since, until, now, oldest)
    held_count: Counter[str] = Counter()
    waits: dict[str, list[float]] = {}
    for month, held_at, decided_at in query(
        "SELECT i.month, i.held_at, i.decided_at FROM register_index i"  # noqa: S608
        f" INDEXED BY register_index_held WHERE i.held_at IS NOT NULL AND {sql}",
        args,
    ):
        held_count[month] += 1
        if decided_at is not None:
            waits.setdefault(month, []).append(decided_at - held_at)
    orgs: Counter[int] = Counter()
    for _, _, org, n in groups(register, period, scope, by_org=True) or []:
        orgs[org] += n
    # A record sent to several organisations counts once for each: the others.
    for term, n in query(
        "SELECT t.term, count(*) FROM register_index i INDEXED BY register_index_orgs"  # noqa: S608
        " CROSS JOIN register_index_term t ON t.seq = i.seq"
        " JOIN register_term w ON w.id = t.term AND w.what IN ('organisation', 'domain')"
        f" WHERE i.orgs > 1 AND i.facts & {DISCLOSED} AND t.term != i.org AND {sql}"
        " GROUP BY t.term",
        args,
    ):
        orgs[int(term)] += int(n)
    names_of = {**names(register, "organisation"), **names(register, "domain")} if orgs else {}
    by_month = {m: dict.fromkeys(CONSENT_VALUES, 0) for m in all_months}
    by_month.update(monthly)
    return dataclasses.replace(
        strip,
        by_month=sorted(by_month.items()),
        by_organisation=top_organisations(dict(orgs), {k: names_of[k] for k in orgs}),
        holds_by_month=[
            (m, held_count[m], len(waits.get(m, [])), median_hours(waits.get(m, [])))
            for m in all_months
        ],
        incomplete_by_age=list(zip(AGE_BANDS, ages, strict=True)),
    )
