"""EMVCo merchant-presented mode (MPM) payloads: the bill codes a unit shows to the cardholder.

A payload is a run of data objects, each a two-digit id, a two-digit length counted in characters
(not bytes) and the value. Templates hold one level of sub-objects in the same format. The payload
format indicator (00 = "01") comes first and the CRC (63, four upper-case hex digits of
CRC-16/CCITT-FALSE over everything up to and including "6304") comes last.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from devices.qr.errors import CrcError, PayloadError

FORMAT_INDICATOR_ID = "00"
FORMAT_INDICATOR = "01"
CRC_ID = "63"
# Merchant account information 26-51, additional data 62, alternate language 64, unreserved 80-99.
TEMPLATE_IDS = frozenset(
    [f"{n:02d}" for n in range(26, 52)] + ["62", "64"] + [f"{n:02d}" for n in range(80, 100)]
)
_CRC_HEADER = CRC_ID + "04"
_HEX_UPPER = frozenset("0123456789ABCDEF")
_MAX_VALUE_CHARS = 99


@dataclass(frozen=True)
class MpmField:
    """One data object: a primitive value, or the sub-objects of a template."""

    id: str
    value: str | tuple[MpmField, ...]


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor)."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates cannot travel in a QR code
        raise PayloadError("payload is not encodable as UTF-8") from None


def _is_two_digits(text: str) -> bool:
    # isdigit() alone would accept non-ASCII digits such as "١٢".
    return len(text) == 2 and text.isascii() and text.isdigit()


def _split(text: str, where: str) -> list[tuple[str, str]]:
    """Cut `text` into (id, value) pairs, refusing malformed, empty or repeated objects."""
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    offset = 0
    while offset < len(text):
        object_id, length = text[offset : offset + 2], text[offset + 2 : offset + 4]
        if not (_is_two_digits(object_id) and _is_two_digits(length)):
            raise PayloadError(f"malformed id or length at offset {offset} in {where}")
        size = int(length)
        value = text[offset + 4 : offset + 4 + size]
        if size == 0 or len(value) != size:
            raise PayloadError(f"object {object_id} in {where} is empty or truncated")
        if object_id in seen:
            raise PayloadError(f"object {object_id} appears twice in {where}")
        seen.add(object_id)
        pairs.append((object_id, value))
        offset += 4 + size
    return pairs


def _parse_field(object_id: str, value: str) -> MpmField:
    if object_id not in TEMPLATE_IDS:
        return MpmField(object_id, value)
    subs = tuple(MpmField(i, v) for i, v in _split(value, f"template {object_id}"))
    return MpmField(object_id, subs)


def _check_crc(payload: str, crc_text: str) -> None:
    if len(crc_text) != 4 or not set(crc_text) <= _HEX_UPPER:
        raise PayloadError("CRC must be four upper-case hex digits")
    expected = crc16_ccitt_false(_utf8(payload[: -len(crc_text)]))
    if int(crc_text, 16) != expected:
        raise CrcError("CRC does not match the payload")


def decode_mpm(payload: str) -> list[MpmField]:
    """Decode and check an MPM payload; return its objects in order, without the CRC object.

    Raises PayloadError for any format breach and CrcError when the checksum does not match.
    """
    if not isinstance(payload, str):
        raise PayloadError("payload must be text")
    pairs = _split(payload, "payload")
    if not pairs or pairs[0] != (FORMAT_INDICATOR_ID, FORMAT_INDICATOR):
        raise PayloadError('payload must start with format indicator 00 = "01"')
    if pairs[-1][0] != CRC_ID:
        raise PayloadError("CRC object 63 must be the last object")
    _check_crc(payload, pairs[-1][1])
    return [_parse_field(object_id, value) for object_id, value in pairs[:-1]]


def _encode_value(item: MpmField, where: str) -> str:
    if not _is_two_digits(item.id):
        raise PayloadError(f"id {item.id!r} in {where} is not two digits")
    if isinstance(item.value, tuple):
        if where != "payload" or item.id not in TEMPLATE_IDS:
            raise PayloadError(f"object {item.id} in {where} cannot be a template")
        value = _encode_objects(item.value, f"template {item.id}")
    elif where == "payload" and item.id in TEMPLATE_IDS:
        raise PayloadError(f"object {item.id} must be a template of sub-objects")
    else:
        value = item.value
    if not 1 <= len(value) <= _MAX_VALUE_CHARS:
        raise PayloadError(f"object {item.id} in {where} must hold 1 to 99 characters")
    return f"{item.id}{len(value):02d}{value}"


def _encode_objects(items: Sequence[MpmField], where: str) -> str:
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise PayloadError(f"an object appears twice in {where}")
    return "".join(_encode_value(item, where) for item in items)


def encode_mpm(fields: Sequence[MpmField]) -> str:
    """Encode objects (format indicator first, no CRC) and append the CRC object."""
    if not fields or fields[0] != MpmField(FORMAT_INDICATOR_ID, FORMAT_INDICATOR):
        raise PayloadError('payload must start with format indicator 00 = "01"')
    if any(item.id == CRC_ID for item in fields):
        raise PayloadError("the CRC object is appended by the encoder")
    body = _encode_objects(fields, "payload") + _CRC_HEADER
    return f"{body}{crc16_ccitt_false(_utf8(body)):04X}"


def _find(fields: Sequence[MpmField], object_id: str) -> MpmField | None:
    return next((item for item in fields if item.id == object_id), None)


def field(fields: Sequence[MpmField], object_id: str) -> str | None:
    """Value of the primitive object `object_id` (e.g. "54" amount), or None when absent."""
    found = _find(fields, object_id)
    if found is None:
        return None
    if isinstance(found.value, tuple):
        raise PayloadError(f"object {object_id} is a template; use subfield()")
    return found.value


def template(fields: Sequence[MpmField], template_id: str) -> tuple[MpmField, ...] | None:
    """Sub-objects of template `template_id` (e.g. "62" additional data), or None when absent."""
    found = _find(fields, template_id)
    if found is None:
        return None
    if not isinstance(found.value, tuple):
        raise PayloadError(f"object {template_id} is not a template")
    return found.value


def subfield(fields: Sequence[MpmField], template_id: str, sub_id: str) -> str | None:
    """Value of sub-object `sub_id` inside template `template_id`, or None when either is absent."""
    subs = template(fields, template_id)
    return None if subs is None else field(subs, sub_id)
