"""`sshub gateway ...`: units, terminals, enrollment codes, configs and rollouts from a shell.

Each command is one transaction; the actor in the audit trail is `cli`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from pydantic import BaseModel
from sqlalchemy.orm import Session

from hub.config import Settings
from hub.db import Database, utcnow
from hub.errors import HubError
from hub.gateway import firmware, service
from hub.gateway.schemas import RolloutIn, TerminalFilter, TerminalIn, UnitIn

app = typer.Typer(help="Units, terminals, enrollment, configs and rollouts.", no_args_is_help=True)
ACTOR = "cli"
T = TypeVar("T")


def _run(work: Callable[[Session], T]) -> T:
    database = Database(Settings().database_url)
    try:
        return database.transaction(work)
    except HubError as exc:
        typer.echo(f"refused: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    finally:
        database.dispose()


def _show(value: BaseModel | list[Any]) -> None:
    if isinstance(value, list):
        for item in value:
            typer.echo(item.model_dump_json())
    else:
        typer.echo(value.model_dump_json(indent=2))


@app.command("unit-add")
def unit_add(institution_code: str, name: str, region_code: str) -> None:
    """Register a medical insurance unit."""
    spec = UnitIn(institution_code=institution_code, name=name, region_code=region_code)
    _show(_run(lambda s: service.create_unit(s, spec, actor=ACTOR, now=utcnow())))


@app.command("units")
def units() -> None:
    """Units with their terminals counted by presence."""
    _show(_run(service.list_units))


@app.command("terminal-add")
def terminal_add(institution_code: str, serial: str, model: str) -> None:
    """Pre-register a terminal's serial for a unit."""
    interval = Settings().gateway_heartbeat_interval_seconds

    def work(s: Session) -> BaseModel:
        unit = service.find_unit(s, institution_code)
        spec = TerminalIn(unit_id=unit.id, serial=serial, model=model)
        return service.preregister_terminal(s, spec, actor=ACTOR, now=utcnow(), interval=interval)

    _show(_run(work))


@app.command("import")
def import_csv(institution_code: str, path: Path) -> None:
    """Pre-register a unit's terminals from CSV (serial,model[,kind][,hardware_revision])."""
    text = path.read_text(encoding="utf-8")
    interval = Settings().gateway_heartbeat_interval_seconds

    def work(s: Session) -> list[Any]:
        unit = service.find_unit(s, institution_code)
        return service.import_terminals_csv(
            s, unit.id, text, actor=ACTOR, now=utcnow(), interval=interval
        )

    _show(_run(work))


@app.command("terminals")
def terminals(
    institution_code: str = typer.Option(None, help="Only this unit's terminals."),
    presence: str = typer.Option(None, help="online, stale or offline."),
    text: str = typer.Option(None, help="Part of a serial, unit code or unit name."),
) -> None:
    """Search terminals."""

    def work(s: Session) -> list[Any]:
        unit_id = service.find_unit(s, institution_code).id if institution_code else None
        terms = TerminalFilter.model_validate(
            {"unit_id": unit_id, "presence": presence, "text": text, "limit": 500}
        )
        return service.search_terminals(s, terms).items

    _show(_run(work))


@app.command("enrol-code")
def enrol_code(
    serial: str,
    png: Annotated[
        Path | None, typer.Option(help="Also write the QR code to this PNG file.")
    ] = None,
) -> None:
    """A one-time enrollment code for a serial, as text and QR (shown once)."""
    settings = Settings()
    ttl = timedelta(seconds=settings.gateway_enrollment_code_ttl_seconds)

    def work(s: Session) -> Any:
        terminal = service.find_terminal(s, serial)
        return service.create_enrollment_code(
            s, terminal.id, actor=ACTOR, now=utcnow(), hub_url=settings.gateway_public_url, ttl=ttl
        )

    out = _run(work)
    if png:
        png.write_bytes(base64.b64decode(out.qr_png_base64))
    typer.echo(f"code {out.code}  (expires {out.expires_at:%Y-%m-%d %H:%M} UTC)")
    typer.echo(f"qr   {out.qr_payload}")


@app.command("disable-terminal")
def disable_terminal(serial: str) -> None:
    """Refuse every request of this terminal."""
    _show(_run(lambda s: service.disable_terminal(
        s, service.find_terminal(s, serial).id, actor=ACTOR, now=utcnow())))  # fmt: skip


@app.command("enable-terminal")
def enable_terminal(serial: str) -> None:
    _show(_run(lambda s: service.enable_terminal(
        s, service.find_terminal(s, serial).id, actor=ACTOR, now=utcnow())))  # fmt: skip


@app.command("command")
def command(
    serial: str,
    kind: str = typer.Argument(..., help="reboot, apply_config, rotate_key, disable, ..."),
    config_id: int = typer.Option(None, help="For apply_config."),
) -> None:
    """Queue a command for a terminal."""
    _show(_run(lambda s: service.queue_command(
        s, service.find_terminal(s, serial).id, kind,  # type: ignore[arg-type]
        actor=ACTOR, now=utcnow(), config_id=config_id)))  # fmt: skip


@app.command("configs-check")
def configs_check() -> None:
    """Validate every shipped configuration in firmware_configs/; exit 1 on the first bad one."""
    for path, document in firmware.bundled_documents():
        problems = firmware.schema_problems(document)
        if problems:
            typer.echo(f"{path}: {problems[0]}", err=True)
            raise typer.Exit(1)
        typer.echo(f"{path}: ok {service.check_document(document)}")


@app.command("configs-publish")
def configs_publish(
    paths: Annotated[list[Path] | None, typer.Argument(help="YAML files; default all.")] = None,
) -> None:
    """Publish configurations (validated first; publishing one again changes nothing)."""
    documents = (
        [yaml.safe_load(p.read_text()) for p in paths]
        if paths
        else [d for _, d in firmware.bundled_documents()]
    )
    _show(_run(lambda s: [service.publish_config(s, d, actor=ACTOR, now=utcnow())
                          for d in documents]))  # fmt: skip


@app.command("rollout-create")
def rollout_create(
    name: str,
    config_id: int,
    unit: Annotated[list[str] | None, typer.Option(help="Institution codes (default all).")] = None,
    canary_unit: str = typer.Option(None, help="Institution code of the canary unit."),
    groups: int = typer.Option(3, help="Groups after the canary."),
) -> None:
    """A draft rollout of a published config."""

    def work(s: Session) -> BaseModel:
        spec = RolloutIn(
            name=name,
            config_id=config_id,
            unit_ids=[service.find_unit(s, code).id for code in unit or []],
            canary_unit_id=service.find_unit(s, canary_unit).id if canary_unit else None,
            group_count=groups,
        )
        return service.create_rollout(s, spec, actor=ACTOR, now=utcnow())

    _show(_run(work))


@app.command("rollout")
def rollout(
    rollout_id: int,
    action: str = typer.Argument("show", help="show, start, pause, resume or abort."),
) -> None:
    """Show a rollout's progress per group, or start, pause, resume or abort it."""
    actions = {
        "start": service.start_rollout,
        "pause": service.pause_rollout,
        "resume": service.resume_rollout,
        "abort": service.abort_rollout,
    }
    if action != "show":
        if action not in actions:
            raise typer.BadParameter(f"unknown action {action}")
        _run(lambda s: actions[action](s, rollout_id, actor=ACTOR, now=utcnow()))
    progress = _run(lambda s: service.rollout_progress(s, rollout_id))
    typer.echo(json.dumps(progress.model_dump(mode="json"), indent=2))
