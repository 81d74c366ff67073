"""`sshub`: the hub's command line. Each command is its own transaction boundary."""

from __future__ import annotations

import os
import sys

import typer
import uvicorn

from devices.emulators.sscard.cli import app as card_app
from devices.scanner.cli import app as scanner_app
from hub.checkout.cli import app as reconcile_app
from hub.config import Settings
from hub.console.cli import app as operators_app
from hub.db import Database, utcnow
from hub.disbursements.cli import app as disbursements_app
from hub.gateway.cli import app as gateway_app
from hub.issuer.cli import issuer_app, keys_app

app = typer.Typer(help="SSC Hub command line.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo district.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
app.add_typer(demo_app, name="demo")
app.add_typer(audit_app, name="audit")
simulate_app = typer.Typer(help="Simulators of the systems outside the bank.", no_args_is_help=True)
app.add_typer(simulate_app, name="simulate")
app.add_typer(disbursements_app, name="disbursements")
app.add_typer(operators_app, name="operators")
app.add_typer(scanner_app, name="scanner")
app.add_typer(card_app, name="card")
app.add_typer(keys_app, name="keys")
app.add_typer(issuer_app, name="issuer")
app.add_typer(reconcile_app, name="reconcile")
app.add_typer(gateway_app, name="gateway")


def database() -> Database:
    return Database(Settings().database_url)


@app.command()
def serve(
    host: str = typer.Option(None, help="Bind address (default HUB_HOST)."),
    port: int = typer.Option(None, help="Port (default HUB_PORT)."),
    migrate: bool = typer.Option(True, help="Upgrade the schema first."),
) -> None:
    """Serve the hub's API and console."""
    settings = Settings()
    if migrate:
        _upgrade(settings)
    from hub.app import create_app

    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level="warning",
        access_log=False,
    )


def _upgrade(settings: Settings) -> None:
    from hub.migrations import upgrade

    if settings.is_sqlite:
        from pathlib import Path

        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    upgrade(settings.database_url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the schema to the newest revision."""
    _upgrade(Settings())
    typer.echo("schema up to date")


@ledger_app.command("check")
def ledger_check() -> None:
    """Check the ledger's invariants over the whole database; exit 1 when one breaks."""
    from hub.ledger.service import check_invariants

    with database().session() as session:
        problems = check_invariants(session)
    if problems:
        typer.echo(f"LEDGER BROKEN: {len(problems)} problem(s)", err=True)
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        sys.exit(1)
    typer.echo("ledger ok: debits equal credits, every account matches its transfers")


@demo_app.command("seed")
def demo_seed() -> None:
    """Create the demo accounts and fund them (safe to run again)."""
    from hub.demo.seed import seed
    from hub.issuer.protection import CardDataKeys

    settings = Settings()
    _upgrade(settings)
    keys = CardDataKeys.from_settings(settings)
    ids = database().transaction(lambda s: seed(s, keys, utcnow()))
    for name, account_id in ids.items():
        typer.echo(f"{name:<20} account {account_id}")


@demo_app.command("run")
def demo_run(
    units: int = typer.Option(3, min=1, max=50, help="Hospitals in the district."),
    rate: float = typer.Option(2.0, min=0.1, max=200.0, help="Events per second."),
    quiet: bool = typer.Option(False, help="Only a summary every 10 s, no line per event."),
    pcsc: bool = typer.Option(True, help="Tap one hospital's cards through pcscd if it runs."),
) -> None:
    """The living demo district: hub, simulators, terminals and traffic (Ctrl-C stops it)."""
    from hub.demo.district import District, DistrictOptions

    # The hub's own logs stay at warnings unless asked for: the district prints what happens.
    settings = Settings(log_level=os.environ.get("HUB_LOG_LEVEL", "WARNING"))
    options = DistrictOptions(
        units=units, rate=rate, hub_port=settings.port, quiet=quiet, pcsc=pcsc
    )
    district = District(settings, options, say=typer.echo)
    raise typer.Exit(district.run())


@audit_app.command("verify")
def audit_verify() -> None:
    """Verify the audit hash chain; name the first broken entry."""
    from hub.audit.service import verify

    with database().session() as session:
        report = verify(session)
    if not report.intact:
        typer.echo(
            f"AUDIT CHAIN BROKEN at entry {report.first_broken_seq}: {report.reason}", err=True
        )
        sys.exit(1)
    typer.echo(f"audit chain intact: {report.entries} entries")


# Simulators stand outside the bank: each runs as its own program, so the hub never imports it.
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}


def run_simulator(module: str, args: list[str]) -> None:
    """Run `python -m module args...` and exit with its status."""
    import subprocess

    sys.exit(subprocess.call([sys.executable, "-m", module, *args]))


@simulate_app.command("loans", context_settings=PASS_THROUGH, add_help_option=False)
def simulate_loans(ctx: typer.Context) -> None:
    """The loan system: send orders, receive callbacks, reconcile (run | serve | reconcile)."""
    run_simulator("integrations.loans.simulator", ctx.args)


@simulate_app.command("insurance", context_settings=PASS_THROUGH, add_help_option=False)
def simulate_insurance(ctx: typer.Context) -> None:
    """The medical insurance platform (--host, --port 8701, --config policy.yaml)."""
    run_simulator("integrations.medical_insurance.simulator", ctx.args)


@simulate_app.command("day")
def simulate_day(
    seed: int = typer.Option(..., help="The day's seed: the same seed replays the same day."),
    events: int = typer.Option(300, min=1, max=100_000, help="Events from 08:00 to 18:00."),
    database_url: str = typer.Option(None, help="An empty database (default: temporary SQLite)."),
    log: bool = typer.Option(False, help="Print every event as it happens."),
    plant_mismatch_at: int = typer.Option(None, hidden=True, help="Put the model 1 fen off."),
) -> None:
    """A seeded district day with faults, the ledger checked against a model after every
    step; exit 1 at the first difference."""
    from hub.demo.day import DayOptions, run_day

    options = DayOptions(seed, events, database_url, plant_mismatch_at)
    report = run_day(options, say=typer.echo if log else None)
    for line in report.summary():
        typer.echo(line)
    if report.failure is not None:
        if report.failure.trace:
            typer.echo(report.failure.trace, err=True)
        raise typer.Exit(1)


@simulate_app.command("his", context_settings=PASS_THROUGH, add_help_option=False)
def simulate_his(ctx: typer.Context) -> None:
    """The hospital information system's bills (--host, --port 8702, --seed 7)."""
    run_simulator("integrations.his.simulator", ctx.args)
