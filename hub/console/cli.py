"""`sshub operators ...`: console operators from the command line, one transaction each."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.console import service
from hub.console.errors import ConsoleError
from hub.console.models import Role
from hub.db import Database, utcnow

app = typer.Typer(help="Console operators.", no_args_is_help=True)
ACTOR = "system:cli"
Work = Callable[[Session], object]


def _run(work: Work) -> None:
    settings = Settings()
    try:
        Database(settings.database_url).transaction(work)
    except ConsoleError as exc:
        fields = getattr(exc, "fields", {})
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items()) or exc.message
        typer.echo(f"refused ({exc.code}): {detail}", err=True)
        sys.exit(1)


@app.command("create")
def create(
    username: str,
    role: Annotated[Role, typer.Option(help="viewer, operator or admin.")] = Role.VIEWER,
    name: Annotated[str, typer.Option(help="Full name (default: the user name).")] = "",
    password: Annotated[
        str,
        typer.Option(
            prompt=True, hide_input=True, confirmation_prompt=True, envvar="SSHUB_PASSWORD"
        ),
    ] = "",
) -> None:
    """Create an operator; the password is asked for (or read from SSHUB_PASSWORD)."""
    policy = service.SessionPolicy.from_settings(Settings())
    _run(
        lambda s: service.create_operator(
            s,
            username=username,
            display_name=name or username,
            password=password,
            role=role,
            policy=policy,
            actor=ACTOR,
            now=utcnow(),
        )
    )
    typer.echo(f"operator {username.lower()} created with role {role.value}")


@app.command("set-role")
def set_role(username: str, role: Role) -> None:
    """Change an operator's role."""
    _run(lambda s: service.set_role(s, username, role, actor=ACTOR, now=utcnow()))
    typer.echo(f"{username.lower()} is now {role.value}")


@app.command("disable")
def disable(username: str) -> None:
    """Disable an operator and end their sessions."""
    _run(lambda s: service.set_disabled(s, username, True, actor=ACTOR, now=utcnow()))
    typer.echo(f"{username.lower()} disabled")


@app.command("enable")
def enable(username: str) -> None:
    """Enable a disabled operator again."""
    _run(lambda s: service.set_disabled(s, username, False, actor=ACTOR, now=utcnow()))
    typer.echo(f"{username.lower()} enabled")
