"""`sshub disbursements`: reconciliation file, callback re-sends, loan clients and their keys."""

from __future__ import annotations

import getpass
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from hub.config import VAR_DIR, Settings
from hub.db import Database, utcnow
from hub.disbursements import clients, service
from hub.disbursements import export as export_file
from hub.outbox import service as outbox

app = typer.Typer(help="Loan disbursements.", no_args_is_help=True)
client_app = typer.Typer(help="Loan clients and their keys.", no_args_is_help=True)
app.add_typer(client_app, name="client")


def _database() -> Database:
    return Database(Settings().database_url)


def _actor() -> str:
    return f"operator:{getpass.getuser()}"


@app.command("export")
def export(
    day: Annotated[str, typer.Option("--date", help="Business day, YYYY-MM-DD.")],
    out: Annotated[str, typer.Option(help="File to write ('-' for stdout).")] = "",
    client: Annotated[str, typer.Option(help="Only this loan client's disbursements.")] = "",
) -> None:
    """Write the day's disbursements and undos as CSV, with a trailer of counts and sums."""
    business_day = date.fromisoformat(day)
    with _database().session() as session:
        text = export_file.day_file(session, business_day, client or None)
    if out == "-":
        sys.stdout.write(text)
        return
    path = Path(out) if out else VAR_DIR / "exports" / f"disbursements-{business_day}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path} ({text.count(chr(10)) - 2} rows)")


@app.command("resend")
def resend(
    external_id: Annotated[str, typer.Argument(help="Re-send this disbursement's callbacks.")] = "",
    dead: Annotated[bool, typer.Option("--dead", help="Re-send every dead callback.")] = False,
) -> None:
    """Put callbacks back in the outbox with a fresh retry budget; the hub's worker sends them."""
    if bool(external_id) == dead:
        raise typer.BadParameter("give an external id or --dead, not both")
    now, actor = utcnow(), _actor()

    def work(session: Session) -> list[int]:
        if external_id:
            return service.resend_callbacks(session, external_id, now, actor=actor)
        found = outbox.messages(session, state="dead", topic=service.CALLBACK_TOPIC, limit=10_000)
        return [outbox.resend(session, m.id, now, actor=actor).id for m in found]

    ids = _database().transaction(work)
    typer.echo(f"{len(ids)} callback(s) queued again")


@app.command("callbacks")
def callbacks(
    state: Annotated[str, typer.Option(help="pending, delivered or dead.")] = "dead",
    limit: Annotated[int, typer.Option()] = 50,
) -> None:
    """List callbacks by delivery state (newest first)."""
    with _database().session() as session:
        found = outbox.messages(session, state=state, topic=service.CALLBACK_TOPIC, limit=limit)
        for m in found:
            typer.echo(f"{m.id:>8}  {m.event_id:<60} attempts={m.attempts}  {m.last_error or ''}")


@client_app.command("create")
def create_client(
    name: Annotated[str, typer.Argument(help="The loan system's name, e.g. micro-loans.")],
    callback_url: Annotated[str, typer.Option(help="Where the hub sends outcomes.")],
) -> None:
    """Register a loan client and print its first key (the secret is shown only now)."""
    rules = service.Rules.from_settings(Settings())
    issued = _database().transaction(
        lambda s: clients.create_client(s, name, callback_url, rules, utcnow(), actor=_actor())
    )
    _show(issued.key_id, issued.secret)


@client_app.command("rotate")
def rotate_key(name: Annotated[str, typer.Argument(help="The loan client.")]) -> None:
    """Issue a new key; the old ones keep working for HUB_LOAN_KEY_GRACE_SECONDS."""
    rules = service.Rules.from_settings(Settings())
    issued = _database().transaction(
        lambda s: clients.rotate_key(s, name, rules, utcnow(), actor=_actor())
    )
    _show(issued.key_id, issued.secret)


@client_app.command("disable")
def disable_client(name: Annotated[str, typer.Argument(help="The loan client.")]) -> None:
    """Refuse every request of this loan client (403 client_disabled) until enabled again."""
    _set_active(name, False)


@client_app.command("enable")
def enable_client(name: Annotated[str, typer.Argument(help="The loan client.")]) -> None:
    """Accept this loan client's requests again."""
    _set_active(name, True)


def _set_active(name: str, active: bool) -> None:
    _database().transaction(
        lambda s: clients.set_client_active(s, name, active, utcnow(), actor=_actor())
    )
    typer.echo(f"loan client {name} {'enabled' if active else 'disabled'}")


def _show(key_id: str, secret: str) -> None:
    typer.echo(f"key id  {key_id}")
    typer.echo(f"secret  {secret}")
    typer.echo("The secret is not stored: give it to the loan system now.")
