"""One tap: read both applications and ask the card for an ARQC."""

from __future__ import annotations

from devices.pcsc.channel import CardChannel
from devices.pcsc.debit import generate_arqc, read_debit
from devices.pcsc.models import CardRead, TerminalData
from devices.pcsc.social_security import read_social_security


def read_card(channel: CardChannel, terminal: TerminalData) -> CardRead:
    """Read the social-security data and the debit application, then run the first
    GENERATE AC with the terminal's data. The card stays in its transaction until
    `debit.complete` is called with the issuer's answer."""
    social_security = read_social_security(channel)
    debit = read_debit(channel, terminal)
    arqc = generate_arqc(channel, debit, terminal)
    return CardRead(channel.reader, channel.atr, social_security, debit, arqc)
