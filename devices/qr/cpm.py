"""EMVCo consumer-presented mode (CPM) payloads: the payment codes a cardholder's app shows.

The QR text is standard base64 (with padding) of BER-TLV: payload format indicator 85 = "CPV01",
one or more application templates 61 (each with its AID in 4F, optionally an application specific
transparent template 63), then an optional common data template 62 (which may hold the common
data transparent template 64). Decoding accepts only the canonical encoding, so one payment code
has exactly one text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass

from devices.emv import tlv
from devices.emv.errors import TlvError
from devices.emv.tlv import Tlv
from devices.qr.errors import PayloadError

PAYLOAD_FORMAT_INDICATOR = b"CPV01"
TAG_PAYLOAD_FORMAT_INDICATOR = 0x85
TAG_APPLICATION_TEMPLATE = 0x61
TAG_COMMON_DATA_TEMPLATE = 0x62
TAG_ADF_NAME = 0x4F
# 61/62 -> 63/64 -> their data objects; deeper nesting is not EMVCo and would only cost stack.
_MAX_TEMPLATE_DEPTH = 3


@dataclass(frozen=True, repr=False)
class ConsumerPayload:
    """A decoded payment code: the objects inside each 61 template, and inside 62 (if any)."""

    applications: tuple[tuple[Tlv, ...], ...]
    common: tuple[Tlv, ...] = ()

    def __repr__(self) -> str:
        # Tags only: the values hold the PAN and track 2, which must never reach a log line.
        apps = ", ".join(_tag_list(app) for app in self.applications)
        return f"ConsumerPayload(applications=[{apps}], common={_tag_list(self.common)})"


def _tag_list(items: Sequence[Tlv]) -> str:
    return "[" + " ".join(f"{item.tag:X}" for item in items) + "]"


def _checked_children(template: Tlv, depth: int) -> tuple[Tlv, ...]:
    """Decode a template's objects and every nested template, so later reads cannot fail."""
    children = tuple(template.children)
    for child in children:
        if not child.constructed:
            continue
        if depth >= _MAX_TEMPLATE_DEPTH:
            raise PayloadError(f"templates nested deeper than {_MAX_TEMPLATE_DEPTH} levels")
        _checked_children(child, depth + 1)
    return children


def _application(template: Tlv) -> tuple[Tlv, ...]:
    children = _checked_children(template, 1)
    if not any(child.tag == TAG_ADF_NAME for child in children):
        raise PayloadError("application template 61 has no AID (4F)")
    return children


def _from_objects(items: Sequence[Tlv]) -> ConsumerPayload:
    if not items or items[0] != Tlv(TAG_PAYLOAD_FORMAT_INDICATOR, PAYLOAD_FORMAT_INDICATOR):
        raise PayloadError('payload must start with format indicator 85 = "CPV01"')
    rest = list(items[1:])
    applications: list[tuple[Tlv, ...]] = []
    while rest and rest[0].tag == TAG_APPLICATION_TEMPLATE:
        applications.append(_application(rest.pop(0)))
    if not applications:
        raise PayloadError("payload has no application template 61")
    common: tuple[Tlv, ...] = ()
    if rest and rest[0].tag == TAG_COMMON_DATA_TEMPLATE:
        common = _checked_children(rest.pop(0), 1)
    if rest:
        raise PayloadError(f"unexpected object {rest[0].tag:X} in the payload")
    return ConsumerPayload(tuple(applications), common)


def _to_objects(payload: ConsumerPayload) -> list[Tlv]:
    items = [Tlv(TAG_PAYLOAD_FORMAT_INDICATOR, PAYLOAD_FORMAT_INDICATOR)]
    items += [Tlv(TAG_APPLICATION_TEMPLATE, tlv.encode(app)) for app in payload.applications]
    if payload.common:
        items.append(Tlv(TAG_COMMON_DATA_TEMPLATE, tlv.encode(payload.common)))
    return items


def encode_cpm(payload: ConsumerPayload) -> str:
    """Encode a payment code as base64 text; refuses payloads that decode_cpm would refuse."""
    try:
        items = _to_objects(payload)
        # Re-reading what was built applies the decoder's rules (AID present, templates parse).
        if _from_objects(items) != payload:
            raise PayloadError("payload objects do not survive encoding unchanged")
        return base64.b64encode(tlv.encode(items)).decode("ascii")
    except TlvError:
        raise PayloadError("payload objects cannot be encoded as BER-TLV") from None


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):  # ValueError: characters outside ASCII
        raise PayloadError("payload is not valid base64") from None


def decode_cpm(text: str) -> ConsumerPayload:
    """Decode and check a payment code's base64 text.

    Raises PayloadError for bad base64, malformed BER-TLV, a wrong format indicator, a missing
    application template or AID, an unknown top-level object, or a non-canonical encoding.
    """
    if not isinstance(text, str):
        raise PayloadError("payload must be text")
    try:
        payload = _from_objects(tlv.decode(_base64(text)))
    except TlvError:
        raise PayloadError("payload is not valid BER-TLV") from None
    if encode_cpm(payload) != text:
        raise PayloadError("payload is not in canonical encoding")
    return payload
