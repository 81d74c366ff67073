"""The card itself: an APDU state machine with the social-security and the debit application.

No I/O here: `transmit` takes a command APDU and returns the response APDU, so the same card
answers through vpcd (vpcd.py) and in plain unit tests.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from devices.emulators.sscard.profile import CardProfile, ProfileError
from devices.emv.crypto import arpc_method1, arqc_input, generate_arqc, pboc_session_key
from devices.emv.dol import parse_dol
from devices.emv.tlv import encode_one

SOCIAL_SECURITY_AID = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
DEBIT_AID = bytes.fromhex("A000000333010101")
PSE = b"1PAY.SYS.DDF01"
PPSE = b"2PAY.SYS.DDF01"
# T=0 card, TB1/TC1 present, 11 historical bytes naming the card.
ATR = bytes.fromhex("3B6B0000") + b"SSCARD3.0CN"

PDOL = bytes.fromhex("9F7A019F02065F2A02")
CDOL1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F37049F21039F4E14")
CDOL2 = bytes.fromhex("8A029F37049505")
AIP = bytes.fromhex("7C00")
AFL = bytes.fromhex("08010200")  # SFI 1, records 1 to 2, none for offline data authentication
CVM_LIST = bytes.fromhex("000000000000000042031E031F00")  # online PIN, else signature, else none

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS = b"\x69\x85"  # conditions of use not satisfied (wrong order)
SW_FILE_NOT_FOUND = b"\x6a\x82"
SW_RECORD_NOT_FOUND = b"\x6a\x83"
SW_WRONG_P1P2 = b"\x6a\x86"
SW_INS_UNKNOWN = b"\x6d\x00"
SW_CLA_UNKNOWN = b"\x6e\x00"
SW_APP_BLOCKED = b"\x62\x83"  # selected file invalidated
SW_AUTH_FAILED = b"\x63\x00"
SW_DATA_NOT_FOUND = b"\x6a\x88"

CID_AAC, CID_TC, CID_ARQC = 0x00, 0x40, 0x80
ARC_APPROVED = b"00"


class CardPulled(Exception):
    """The card has left the reader's field; the link must drop the connection."""


