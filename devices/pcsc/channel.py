"""APDU exchange with one card: T=0 GET RESPONSE (61xx) and wrong-Le retries (6Cxx)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol

from smartcard.Exceptions import CardConnectionException

from devices.pcsc.apdu import SW_OK, get_response, with_le
from devices.pcsc.errors import CardRemoved, CardStatusError

_MAX_CHAINED = 16  # GET RESPONSE rounds before the card is deemed broken


class Connection(Protocol):
    """What the channel needs from pyscard's CardConnection."""

    def transmit(self, command: list[int]) -> tuple[list[int], int, int]: ...

    def disconnect(self) -> None: ...

    def getATR(self) -> list[int]: ...


@dataclass(frozen=True)
class Response:
    data: bytes
    sw: int

    @property
    def ok(self) -> bool:
        return self.sw == SW_OK


class CardChannel:
    """A connected card in a named reader."""

    def __init__(self, connection: Connection | Any, reader: str) -> None:
        self._connection = connection
        self.reader = reader
        self.atr = bytes(connection.getATR())
        self.apdus = 0

    def exchange(self, command: bytes) -> Response:
        """Send one command; follow 61xx with GET RESPONSE and resend on 6Cxx."""
        response = self._raw(command)
        if response.sw >> 8 == 0x6C:
            response = self._raw(with_le(command, response.sw & 0xFF))
        data = response.data
        rounds = 0
        while response.sw >> 8 == 0x61 and rounds < _MAX_CHAINED:
            response = self._raw(get_response(response.sw & 0xFF))
            data += response.data
            rounds += 1
        return Response(data, response.sw)

    def command(self, command: bytes, what: str) -> bytes:
        """Send one command that must succeed; its response data, or CardStatusError."""
        response = self.exchange(command)
        if not response.ok:
            raise CardStatusError(what, response.sw)
        return response.data

    def close(self) -> None:
        with contextlib.suppress(CardConnectionException):  # already gone with the card
            self._connection.disconnect()

    def _raw(self, command: bytes) -> Response:
        self.apdus += 1
        try:
            data, sw1, sw2 = self._connection.transmit(list(command))
        except CardConnectionException:
            raise CardRemoved("the card left the reader mid-transaction") from None
        return Response(bytes(data), (sw1 << 8) | sw2)
