"""Command APDUs the driver sends (ISO 7816-4, EMV Book 3, the social security card spec)."""

from __future__ import annotations

SW_OK = 0x9000
SW_APP_BLOCKED = 0x6283
SW_ISSUER_AUTH_FAILED = 0x6300


def select_by_name(name: bytes) -> bytes:
    return bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00"


def select_file(fid: int) -> bytes:
    return bytes([0x00, 0xA4, 0x02, 0x00, 0x02]) + fid.to_bytes(2, "big")


def read_record(record: int, sfi: int = 0, le: int = 0) -> bytes:
    """READ RECORD; sfi 0 reads from the currently selected file."""
    return bytes([0x00, 0xB2, record, (sfi << 3) | 0x04, le])


def get_processing_options(pdol_data: bytes) -> bytes:
    body = bytes([0x83, len(pdol_data)]) + pdol_data
    return bytes([0x80, 0xA8, 0x00, 0x00, len(body)]) + body + b"\x00"


def generate_ac(reference_control: int, cdol_data: bytes) -> bytes:
    """GENERATE AC; reference_control 0x80 asks for an ARQC, 0x40 a TC, 0x00 an AAC."""
    return bytes([0x80, 0xAE, reference_control, 0x00, len(cdol_data)]) + cdol_data + b"\x00"


def external_authenticate(arpc: bytes, arc: bytes) -> bytes:
    data = arpc + arc
    return bytes([0x00, 0x82, 0x00, 0x00, len(data)]) + data


def get_response(length: int) -> bytes:
    return bytes([0x00, 0xC0, 0x00, 0x00, length])


def with_le(command: bytes, le: int) -> bytes:
    """The same command with its Le byte replaced (after a 6Cxx)."""
    if len(command) == 5:
        return command[:4] + bytes([le])
    lc = command[4]
    return command[: 5 + lc] + bytes([le])
