"""Daily reconciliation with the insurance platform (3201), per unit.

For each unit the hub adds up the day's settlements, net of the day's revokes, as the platform
does (a revoke counts on its own day), and sends the totals; the platform answers whether they
agree and with its own totals. Each difference becomes a row of the discrepancy report:

    missing_on_platform   the hub holds more settlements than the platform (count)
    missing_on_hub        the platform holds settlements the hub never recorded (count)
    amount_mismatch       a total differs (medfee, fund, account, cash)
    in_doubt              a checkout still waiting for the platform's answer (2207 or 2208)
    platform_unreachable  no answer to 3201 for that unit
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from hub.checkout import calls, messages
from hub.checkout import repository as repo
from hub.checkout.flow import CheckoutFlow
from hub.checkout.models import Checkout, ReconciliationRun
from hub.db import day_bounds
from hub.gateway import service as gateway
from integrations.medical_insurance.client import (
    Institution,
    InsuranceError,
    InsuranceTimeout,
    ReconciliationRequest,
    ReconciliationTotals,
)

FIELDS = ("medfee", "fund", "account", "cash", "count")
CSV_COLUMNS = [
    "day",
    "institution_code",
    "kind",
    "field",
    "hub",
    "platform",
    "difference",
    "detail",
]


@dataclass(frozen=True)
class Totals:
    """A unit's day, net of revokes: money in fen, and the number of settlements."""

    medfee: int = 0
    fund: int = 0
    account: int = 0
    cash: int = 0
    count: int = 0

    def value(self, name: str) -> int:
        return int(getattr(self, name))


@dataclass(frozen=True)
class Discrepancy:
    day: date
    institution_code: str
    kind: str
    field: str
    hub: int | None
    platform: int | None
    detail: str

    def row(self) -> list[object]:
        difference = None if self.hub is None or self.platform is None else self.hub - self.platform
        return [
            self.day.isoformat(),
            self.institution_code,
            self.kind,
            self.field,
            "" if self.hub is None else self.hub,
            "" if self.platform is None else self.platform,
            "" if difference is None else difference,
            self.detail,
        ]


@dataclass(frozen=True)
class UnitResult:
    institution_code: str
    hub: Totals
    platform: Totals | None  # None: the platform did not answer
    balanced: bool


@dataclass
class Report:
    day: date
    units: list[UnitResult] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.discrepancies

    @property
    def unreachable(self) -> int:
        return sum(1 for u in self.units if u.platform is None)

    @property
    def differing(self) -> int:
        return sum(1 for u in self.units if u.platform is not None and not u.balanced)

    def summary(self) -> str:
        unreachable, differing = self.unreachable, self.differing
        hub = _sum(u.hub for u in self.units)
        lines = [
            f"reconciliation of {self.day.isoformat()}: {len(self.units)} unit(s), "
            f"{len(self.units) - differing - unreachable} balanced, {differing} with "
            f"differences, {unreachable} unreachable",
            f"hub totals: {hub.count} settlement(s), medfee {hub.medfee} fen, fund {hub.fund}, "
            f"account {hub.account}, cash {hub.cash}",
            f"discrepancies: {len(self.discrepancies)}",
        ]
        lines += [
            f"  {d.institution_code} {d.kind} {d.field}: hub {d.hub} platform {d.platform}"
            f"{' - ' + d.detail if d.detail else ''}"
            for d in self.discrepancies
        ]
        return "\n".join(lines)

    def write_csv(self, path: Path) -> None:
        """The discrepancy report: one row per difference (a header only when balanced)."""
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_COLUMNS)
            writer.writerows(d.row() for d in self.discrepancies)


def _sum(totals: Iterable[Totals]) -> Totals:
    rows = list(totals)
    return Totals(*(sum(t.value(name) for t in rows) for name in FIELDS))


def hub_totals(checkouts: Sequence[Checkout], start: datetime, end: datetime) -> Totals:
    """The day's settlements less the day's revokes, as the platform counts them."""
    totals = {name: 0 for name in FIELDS}
    for checkout in checkouts:
        for at, sign in ((checkout.settled_at, 1), (checkout.revoked_at, -1)):
            if at is None or not start <= at < end or checkout.setl_id is None:
                continue
            totals["medfee"] += sign * checkout.medfee
            totals["fund"] += sign * (checkout.setl_fund or 0)
            totals["account"] += sign * (checkout.setl_account or 0)
            totals["cash"] += sign * (checkout.setl_cash or 0)
            totals["count"] += sign
    return Totals(**totals)