@dataclass(frozen=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    le: int | None  # None: no Le field; 0 stands for "up to 256"


def parse_command(apdu: bytes) -> Command | None:
    """Parse a short ISO 7816-4 command APDU; None when its length fields do not add up."""
    if len(apdu) < 4:
        return None
    cla, ins, p1, p2 = apdu[:4]
    if len(apdu) == 4:
        return Command(cla, ins, p1, p2, b"", None)
    if len(apdu) == 5:
        return Command(cla, ins, p1, p2, b"", apdu[4])
    lc = apdu[4]
    body = apdu[5:]
    if lc == 0 or len(body) not in (lc, lc + 1):
        return None
    return Command(cla, ins, p1, p2, body[:lc], body[lc] if len(body) == lc + 1 else None)


def _bcd_date(iso: str) -> bytes:
    return bytes.fromhex(iso.replace("-", ""))


def _gbk_field(text: str, size: int) -> bytes:
    raw = text.encode("gbk")
    if len(raw) > size:
        raise ProfileError(f"name longer than {size} bytes in GBK")
    return raw.ljust(size, b" ")


@dataclass
class _Transaction:
    """One debit transaction, from GET PROCESSING OPTIONS to the second GENERATE AC."""

    session_key: bytes = b""
    arqc: bytes = b""
    issuer_authenticated: bool = False
    completed: bool = False


@dataclass
class SocialSecurityCard:
    """A personalised card. `on_atc` is told each new ATC, e.g. to write the profile back."""

    profile: CardProfile
    on_atc: Callable[[int], None] | None = None
    apdus_answered: int = 0
    # The chip's working state: selection, the transaction in progress, personalised records.
    _app: bytes = field(default=b"", init=False, repr=False)
    _ef: int = field(default=0, init=False, repr=False)
    _txn: _Transaction | None = field(default=None, init=False, repr=False)
    _pending: bytes = field(default=b"", init=False, repr=False)  # T=0: for GET RESPONSE
    _last_online_atc: int = field(default=0, init=False, repr=False)
    _records: dict[tuple[bytes, int, int], bytes] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self._records = self._personalise()

    # Power.

    @property
    def atr(self) -> bytes:
        return ATR

    def power_on(self) -> bytes:
        """Cold or warm reset: forget the selection and any transaction; return the ATR."""
        self._app, self._ef, self._txn, self._pending = b"", 0, None, b""
        return ATR

    def power_off(self) -> None:
        self.power_on()

    # Commands.

    def transmit(self, apdu: bytes) -> bytes:
        """Answer one command APDU with response data and a status word."""
        pull_after = self.profile.pull_after_apdus
        if pull_after is not None and self.apdus_answered >= pull_after:
            raise CardPulled
        self.apdus_answered += 1
        command = parse_command(apdu)
        if command is None:
            return SW_WRONG_LENGTH
        if command.cla not in (0x00, 0x80):
            return SW_CLA_UNKNOWN
        handler = self._handlers().get(command.ins)
        if handler is None:
            return SW_INS_UNKNOWN
        return handler(command)

    def _handlers(self) -> dict[int, Callable[[Command], bytes]]:
        return {
            0xA4: self._select,
            0xB2: self._read_record,
            0xA8: self._get_processing_options,
            0xAE: self._generate_ac,
            0x82: self._external_authenticate,
            0xCA: self._get_data,
            0xC0: self._get_response,
        }

    def _answer(self, data: bytes, *, case4: bool = True) -> bytes:
        """Data and 9000; a T=0 card instead announces case-4 data with 61xx."""
        if case4 and self.profile.t0_get_response and data:
            self._pending = data
            return bytes([0x61, len(data) & 0xFF])
        return data + SW_OK

    def _get_response(self, command: Command) -> bytes:
        if not self._pending:
            return SW_CONDITIONS
        data, self._pending = self._pending, b""
        if command.le not in (None, 0, len(data) & 0xFF):
            self._pending = data
            return bytes([0x6C, len(data) & 0xFF])
        return data + SW_OK

    def _select(self, command: Command) -> bytes:
        if command.p1 == 0x04:
            return self._select_by_name(command.data)
        if command.p1 in (0x00, 0x02) and len(command.data) == 2:
            return self._select_file(int.from_bytes(command.data, "big"))
        return SW_WRONG_P1P2

    def _select_by_name(self, name: bytes) -> bytes:
        self._ef, self._txn = 0, None
        fci = self._fci(name)
        if fci is None:
            return SW_FILE_NOT_FOUND
        if name == DEBIT_AID and self.profile.blocked:
            self._app = b""
            return SW_APP_BLOCKED
        self._app = name
        return self._answer(fci)

    def _select_file(self, fid: int) -> bytes:
        if fid == 0x3F00:
            self._app, self._ef = b"", 0
            return SW_OK
        if self._app == SOCIAL_SECURITY_AID and fid in (0xEF05, 0xEF06):
            self._ef = fid & 0xFF
            return SW_OK
        return SW_FILE_NOT_FOUND

    def _fci(self, name: bytes) -> bytes | None:
        if name == PPSE:
            entry = encode_one(0x61, self._directory_entry())
            return encode_one(
                0x6F, encode_one(0x84, name) + encode_one(0xA5, encode_one(0xBF0C, entry))
            )
        if name == PSE:
            proprietary = encode_one(0x88, b"\x01") + encode_one(0x5F2D, b"zh")
            return encode_one(0x6F, encode_one(0x84, name) + encode_one(0xA5, proprietary))
        if name == DEBIT_AID:
            proprietary = (
                encode_one(0x50, b"PBOC DEBIT")
                + encode_one(0x87, b"\x01")
                + encode_one(0x9F38, PDOL)
                + encode_one(0x5F2D, b"zh")
            )
            return encode_one(0x6F, encode_one(0x84, name) + encode_one(0xA5, proprietary))
        if name == SOCIAL_SECURITY_AID:
            proprietary = encode_one(0x50, b"SSSE")
            return encode_one(0x6F, encode_one(0x84, name) + encode_one(0xA5, proprietary))
        return None

    @staticmethod
    def _directory_entry() -> bytes:
        return (
            encode_one(0x4F, DEBIT_AID)
            + encode_one(0x50, b"PBOC DEBIT")
            + encode_one(0x87, b"\x01")
        )

    def _read_record(self, command: Command) -> bytes:
        sfi = command.p2 >> 3
        if command.p2 & 0x07 != 0x04:
            return SW_WRONG_P1P2
        if sfi == 0:
            sfi = self._ef  # the current file of the social-security application
        record = self._records.get((self._app, sfi, command.p1))
        if record is None:
            return SW_RECORD_NOT_FOUND
        wanted = command.le or 0
        if (wanted == 0 and self.profile.strict_le) or wanted not in (0, len(record)):
            return bytes([0x6C, len(record) & 0xFF])
        return record + SW_OK

    def _get_processing_options(self, command: Command) -> bytes:
        if self._app != DEBIT_AID or command.cla != 0x80:
            return SW_CONDITIONS
        expected = sum(length for _, length in parse_dol(PDOL))
        data = command.data
        if len(data) < 2 or data[0] != 0x83 or data[1] != expected or len(data) != 2 + expected:
            return SW_WRONG_LENGTH
        self._txn = _Transaction()
        return self._answer(encode_one(0x77, encode_one(0x82, AIP) + encode_one(0x94, AFL)))

    def _generate_ac(self, command: Command) -> bytes:
        txn = self._txn
        if txn is None or txn.completed or command.cla != 0x80:
            return SW_CONDITIONS
        if not txn.arqc:
            return self._first_generate_ac(txn, command)
        return self._second_generate_ac(txn, command)

    def _first_generate_ac(self, txn: _Transaction, command: Command) -> bytes:
        entries = parse_dol(CDOL1)
        if len(command.data) != sum(length for _, length in entries):
            return SW_WRONG_LENGTH
        if self.profile.atc >= 0xFFFF:
            return SW_CONDITIONS  # the counter is spent: the card is at the end of its life
        self.profile.atc += 1
        if self.on_atc is not None:
            self.on_atc(self.profile.atc)
        values = _split(entries, command.data)
        atc = self.profile.atc.to_bytes(2, "big")
        values[0x82], values[0x9F36] = AIP, atc
        iad = self._iad(0xA0)
        txn.session_key = pboc_session_key(self.profile.master_key, atc)
        if command.p1 & 0xC0 == CID_AAC:
            txn.completed = True
            cid, cryptogram = CID_AAC, generate_arqc(txn.session_key, command.data + atc)
        else:
            txn.arqc = generate_arqc(txn.session_key, arqc_input(values, iad))
            cid, cryptogram = CID_ARQC, txn.arqc
        return self._answer(_ac_response(cid, atc, cryptogram, iad))

    def _external_authenticate(self, command: Command) -> bytes:
        txn = self._txn
        if txn is None or not txn.arqc or txn.completed:
            return SW_CONDITIONS
        if len(command.data) != 10:
            return SW_WRONG_LENGTH
        arpc, arc = command.data[:8], command.data[8:]
        expected = arpc_method1(txn.session_key, txn.arqc, arc)
        txn.issuer_authenticated = hmac.compare_digest(arpc, expected)
        if not txn.issuer_authenticated:
            return SW_AUTH_FAILED
        self._last_online_atc = self.profile.atc
        return SW_OK

    def _second_generate_ac(self, txn: _Transaction, command: Command) -> bytes:
        entries = parse_dol(CDOL2)
        if len(command.data) != sum(length for _, length in entries):
            return SW_WRONG_LENGTH
        arc = _split(entries, command.data)[0x8A]
        approve = command.p1 & 0xC0 == CID_TC and txn.issuer_authenticated and arc == ARC_APPROVED
        cid = CID_TC if approve else CID_AAC
        atc = self.profile.atc.to_bytes(2, "big")
        iad = self._iad(0x60 if approve else 0x20)
        txn.completed = True
        cryptogram = generate_arqc(txn.session_key, command.data + atc + iad[3:7])
        return self._answer(_ac_response(cid, atc, cryptogram, iad))

    def _iad(self, cvr_ac_types: int) -> bytes:
        """9F10 in the PBOC layout: length, DKI, CVN 01, CVR (03 + three bytes), pad."""
        return bytes([0x07, self.profile.key_index, 0x01, 0x03, cvr_ac_types, 0x00, 0x00, 0x00])

    def _get_data(self, command: Command) -> bytes:
        tag = (command.p1 << 8) | command.p2
        values = {
            0x9F36: self.profile.atc.to_bytes(2, "big"),
            0x9F13: self._last_online_atc.to_bytes(2, "big"),
            0x9F17: b"\x03",
        }
        if self._app != DEBIT_AID or tag not in values:
            return SW_DATA_NOT_FOUND
        return encode_one(tag, values[tag]) + SW_OK

    # Personalisation.

    def _personalise(self) -> dict[tuple[bytes, int, int], bytes]:
        p = self.profile
        issuer_data = {
            0x01: p.card_id_code.encode("ascii"),
            0x02: b"3",  # third-generation card
            0x03: b"3.00",
            0x04: p.region_code.encode("ascii"),
            0x05: _bcd_date(p.issue_date),
            0x06: _bcd_date(p.expiry_date),
            0x07: p.card_number.encode("ascii"),
        }
        holder_data = {
            0x08: p.id_number.encode("ascii"),
            0x09: _gbk_field(p.holder_name, 30),
            0x0A: p.sex.encode("ascii"),
            0x0B: bytes.fromhex(p.nation),
            0x0C: bytes.fromhex(p.region_code),
            0x0D: _bcd_date(p.birth_date),
        }
        records: dict[tuple[bytes, int, int], bytes] = {}
        for sfi, items in ((0x05, issuer_data), (0x06, holder_data)):
            for item, value in items.items():
                records[(SOCIAL_SECURITY_AID, sfi, item)] = bytes([item, len(value)]) + value
        records[(PSE, 1, 1)] = encode_one(0x70, encode_one(0x61, self._directory_entry()))
        records[(DEBIT_AID, 1, 1)], records[(DEBIT_AID, 1, 2)] = self._debit_records()
        return records

    def _debit_records(self) -> tuple[bytes, bytes]:
        p = self.profile
        expiry = _bcd_date(p.pan_expiry)[1:]  # YYMMDD
        pan_digits = p.pan + ("F" if len(p.pan) % 2 else "")
        track2 = f"{p.pan}D{expiry.hex()[:4]}2010000000000"
        track2 += "F" if len(track2) % 2 else ""
        first = encode_one(0x57, bytes.fromhex(track2)) + encode_one(0x5F20, b"CARDHOLDER/SSC")
        second = b"".join(
            (
                encode_one(0x5A, bytes.fromhex(pan_digits)),
                encode_one(0x5F24, expiry),
                encode_one(0x5F25, _bcd_date(p.issue_date)[1:]),
                encode_one(0x5F34, bytes.fromhex(p.psn)),
                encode_one(0x5F28, b"\x01\x56"),
                encode_one(0x8C, CDOL1),
                encode_one(0x8D, CDOL2),
                encode_one(0x8E, CVM_LIST),
                encode_one(0x9F07, b"\xff\x00"),
            )
        )
        return encode_one(0x70, first), encode_one(0x70, second)


def _split(entries: list[tuple[int, int]], data: bytes) -> dict[int, bytes]:
    values: dict[int, bytes] = {}
    offset = 0
    for tag, length in entries:
        values[tag] = data[offset : offset + length]
        offset += length
    return values


def _ac_response(cid: int, atc: bytes, cryptogram: bytes, iad: bytes) -> bytes:
    return encode_one(
        0x77,
        encode_one(0x9F27, bytes([cid]))
        + encode_one(0x9F36, atc)
        + encode_one(0x9F26, cryptogram)
        + encode_one(0x9F10, iad),
    )
