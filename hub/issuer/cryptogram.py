"""ARQC verification, the ATC window and ARPC generation (PBOC, EMV option A, method 1).

The terminal sends the chip data as it came from the card (ISO 8583 field 55 style BER-TLV).
The hub derives the card key from the issuer master key named by the card's DKI, the session
key from the ATC, recomputes the ARQC over the PBOC input and compares in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from devices.emv.crypto import (
    ARQC_FIELDS,
    arpc_method1,
    arqc_input,
    derive_icc_master_key,
    generate_arqc,
    pboc_session_key,
)
from devices.emv.errors import EmvError
from devices.emv.tlv import decode, flatten
from hub.issuer.errors import IccDataInvalid

# ISO 8583 / PBOC authorisation response codes, as two ASCII characters in 8A.
APPROVED = "00"
RESPONSE_CODES: dict[str, str] = {
    "insufficient_funds": "51",
    "card_expired": "54",
    "pin_required": "55",
    "pin_incorrect": "55",
    "pin_not_set": "55",
    "pin_tries_exceeded": "75",
    "card_blocked": "62",
    "card_not_active": "62",
    "account_not_usable": "62",
    "card_unknown": "14",
    "cryptogram_invalid": "05",
    "atc_replayed": "05",
    "atc_out_of_window": "05",
}
CURRENCY_CNY = "0156"
CID_ARQC = 0x80


@dataclass(frozen=True)
class IccData:
    """The chip data of one first GENERATE AC, parsed and checked for shape."""

    arqc: bytes
    cid: int
    atc: int
    iad: bytes
    amount: int  # fen, from 9F02
    currency: str  # from 5F2A, e.g. "0156"
    values: dict[int, bytes] = field(repr=False)

    @property
    def key_version(self) -> int:
        """The DKI: which issuer master key version the card key was derived from."""
        return self.iad[1]


def _bcd_amount(raw: bytes) -> int:
    digits = raw.hex()
    if not digits.isdigit():
        raise IccDataInvalid(message="9F02 is not a BCD amount")
    return int(digits)


def parse_icc_data(raw: bytes) -> IccData:
    """Parse the chip data; IccDataInvalid names the problem, never the data."""
    try:
        values = flatten(decode(raw))
    except EmvError:
        raise IccDataInvalid(message="chip data is not valid BER-TLV") from None
    required = {0x9F26: 8, 0x9F27: 1, 0x9F10: None, **dict(ARQC_FIELDS)}
    for tag, size in required.items():
        if tag not in values:
            raise IccDataInvalid(message=f"chip data lacks tag {tag:X}")
        if size is not None and len(values[tag]) != size:
            raise IccDataInvalid(message=f"tag {tag:X} must be {size} bytes")
    iad = values[0x9F10]
    if len(iad) < 7 or iad[3] != 3:
        raise IccDataInvalid(message="9F10 is not in the PBOC layout")
    if values[0x9F27][0] & 0xC0 != CID_ARQC:
        raise IccDataInvalid(message="the cryptogram is not an ARQC")
    return IccData(
        arqc=values[0x9F26],
        cid=values[0x9F27][0],
        atc=int.from_bytes(values[0x9F36], "big"),
        iad=iad,
        amount=_bcd_amount(values[0x9F02]),
        currency=values[0x5F2A].hex(),
        values=values,
    )


def session_key_if_valid(
    issuer_master_key: bytes, pan: str, psn: str, icc: IccData
) -> bytes | None:
    """The card's session key when the ARQC verifies under it, else None."""
    card_key = derive_icc_master_key(issuer_master_key, pan, psn)
    session_key = pboc_session_key(card_key, icc.atc.to_bytes(2, "big"))
    expected = generate_arqc(session_key, arqc_input(icc.values, icc.iad))
    return session_key if hmac.compare_digest(expected, icc.arqc) else None


def arpc(session_key: bytes, arqc: bytes, response_code: str) -> bytes:
    """ARPC method 1 over the ARQC and the two-character response code."""
    return arpc_method1(session_key, arqc, response_code.encode("ascii"))


def atc_refusal(last_atc: int | None, atc: int, window: int) -> str | None:
    """A counter at or below the last one seen is a replay (or a cloned card); one that
    jumps further than `window` ahead is refused too, since genuine cards advance slowly."""
    if last_atc is not None and atc <= last_atc:
        return "atc_replayed"
    if atc - (last_atc or 0) > window:
        return "atc_out_of_window"
    return None


def response_code(decline: str | None) -> str:
    return APPROVED if decline is None else RESPONSE_CODES.get(decline, "05")
