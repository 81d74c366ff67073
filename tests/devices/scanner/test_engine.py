"""Reading a scan engine through a real pseudo-terminal (as a USB-CDC or RS-232 port appears)."""

from __future__ import annotations

import os
import termios
import threading
import time

import pytest

from devices.scanner.engine import open_serial, read_scans, wedge_mode
from devices.scanner.errors import ScannerUnavailable
from devices.scanner.framing import Framing, RejectedScan, Scan, Suffix

CODE = "hQVDUFYwMWETTwegAAAAVVVVUAhQcm9kdWN0MQ=="


@pytest.fixture
def port():
    """(engine side, path of the port the agent opens)."""
    engine, terminal = os.openpty()
    path = os.ttyname(terminal)
    yield engine, path
    os.close(engine)
    os.close(terminal)


def _collect(fd: int, framing: Framing, count: int, timeout: float = 3.0) -> list:
    deadline = time.monotonic() + timeout
    results = []
    for result in read_scans(fd, framing, stop=lambda: time.monotonic() > deadline):
        results.append(result)
        if len(results) == count:
            break
    return results


def test_scans_arrive_from_a_serial_port_set_raw_at_the_engines_baud_rate(port):
    engine, path = port
    fd = open_serial(path, 115200)
    try:
        attrs = termios.tcgetattr(fd)
        assert attrs[4] == termios.B115200
        assert not attrs[3] & termios.ICANON  # raw: bytes as they come, no line editing
        os.write(engine, f"{CODE}\r\n".encode())
        os.write(engine, b"]Q1BILL-2\r\n")
        results = _collect(fd, Framing(suffix=Suffix.CRLF), 2)
    finally:
        os.close(fd)
    assert results == [Scan(CODE), Scan("]Q1BILL-2")]


def test_a_suffixless_engine_is_read_by_its_pauses(port):
    engine, path = port
    fd = open_serial(path)
    writer = threading.Thread(
        target=lambda: [os.write(engine, CODE.encode()), time.sleep(0.3), os.write(engine, b"B2")]
    )
    try:
        writer.start()
        results = _collect(fd, Framing(suffix=Suffix.NONE, idle_seconds=0.1), 2)
    finally:
        writer.join()
        os.close(fd)
    assert results == [Scan(CODE), Scan("B2")]


def test_end_of_input_hands_over_a_suffixless_last_scan_and_drops_a_half_line():
    for framing, expected in (
        (Framing(suffix=Suffix.NONE), [Scan("LAST")]),
        (Framing(suffix=Suffix.CR), [RejectedScan("incomplete", 4)]),
    ):
        read_end, write_end = os.pipe()
        os.write(write_end, b"LAST")
        os.close(write_end)
        assert list(read_scans(read_end, framing)) == expected
        os.close(read_end)


def test_a_missing_port_is_reported_as_unavailable():
    with pytest.raises(ScannerUnavailable) as refused:
        open_serial("/dev/no-such-scanner")
    assert refused.value.code == "scanner_unavailable"


def test_an_unsupported_baud_rate_is_refused():
    with pytest.raises(ValueError):
        open_serial("/dev/null", 12345)


def test_wedge_mode_delivers_keys_at_once_and_restores_the_terminal(port):
    _, path = port
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        before = termios.tcgetattr(fd)
        with wedge_mode(fd):
            assert not termios.tcgetattr(fd)[3] & termios.ICANON
        assert termios.tcgetattr(fd) == before
    finally:
        os.close(fd)
