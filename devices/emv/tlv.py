"""BER-TLV codec as used by EMV (Book 3 annex B) and the EMVCo QR payloads."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from devices.emv.errors import TlvError

_PADDING = (0x00, 0xFF)  # EMV allows these bytes before, between and after objects
_MAX_TAG_BYTES = 4
_MAX_LENGTH = 0xFFFFFF  # three length bytes (83) is the longest form EMV uses
_MAX_DEPTH = 32


def tag_bytes(tag: int) -> bytes:
    """Return the encoded form of `tag`, raising TlvError if it is not a well-formed BER tag."""
    if tag <= 0:
        raise TlvError("tag must be a positive integer")
    raw = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    first, rest = raw[0], raw[1:]
    if first in _PADDING or len(raw) > _MAX_TAG_BYTES:
        raise TlvError(f"tag {tag:X} is not a valid BER tag")
    multi_byte = first & 0x1F == 0x1F
    continued = all(b & 0x80 for b in rest[:-1]) and (not rest or not rest[-1] & 0x80)
    if multi_byte != bool(rest) or not continued:
        raise TlvError(f"tag {tag:X} is not a valid BER tag")
    return raw


@dataclass(frozen=True)
class Tlv:
    """One data object: its tag as an integer (0x9F02) and its raw value."""

    tag: int
    value: bytes

    def __post_init__(self) -> None:
        tag_bytes(self.tag)

    @property
    def constructed(self) -> bool:
        """True when the tag marks a template whose value is itself TLV."""
        return bool(tag_bytes(self.tag)[0] & 0x20)

    @property
    def children(self) -> list[Tlv]:
        """The objects inside a constructed template; empty for a primitive object."""
        return decode(self.value) if self.constructed else []


def read_tag(data: bytes, offset: int) -> tuple[int, int]:
    """Read a tag at `offset`; return (tag, offset after it)."""
    start = offset
    if offset >= len(data):
        raise TlvError("truncated tag")
    offset += 1
    if data[start] & 0x1F == 0x1F:
        while True:
            if offset >= len(data):
                raise TlvError("truncated tag")
            offset += 1
            if not data[offset - 1] & 0x80:
                break
            if offset - start >= _MAX_TAG_BYTES:
                raise TlvError("tag longer than 4 bytes")
    return int.from_bytes(data[start:offset], "big"), offset


def read_length(data: bytes, offset: int) -> tuple[int, int]:
    """Read a short or long-form (81/82/83) length at `offset`; return (length, offset after)."""
    if offset >= len(data):
        raise TlvError("truncated length")
    first = data[offset]
    offset += 1
    if first < 0x80:
        return first, offset
    count = first & 0x7F
    if not 1 <= count <= 3:
        raise TlvError(f"unsupported length form {first:02X}")
    if offset + count > len(data):
        raise TlvError("truncated length")
    return int.from_bytes(data[offset : offset + count], "big"), offset + count


def decode(data: bytes) -> list[Tlv]:
    """Decode a BER-TLV stream into its top-level objects, skipping 00/FF padding."""
    items: list[Tlv] = []
    offset = 0
    while offset < len(data):
        if data[offset] in _PADDING:
            offset += 1
            continue
        tag, offset = read_tag(data, offset)
        length, offset = read_length(data, offset)
        if offset + length > len(data):
            raise TlvError(f"value of tag {tag:X} runs past the end of the data")
        items.append(Tlv(tag, data[offset : offset + length]))
        offset += length
    return items


def encode_length(length: int) -> bytes:
    """Encode a value length in the shortest BER form."""
    if length < 0x80:
        return bytes([length])
    if length > _MAX_LENGTH:
        raise TlvError("value longer than 16 MiB")
    size = (length.bit_length() + 7) // 8
    return bytes([0x80 | size]) + length.to_bytes(size, "big")


def encode_one(tag: int, value: bytes) -> bytes:
    """Encode one data object."""
    return tag_bytes(tag) + encode_length(len(value)) + value


def encode(items: Iterable[Tlv]) -> bytes:
    """Encode data objects in the order given."""
    return b"".join(encode_one(item.tag, item.value) for item in items)


def find(items: Iterable[Tlv], tag: int) -> Tlv | None:
    """Return the first object with `tag`, searching depth-first into templates."""
    return _find(items, tag, 0)


def _find(items: Iterable[Tlv], tag: int, depth: int) -> Tlv | None:
    for item in items:
        if item.tag == tag:
            return item
        found = _find(_children(item, depth), tag, depth + 1)
        if found is not None:
            return found
    return None


def flatten(items: Iterable[Tlv]) -> dict[int, bytes]:
    """Map every primitive tag (templates opened recursively) to its value; first one wins."""
    values: dict[int, bytes] = {}
    _flatten_into(values, items, 0)
    return values


def _flatten_into(values: dict[int, bytes], items: Iterable[Tlv], depth: int) -> None:
    for item in items:
        if item.constructed:
            _flatten_into(values, _children(item, depth), depth + 1)
        else:
            values.setdefault(item.tag, item.value)


def _children(item: Tlv, depth: int) -> list[Tlv]:
    # hostile input could nest templates until Python's recursion limit; real cards use ~4 levels
    if depth >= _MAX_DEPTH and item.constructed:
        raise TlvError(f"templates nested deeper than {_MAX_DEPTH} levels")
    return item.children
