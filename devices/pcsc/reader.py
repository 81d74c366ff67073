"""PC/SC readers: list them, wait for a card in any of them, connect."""

from __future__ import annotations

import time
from collections.abc import Sequence

from smartcard import scard
from smartcard.CardRequest import CardRequest
from smartcard.Exceptions import (
    CardConnectionException,
    CardRequestTimeoutException,
    NoCardException,
)
from smartcard.pcsc.PCSCExceptions import BaseSCardException
from smartcard.System import readers as pcsc_readers

from devices.pcsc.channel import CardChannel
from devices.pcsc.errors import CardRemoved, NoCard, NoReader, ReaderError


def list_readers() -> list[str]:
    """Names of the attached readers, in PC/SC order; empty when none (or no pcscd)."""
    try:
        return [str(reader) for reader in pcsc_readers()]
    except BaseSCardException:
        return []


def _chosen(names: Sequence[str] | None) -> list[str]:
    attached = list_readers()
    if not attached:
        raise NoReader("no PC/SC reader attached")
    if names is None:
        return attached
    missing = [name for name in names if name not in attached]
    if missing:
        raise NoReader(f"reader not attached: {', '.join(missing)}")
    return list(names)


def wait_for_card(readers: Sequence[str] | None = None, timeout: float = 30.0) -> CardChannel:
    """Wait until a card is present in one of `readers` (default: all) and connect to it."""
    names = _chosen(readers)
    objects = [r for r in pcsc_readers() if str(r) in names]
    request = CardRequest(readers=objects, timeout=max(timeout, 0.001))
    try:
        service = request.waitforcard()
    except CardRequestTimeoutException:
        raise NoCard(f"no card presented within {timeout:g} s") from None
    # The request's own connection dies with the request object; open one we keep.
    name = str(service.connection.getReader())
    del service, request
    try:
        return connect(name)
    except NoCard:
        raise CardRemoved("the card left the reader before it could be read") from None


def connect(reader: str) -> CardChannel:
    """Connect to the card now in `reader`; NoCard if the reader is empty."""
    (name,) = _chosen([reader])
    (obj,) = [r for r in pcsc_readers() if str(r) == name]
    connection = obj.createConnection()
    try:
        connection.connect()
    except (NoCardException, CardConnectionException):
        raise NoCard(f"no card in {reader}") from None
    return CardChannel(connection, name)


def card_present(reader: str) -> bool:
    """Whether pcscd currently sees a card in `reader`."""
    return bool(_state(reader, scard.SCARD_STATE_UNAWARE, 0) & scard.SCARD_STATE_PRESENT)


def wait_for_removal(reader: str, timeout: float = 30.0) -> bool:
    """Wait until `reader` is empty; False on timeout. A terminal does this between
    cardholders, so the next transaction never meets the previous card."""
    deadline = time.monotonic() + timeout
    known = scard.SCARD_STATE_UNAWARE
    while True:
        state = _state(reader, known, 0)
        if state & scard.SCARD_STATE_EMPTY:
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        known = state & ~scard.SCARD_STATE_CHANGED
        _state(reader, known, int(min(left, 1.0) * 1000))


def _state(reader: str, known: int, timeout_ms: int) -> int:
    result, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if result != scard.SCARD_S_SUCCESS:
        raise NoReader("pcscd is not running")
    try:
        result, states = scard.SCardGetStatusChange(context, timeout_ms, [(reader, known)])
        if result == scard.SCARD_E_TIMEOUT:
            return known
        if result != scard.SCARD_S_SUCCESS:
            raise ReaderError(f"reader state unavailable ({result & 0xFFFFFFFF:08X})")
        return int(states[0][1])
    finally:
        scard.SCardReleaseContext(context)
