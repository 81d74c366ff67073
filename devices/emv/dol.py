"""Data object lists (PDOL, CDOL1/2, DDOL): parsing and filling per EMV Book 3 §5.4."""

from collections.abc import Iterable, Mapping

from devices.emv.errors import DolError, TlvError
from devices.emv.tags import COMPRESSED_NUMERIC_TAGS, NUMERIC_TAGS
from devices.emv.tlv import Tlv, read_length, read_tag, tag_bytes


def parse_dol(data: bytes) -> list[tuple[int, int]]:
    """Split a DOL into its (tag, length) entries, in card order."""
    entries: list[tuple[int, int]] = []
    offset = 0
    try:
        while offset < len(data):
            tag, offset = read_tag(data, offset)
            length, offset = read_length(data, offset)
            tag_bytes(tag)  # 00 and FF are padding in TLV but never a DOL tag
            entries.append((tag, length))
    except TlvError as exc:
        raise DolError(f"malformed DOL: {exc}") from None
    return entries


def _fit(tag: int, value: bytes, length: int) -> bytes:
    """Truncate or pad one value to the length the DOL asks for (Book 3 §5.4)."""
    if tag in NUMERIC_TAGS:
        return value[-length:].rjust(length, b"\x00") if length else b""
    pad = b"\xff" if tag in COMPRESSED_NUMERIC_TAGS else b"\x00"
    return value[:length].ljust(length, pad)


def _is_template(tag: int) -> bool:
    try:
        return Tlv(tag, b"").constructed
    except TlvError as exc:
        raise DolError(f"malformed DOL: {exc}") from None


def build_dol(dol: Iterable[tuple[int, int]], values: Mapping[int, bytes]) -> bytes:
    """Concatenate the values a DOL names; unknown tags and templates are sent as zeros."""
    parts = []
    for tag, length in dol:
        if length < 0:
            raise DolError("DOL length must not be negative")
        value = values.get(tag)
        if value is None or _is_template(tag):
            parts.append(bytes(length))
        else:
            parts.append(_fit(tag, value, length))
    return b"".join(parts)
