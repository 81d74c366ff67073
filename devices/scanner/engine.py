"""Read scans from a scan engine: a serial port (RS-232 or USB-CDC) or a keyboard wedge (a TTY).

Both are file descriptors delivering characters; the difference is only how the line is set up:
a serial port goes raw at the engine's baud rate, a wedge's terminal goes to cbreak mode so a
TAB-terminated scan arrives without waiting for Enter.
"""

from __future__ import annotations

import os
import select
import termios
import time
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from devices.scanner.errors import ScannerUnavailable
from devices.scanner.framing import Framing, ScanAssembler, ScanResult

BAUD_RATES = {
    9600: termios.B9600,
    19200: termios.B19200,
    38400: termios.B38400,
    57600: termios.B57600,
    115200: termios.B115200,
}
_READ_SIZE = 4096

Clock = Callable[[], float]


def open_serial(path: str, baudrate: int = 9600) -> int:
    """Open a scan engine's serial port raw, 8N1, at `baudrate`; returns the descriptor.

    USB-CDC engines ignore the baud rate, but a real RS-232 engine needs the one it is set to.
    """
    if baudrate not in BAUD_RATES:
        raise ValueError(f"unsupported baud rate {baudrate}")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        raise ScannerUnavailable(f"cannot open {path}: {exc.strerror}") from None
    if os.isatty(fd):
        _raw_8n1(fd, BAUD_RATES[baudrate])
    return fd


def _raw_8n1(fd: int, speed: int) -> None:
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[2] = (attrs[2] & ~(termios.PARENB | termios.CSTOPB | termios.CSIZE)) | termios.CS8
    attrs[2] |= termios.CLOCAL | termios.CREAD
    attrs[4] = attrs[5] = speed  # input and output speed
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


@contextmanager
def wedge_mode(fd: int) -> Iterator[None]:
    """Put a keyboard wedge's terminal in cbreak mode for the duration, then restore it."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def read_scans(
    fd: int,
    framing: Framing,
    *,
    clock: Clock = time.monotonic,
    stop: Callable[[], bool] = lambda: False,
) -> Iterator[ScanResult]:
    """Yield scans from `fd` until end of file or until `stop()` is true.

    Waits in short slices so that an idle pause can end a suffix-less scan on time.
    """
    assembler = ScanAssembler(framing)
    wait = min(framing.idle_seconds, framing.stale_seconds) / 2
    while not stop():
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            yield from assembler.tick(clock())
            continue
        try:
            data = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            continue
        except OSError as exc:  # a USB engine unplugged mid-read
            raise ScannerUnavailable(f"scan engine read failed: {exc.strerror}") from None
        if not data:
            yield from assembler.feed_text("", clock() + framing.stale_seconds)
            return
        yield from assembler.feed_bytes(data, clock())
