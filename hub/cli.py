"""`sshub`: the hub's command line. Each command is its own transaction boundary."""

from __future__ import annotations

import sys

import typer
import uvicorn

from hub.config import Settings
from hub.db import Database, utcnow

app = typer.Typer(help="SSC Hub command line.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo district.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit trail.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ledger_app, name="ledger")
app.add_typer(demo_app, name="demo")
app.add_typer(audit_app, name="audit")


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
def demo_run() -> None:
    """The quick-start demo: migrate, seed, and serve the hub on SQLite."""
    settings = Settings()
    demo_seed()
    typer.echo(f"SSC Hub demo on http://{settings.host}:{settings.port}  (Ctrl-C stops it)")
    serve(host=settings.host, port=settings.port, migrate=False)


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
