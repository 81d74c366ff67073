"""`sshub scanner`: simulate a scan on an enrolled terminal, or listen to a real scan engine.

sshub scanner scan --text 'hQVDUFYwMW...' --amount 2372      # a payment code for 23.72 CNY
sshub scanner scan --image frame.jpg                          # a camera frame (e.g. a bill code)
sshub scanner listen --serial /dev/ttyACM0 --suffix crlf      # every scan the engine sends
sshub scanner listen --wedge                                  # a keyboard wedge on this TTY
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from devices.agent.agent import TerminalAgent
from devices.agent.scanning import ScanAnswer, ScanDesk
from devices.scanner.camera import read_frame
from devices.scanner.engine import open_serial, read_scans, wedge_mode
from devices.scanner.errors import ScannerError
from devices.scanner.framing import Framing, Suffix

app = typer.Typer(help="Code scanner: simulate scans, or read a scan engine.", no_args_is_help=True)
STATE_DIR = typer.Option(
    Path(os.environ.get("SSHUB_AGENT_STATE_DIR", "var/agent")),
    "--state-dir",
    help="The enrolled agent's state (SSHUB_AGENT_STATE_DIR).",
)
AMOUNT = typer.Option(None, "--amount", help="Sale amount in fen: the scan pays it.")


def _desk(state_dir: Path) -> ScanDesk:
    agent = TerminalAgent(state_dir)
    if agent.client is None:
        typer.echo("this terminal is not enrolled: run `sshub-agent enrol` first", err=True)
        raise typer.Exit(2)
    return ScanDesk(agent.client, agent.outbox)


def _show(answer: ScanAnswer) -> None:
    typer.echo(json.dumps(asdict(answer), ensure_ascii=False, default=str))
    if answer.status in ("refused", "unknown"):
        raise typer.Exit(1)


@app.command()
def scan(
    text: str = typer.Option(None, "--text", help="The code's text, as a scan engine reads it."),
    image: Annotated[
        Path | None, typer.Option("--image", help="A camera frame (JPEG, PNG, BMP, WebP).")
    ] = None,
    amount: int = AMOUNT,
    transaction_id: str = typer.Option(None, help="The sale's id (default: a new one)."),
    state_dir: Path = STATE_DIR,
) -> None:
    """Submit one scan as this terminal and print the hub's answer."""
    if (text is None) == (image is None):
        raise typer.BadParameter("give exactly one of --text and --image")
    desk = _desk(state_dir)
    if image is None:
        _show(desk.submit_text(text, transaction_id=transaction_id, amount_fen=amount))
        return
    try:
        frame = read_frame(image)
    except ScannerError as exc:
        typer.echo(f"{exc.code}: {exc}", err=True)
        raise typer.Exit(1) from None
    _show(desk.submit_frame(frame, transaction_id=transaction_id, amount_fen=amount))


@app.command()
def listen(
    serial: str = typer.Option(None, help="The scan engine's serial port, e.g. /dev/ttyACM0."),
    wedge: bool = typer.Option(False, help="Read a keyboard wedge on standard input."),
    baud: int = typer.Option(9600, help="Serial baud rate."),
    suffix: Annotated[Suffix, typer.Option(help="The engine's configured suffix.")] = Suffix.CR,
    prefix: str = typer.Option("", help="The engine's configured prefix."),
    aim_ids: bool = typer.Option(False, help="The engine sends AIM symbology identifiers."),
    amount: int = AMOUNT,
    state_dir: Path = STATE_DIR,
) -> None:
    """Submit every scan the engine sends until it closes (Ctrl-C stops)."""
    if bool(serial) == wedge:
        raise typer.BadParameter("give exactly one of --serial and --wedge")
    desk = _desk(state_dir)
    framing = Framing(suffix=suffix, prefix=prefix, aim_ids=aim_ids)
    fd = open_serial(serial, baud) if serial else sys.stdin.fileno()
    try:
        with wedge_mode(fd) if wedge else nullcontext():
            for result in read_scans(fd, framing):
                answer = desk.submit(result, amount_fen=amount)
                typer.echo(json.dumps(asdict(answer), ensure_ascii=False, default=str))
    finally:
        if serial:
            os.close(fd)
