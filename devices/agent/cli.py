"""`sshub-agent`: the terminal agent's command line.

sshub-agent enrol --hub https://hub.example --code ABCD-EFGH-JKMN-PQRS --serial SN1 --model M
sshub-agent enrol --qr 'sshub-enrol:1?hub=...&serial=...&code=...' --model SSC-CR300
sshub-agent run                  # heartbeat until stopped
sshub-agent event paper_low      # queue an event for the hub
sshub-agent status
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import typer

from devices.agent.agent import NotEnrolled, TerminalAgent
from devices.agent.hub_client import HubRefused, HubUnavailable
from devices.agent.outbox import OutboxFull

app = typer.Typer(help="SSC Hub terminal agent.", no_args_is_help=True)
STATE_DIR = typer.Option(
    Path(os.environ.get("SSHUB_AGENT_STATE_DIR", "var/agent")),
    "--state-dir",
    help="Where the agent keeps its key, outbox and config (SSHUB_AGENT_STATE_DIR).",
)


def _qr_fields(payload: str) -> dict[str, str]:
    """The fields of an enrollment QR code: sshub-enrol:1?hub=...&serial=...&code=..."""
    parts = urlsplit(payload)
    if parts.scheme != "sshub-enrol":
        raise typer.BadParameter("not an SSC Hub enrollment code")
    return {name: values[0] for name, values in parse_qs(parts.query).items()}


@app.command()
def enrol(
    model: str = typer.Option(..., help="This terminal's model, e.g. SSC-CR300."),
    hub: str = typer.Option(None, help="Hub base URL."),
    code: str = typer.Option(None, help="One-time enrollment code."),
    serial: str = typer.Option(None, help="This terminal's serial number."),
    qr: str = typer.Option(
        None, help="The scanned enrollment QR payload (gives hub, serial, code)."
    ),
    hardware_revision: str = typer.Option(None),
    state_dir: Path = STATE_DIR,
) -> None:
    """Generate a key pair and enrol this terminal with a one-time code."""
    fields = _qr_fields(qr) if qr else {}
    hub_url = hub or fields.get("hub")
    one_time_code = code or fields.get("code")
    serial_number = serial or fields.get("serial")
    if not (hub_url and one_time_code and serial_number):
        raise typer.BadParameter("give --hub, --code and --serial, or --qr")
    agent = TerminalAgent(state_dir)
    try:
        identity = agent.enrol(
            hub_url, one_time_code, serial_number, model, hardware_revision=hardware_revision
        )
    except HubRefused as exc:
        typer.echo(f"enrollment refused: {exc.code} ({exc.message})", err=True)
        raise typer.Exit(2) from exc
    except HubUnavailable as exc:
        typer.echo(f"hub unreachable: {exc}", err=True)
        raise typer.Exit(3) from exc
    typer.echo(f"enrolled as terminal {identity.terminal_id} of unit {identity.institution_code}")


@app.command()
def run(
    state_dir: Path = STATE_DIR,
    beats: int = typer.Option(None, help="Stop after this many heartbeats."),
    duration: float = typer.Option(None, help="Stop after this many seconds."),
) -> None:
    """Heartbeat, run commands and keep the config current until stopped."""
    try:
        TerminalAgent(state_dir).run(beats=beats, duration=duration)
    except NotEnrolled as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.command()
def event(
    kind: str = typer.Argument(..., help="What happened, e.g. paper_low, reader_error."),
    detail: str = typer.Option("{}", help="JSON object with details."),
    state_dir: Path = STATE_DIR,
) -> None:
    """Queue an event for the hub; it is sent now if the hub answers, later otherwise."""
    agent = TerminalAgent(state_dir)
    try:
        message_id = agent.report_event(kind, json.loads(detail))
    except OutboxFull as exc:
        typer.echo(f"not queued: {exc}", err=True)
        raise typer.Exit(4) from exc
    agent.drain()
    typer.echo(f"{message_id} queued; outbox depth {agent.outbox.depth()}")


@app.command()
def drain(state_dir: Path = STATE_DIR) -> None:
    """Send whatever the outbox holds."""
    agent = TerminalAgent(state_dir)
    agent.drain()
    typer.echo(f"outbox depth {agent.outbox.depth()}")


@app.command()
def status(state_dir: Path = STATE_DIR) -> None:
    """Who this terminal is, its config and its outbox."""
    agent = TerminalAgent(state_dir)
    identity = agent.identity
    typer.echo(
        json.dumps(
            {
                "terminal_id": identity.terminal_id if identity else None,
                "institution_code": identity.institution_code if identity else None,
                "config_hash": agent.config.hash if agent.config else None,
                "outbox_depth": agent.outbox.depth(),
                "outbox_dead": agent.outbox.dead(),
                "disabled": agent.disabled,
            }
        )
    )


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("SSHUB_AGENT_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    app()


if __name__ == "__main__":
    main()
