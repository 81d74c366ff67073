"""`sshub card ...` (mounted by hub/cli.py) and `python -m devices.emulators.sscard`."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from devices.emulators.sscard.card import SocialSecurityCard
from devices.emulators.sscard.profile import ProfileError, load_profile, save_profile
from devices.emulators.sscard.vpcd import VPCD_HOST, VPCD_PORT, VpcdLink, VpcdUnavailable

app = typer.Typer(help="The virtual social security card.", no_args_is_help=True)


@app.callback()
def card() -> None:
    """The virtual social security card on pcscd's vpcd reader."""


@app.command()
def insert(
    profile: Annotated[
        Path, typer.Option(exists=True, dir_okay=False, help="Profile (JSON/YAML).")
    ],
    port: Annotated[
        int, typer.Option(help="vpcd port: 35963 is reader 0, 35964 reader 1.")
    ] = VPCD_PORT,
    host: Annotated[str, typer.Option(help="Where pcscd's vpcd listens.")] = VPCD_HOST,
    seconds: Annotated[
        float, typer.Option(help="Remove the card after this long (0: until Ctrl-C).")
    ] = 0,
    keep_atc: Annotated[
        bool, typer.Option(help="Write the card's ATC back to the profile.")
    ] = True,
) -> None:
    """Insert a personalised card into a virtual reader until it is removed."""
    try:
        card_profile = load_profile(profile)
    except ProfileError as exc:
        raise typer.BadParameter(str(exc), param_hint="--profile") from None
    card = SocialSecurityCard(card_profile)
    if keep_atc:
        card.on_atc = lambda _atc: save_profile(card_profile, profile)
    link = VpcdLink(card, host=host, port=port)
    try:
        link.insert()
    except VpcdUnavailable as exc:
        typer.echo(f"{exc} (is pcscd running with vsmartcard-vpcd?)", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"card {card_profile.card_number} inserted on {host}:{port}; Ctrl-C removes it")
    _until_removed(link, seconds)
    link.remove()
    typer.echo("card removed")


def _until_removed(link: VpcdLink, seconds: float) -> None:
    stop = threading.Event()

    def _on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    deadline = seconds if seconds > 0 else None
    waited = 0.0
    while link.inserted and not stop.is_set():
        stop.wait(0.2)
        waited += 0.2
        if deadline is not None and waited >= deadline:
            break


def main() -> None:
    app(prog_name="sscard")
