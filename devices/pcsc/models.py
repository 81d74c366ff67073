"""Typed results of reading a card. Reprs mask the PAN and hide track data and ID numbers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from devices.emv.tlv import Tlv, encode


def mask_pan(pan: str) -> str:
    """First six and last four digits, as on a receipt."""
    return f"{pan[:6]}{'*' * (len(pan) - 10)}{pan[-4:]}"


def _bcd(value: int, size: int) -> bytes:
    return bytes.fromhex(f"{value:0{size * 2}d}")


@dataclass(frozen=True)
class TerminalData:
    """What the terminal contributes to the cryptogram (EMV Book 4 data elements)."""

    amount: int  # fen
    when: datetime = field(default_factory=lambda: datetime.now(UTC))
    unpredictable_number: bytes = field(default_factory=lambda: os.urandom(4))
    amount_other: int = 0
    currency: str = "0156"  # ISO 4217 numeric, CNY
    country: str = "0156"  # ISO 3166 numeric, China
    transaction_type: int = 0x00  # goods and services
    tvr: bytes = bytes(5)
    merchant_name: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.amount < 10**12 or not 0 <= self.amount_other < 10**12:
            raise ValueError("amounts must fit in 12 BCD digits")
        if len(self.unpredictable_number) != 4 or len(self.tvr) != 5:
            raise ValueError("unpredictable number is 4 bytes and TVR 5 bytes")

    def values(self) -> dict[int, bytes]:
        """Tag -> value, for filling PDOL, CDOL1 and CDOL2."""
        return {
            0x9F02: _bcd(self.amount, 6),
            0x9F03: _bcd(self.amount_other, 6),
            0x9F1A: bytes.fromhex(self.country),
            0x95: self.tvr,
            0x5F2A: bytes.fromhex(self.currency),
            0x9A: bytes.fromhex(self.when.strftime("%y%m%d")),
            0x9C: bytes([self.transaction_type]),
            0x9F37: self.unpredictable_number,
            0x9F21: bytes.fromhex(self.when.strftime("%H%M%S")),
            0x9F4E: self.merchant_name.encode("ascii", "replace")[:20],
            0x9F7A: b"\x00",  # no electronic cash: always go online
        }


@dataclass(frozen=True)
class SocialSecurityData:
    """EF05 (issuer data) and EF06 (holder data) of the social-security application."""

    card_id_code: str
    card_type: str
    version: str
    issuing_region: str
    issue_date: date
    expiry_date: date
    card_number: str
    id_number: str = field(repr=False)
    holder_name: str = ""
    sex: str = ""
    nation: str = ""
    birth_place: str = ""
    birth_date: date | None = None


@dataclass(frozen=True)
class DebitCard:
    """What READ RECORD by AFL returned from the debit application."""

    aid: bytes
    pan: str = field(repr=False)
    psn: str
    expiry: date
    aip: bytes
    afl: bytes
    cdol1: bytes
    cdol2: bytes
    cardholder_name: str = ""
    records: dict[int, bytes] = field(default_factory=dict, repr=False)

    @property
    def pan_masked(self) -> str:
        return mask_pan(self.pan)

    def __repr__(self) -> str:
        return f"DebitCard(aid={self.aid.hex().upper()}, pan={self.pan_masked}, psn={self.psn})"


@dataclass(frozen=True)
class Cryptogram:
    """The card's answer to GENERATE AC, with the data it was computed over."""

    cid: int  # 0x80 ARQC, 0x40 TC, 0x00 AAC
    atc: int
    cryptogram: bytes
    iad: bytes
    terminal: TerminalData
    aip: bytes

    @property
    def kind(self) -> str:
        return {0x80: "ARQC", 0x40: "TC"}.get(self.cid & 0xC0, "AAC")

    def icc_data(self) -> bytes:
        """The chip data an issuer needs to check the cryptogram (as ISO 8583 field 55)."""
        values = self.terminal.values()
        tags = (0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37)
        items = [Tlv(0x9F26, self.cryptogram), Tlv(0x9F27, bytes([self.cid]))]
        items += [Tlv(0x9F10, self.iad), Tlv(0x9F36, self.atc.to_bytes(2, "big"))]
        items += [Tlv(0x82, self.aip)] + [Tlv(tag, values[tag]) for tag in tags]
        return encode(items)


@dataclass(frozen=True)
class Completion:
    """The end of the transaction on the card: issuer authentication and the final cryptogram."""

    issuer_authenticated: bool
    cryptogram: Cryptogram

    @property
    def approved_by_card(self) -> bool:
        return self.cryptogram.kind == "TC"


@dataclass(frozen=True)
class CardRead:
    """One tap: the reader, both applications and the first cryptogram."""

    reader: str
    atr: bytes
    social_security: SocialSecurityData
    debit: DebitCard
    arqc: Cryptogram