def _platform_totals(answer: ReconciliationTotals) -> Totals:
    return Totals(
        answer.medfee_sumamt,
        answer.fund_pay_sumamt,
        answer.acct_pay,
        answer.psn_cash_pay,
        answer.fixmedins_setl_cnt,
    )


def compare(day: date, code: str, hub: Totals, platform: Totals) -> list[Discrepancy]:
    found = []
    for name in FIELDS:
        ours, theirs = hub.value(name), platform.value(name)
        if ours == theirs:
            continue
        if name == "count":
            kind = "missing_on_platform" if ours > theirs else "missing_on_hub"
            detail = f"{abs(ours - theirs)} settlement(s)"
        else:
            kind, detail = "amount_mismatch", ""
        found.append(Discrepancy(day, code, kind, name, ours, theirs, detail))
    return found


class Reconciler:
    """Reconciles every unit for one day through the checkout's own platform clients."""

    def __init__(self, flow: CheckoutFlow, zone: ZoneInfo) -> None:
        self.flow = flow
        self.zone = zone

    def run(self, day: date, progress: Callable[[str], None] | None = None) -> Report:
        report = Report(day)
        with self.flow.db.session() as session:
            units = [
                (u.institution_code, u.name, u.region_code) for u in gateway.list_units(session)
            ]
        for code, name, region in units:
            institution = Institution(
                fixmedins_code=code,
                fixmedins_name=name,
                mdtrtarea_admvs=region,
                opter=self.flow.rules.operator,
            )
            self._unit(report, institution)
            if progress is not None:
                progress(code)
        self._record(report)
        return report

    def _record(self, report: Report) -> None:
        """Keep the run's outcome, so the console can raise differences as an alert."""
        run = ReconciliationRun(
            day=report.day,
            ran_at=self.flow.clock(),
            units=len(report.units),
            differing_units=report.differing,
            unreachable_units=report.unreachable,
            discrepancies=len(report.discrepancies),
            summary=report.summary(),
        )
        self.flow.db.transaction(lambda s: repo.add(s, run))

    def _unit(self, report: Report, institution: Institution) -> None:
        code, day = institution.fixmedins_code, report.day
        start, end = day_bounds(day, self.zone)
        with self.flow.db.session() as session:
            hub = hub_totals(repo.booked_between(session, code, start, end), start, end)
            report.discrepancies += self._in_doubt(session, code, day, end)
        answer = self._ask(institution, day, hub)
        if isinstance(answer, str):
            report.units.append(UnitResult(code, hub, None, False))
            report.discrepancies.append(
                Discrepancy(day, code, "platform_unreachable", "", None, None, answer)
            )
            return
        platform = _platform_totals(answer)
        differences = compare(day, code, hub, platform)
        if not differences and not answer.balanced:  # the platform disagrees on something else
            differences = [
                Discrepancy(day, code, "amount_mismatch", "", None, None, answer.stmt_rslt_dscr)
            ]
        report.units.append(UnitResult(code, hub, platform, not differences))
        report.discrepancies += differences

    def _in_doubt(self, session: Session, code: str, day: date, end: datetime) -> list[Discrepancy]:
        return [
            Discrepancy(
                day,
                code,
                "in_doubt",
                f"checkout:{checkout.id}",
                None,
                None,
                f"{checkout.state}: waiting for the platform's answer",
            )
            for checkout in repo.in_doubt(session, code, end)
        ]

    def _ask(self, institution: Institution, day: date, hub: Totals) -> ReconciliationTotals | str:
        """The platform's verdict, or why there is none."""
        request = ReconciliationRequest(
            stmt_begndate=day,
            stmt_enddate=day,
            medfee_sumamt=hub.medfee,
            fund_pay_sumamt=hub.fund,
            acct_pay=hub.account,
            fixmedins_setl_cnt=hub.count,
        )
        code = institution.fixmedins_code
        now = self.flow.clock()
        call_id, msgid = self.flow.db.transaction(
            lambda s: calls.allocate_msgid(s, code, messages.RECONCILE, now, request)
        )
        try:
            client = self.flow.client_for(institution)
            answer = client.reconciliation_totals(msgid, request)
        except (InsuranceError, InsuranceTimeout) as exc:
            reason = str(exc)
            self.flow.db.transaction(
                lambda s: calls.note_outcome(s, call_id, None, reason, self.flow.clock())
            )
            return reason
        self.flow.db.transaction(
            lambda s: calls.note_outcome(s, call_id, answer, None, self.flow.clock())
        )
        return answer
