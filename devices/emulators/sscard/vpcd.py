"""The link between a virtual card and pcscd's vpcd driver.

vpcd listens on TCP (127.0.0.1:35963 for the first virtual reader); a card "is in the reader"
while its connection is open. Each message is a 2-byte big-endian length and a payload: one
control byte (00 power off, 01 power on, 02 reset, 04 send the ATR) or a command APDU, which
the card answers with a response APDU in the same framing.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

import structlog

from devices.emulators.sscard.card import CardPulled, SocialSecurityCard

log = structlog.get_logger()

VPCD_HOST = "127.0.0.1"
VPCD_PORT = 35963  # the first vpcd reader; the second listens on 35964
POWER_OFF, POWER_ON, RESET, GET_ATR = 0x00, 0x01, 0x02, 0x04


class VpcdUnavailable(ConnectionError):
    """Nothing listens on the vpcd port: pcscd is not running or lacks the vpcd driver."""


class VpcdLink:
    """Plugs one card into one virtual reader; `insert` and `remove` are the cardholder's hand."""

    def __init__(
        self, card: SocialSecurityCard, host: str = VPCD_HOST, port: int = VPCD_PORT
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.pulled = False  # the card left mid-command (profile.pull_after_apdus)
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def inserted(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def insert(self) -> None:
        """Put the card into the reader and answer pcscd in a background thread."""
        if self.inserted:
            return
        try:
            self._sock = socket.create_connection((self.host, self.port), timeout=5)
        except OSError as exc:
            raise VpcdUnavailable(f"no vpcd on {self.host}:{self.port}: {exc}") from None
        self._sock.settimeout(None)
        # One small frame per APDU: without NODELAY, Nagle and delayed ACKs add ~40 ms each.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._thread = threading.Thread(target=self._serve, args=(self._sock,), daemon=True)
        self._thread.start()
        log.info("card_inserted", card_number=self.card.profile.card_number, port=self.port)

    def remove(self) -> None:
        """Take the card out of the reader."""
        sock, thread = self._sock, self._thread
        self._sock = self._thread = None
        if sock is not None:
            _close(sock)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def wait(self) -> None:
        """Block until the card leaves the reader (pulled, or pcscd went away)."""
        thread = self._thread
        if thread is not None:
            thread.join()

    def _serve(self, sock: socket.socket) -> None:
        try:
            while (message := _receive(sock)) is not None:
                reply = self._handle(message)
                if reply is not None:
                    sock.sendall(struct.pack(">H", len(reply)) + reply)
        except CardPulled:
            self.pulled = True
            log.info("card_pulled", card_number=self.card.profile.card_number)
        except OSError:
            pass  # the reader side went away; the card is simply out of the field
        finally:
            _close(sock)

    def _handle(self, message: bytes) -> bytes | None:
        if len(message) != 1:
            return self.card.transmit(message)
        control = message[0]
        if control == GET_ATR:
            return self.card.atr
        if control in (POWER_ON, RESET):
            self.card.power_on()
        elif control == POWER_OFF:
            self.card.power_off()
        return None


def _receive(sock: socket.socket) -> bytes | None:
    header = _read_exactly(sock, 2)
    if header is None:
        return None
    (length,) = struct.unpack(">H", header)
    return _read_exactly(sock, length)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        _ack_at_once(sock)
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def _ack_at_once(sock: socket.socket) -> None:
    """vpcd writes the length and the APDU separately; with delayed ACKs its second write
    waits ~40 ms for our ACK of the first (Nagle), so ask Linux to ACK at once. The flag
    resets itself, hence before every read."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is not None:
        sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
