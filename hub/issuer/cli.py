"""`sshub keys ...` (issuer master keys) and `sshub issuer ...` (PINs, personalisation).

Keys are shown by version and check value only; a key is never printed, logged or asked for
on the command line (an imported key is read from a file).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

from hub.audit import service as audit
from hub.config import Settings
from hub.db import Database, utcnow
from hub.errors import HubError
from hub.issuer import service
from hub.issuer.keys import IssuerKeyInfo, IssuerSecrets

keys_app = typer.Typer(help="Issuer master keys (shown by version and check value only).")
issuer_app = typer.Typer(help="Card PINs and personalisation.", no_args_is_help=True)
ACTOR = "system:cli"
T = TypeVar("T")


def _run(work: Callable[[Session, IssuerSecrets], T]) -> T:
    settings = Settings()
    secrets = IssuerSecrets.from_settings(settings)
    try:
        return Database(settings.database_url).transaction(lambda s: work(s, secrets))
    except HubError as exc:
        typer.echo(f"refused ({exc.code}): {exc.message}", err=True)
        sys.exit(1)


def _show(info: IssuerKeyInfo) -> str:
    return (
        f"key v{info.version}  {info.status:<8} kcv {info.kcv}  created {info.created_at:%Y-%m-%d}"
    )


def _audited(session: Session, action: str, info: IssuerKeyInfo) -> IssuerKeyInfo:
    audit.record(
        session,
        actor=ACTOR,
        action=action,
        subject=f"issuer_key:v{info.version}",
        now=utcnow(),
        details={"kcv": info.kcv},
    )
    return info


@keys_app.command("create")
def create(
    import_file: Annotated[
        Path | None,
        typer.Option(help="Import a 16-byte key from this file (hex) instead of a random one."),
    ] = None,
) -> None:
    """Create the next issuer master key version (the first one, or an imported one)."""
    key = bytes.fromhex(import_file.read_text().strip()) if import_file else None
    info = _run(
        lambda s, k: _audited(
            s, "issuer.key_created", service.create_issuer_key(s, k, utcnow(), key=key)
        )
    )
    typer.echo(_show(info))


@keys_app.command("rotate")
def rotate() -> None:
    """A new active version for new cards; older versions keep verifying their cards."""
    info = _run(
        lambda s, k: _audited(s, "issuer.key_rotated", service.rotate_issuer_key(s, k, utcnow()))
    )
    typer.echo(_show(info))


@keys_app.command("list")
def list_keys() -> None:
    for info in _run(lambda s, _k: service.list_issuer_keys(s)):
        typer.echo(_show(info))


@issuer_app.command("set-pin")
def set_pin(
    card_number: str,
    pin: Annotated[
        str,
        typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, envvar="SSHUB_PIN"),
    ] = "",
) -> None:
    """Set a card's PIN (asked for, or read from SSHUB_PIN) and reset its tries."""

    def work(session: Session, secrets: IssuerSecrets) -> None:
        service.set_pin(session, card_number, pin, secrets, utcnow())
        audit.record(
            session, actor=ACTOR, action="card.pin_set", subject=f"card:{card_number}", now=utcnow()
        )

    _run(work)
    typer.echo(f"PIN set for card {card_number}")


@issuer_app.command("personalise")
def personalise(
    card_number: str,
    out: Annotated[Path, typer.Option(help="Card profile to write (JSON), for `sshub card`.")],
    id_number: Annotated[
        str, typer.Option(help="The holder's social security number (the registry keeps a hash).")
    ],
) -> None:
    """Prepare a card's chip data under the active key: a profile file for the virtual card.

    The file holds the card's own key, as a personalisation file does: it is written readable
    by its owner only, and never printed.
    """
    profile = _run(lambda s, k: service.personalisation(s, card_number, k))
    profile["id_number"] = id_number
    descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(profile, handle, ensure_ascii=False, indent=2)
    typer.echo(f"card {card_number} personalised under key v{profile['key_index']}: {out}")
