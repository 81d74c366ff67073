"""`sshub reconcile --date D`: the day's checkouts against the insurance platform, per unit.

Writes the discrepancy report as CSV and a summary beside it, prints the summary, and exits 1
when anything differs (so a scheduler notices).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.progress import Progress

from hub.checkout.reconciliation import Reconciler, Report
from hub.config import Settings
from hub.db import Database, utcnow
from hub.gateway import service as gateway

app = typer.Typer(help="Reconcile the day's checkouts with the insurance platform.")


@app.callback(invoke_without_command=True)
def reconcile(
    day: Annotated[str, typer.Option("--date", help="The business day, YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="Directory for the CSV report and summary.")] = Path(
        "var"
    ),
) -> None:
    """Compare every unit's totals for the day with 3201; write the discrepancy report."""
    try:
        when = date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter("expected YYYY-MM-DD", param_hint="--date") from None
    report = run(Settings(), when)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"reconciliation-{when.isoformat()}.csv"
    report.write_csv(csv_path)
    summary = report.summary()
    csv_path.with_suffix(".txt").write_text(summary + "\n", encoding="utf-8")
    typer.echo(summary)
    typer.echo(f"report: {csv_path}")
    if not report.balanced:
        sys.exit(1)


def run(settings: Settings, day: date, clock: Callable[[], datetime] = utcnow) -> Report:
    """Reconcile with the concrete clients app.py wires, with a progress bar over the units."""
    from hub.app import checkout_flow

    db = Database(settings.database_url)
    flow = checkout_flow(settings, db, clock)
    reconciler = Reconciler(flow, ZoneInfo(settings.business_timezone))
    try:
        with Progress(transient=True) as progress:
            task = progress.add_task("units", total=_unit_count(db))
            return reconciler.run(day, lambda _code: progress.advance(task))
    finally:
        flow.close()
        db.dispose()


def _unit_count(db: Database) -> int:
    with db.session() as session:
        return len(gateway.list_units(session))
