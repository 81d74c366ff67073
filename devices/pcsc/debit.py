"""The debit application: select, GET PROCESSING OPTIONS, READ RECORD by AFL, GENERATE AC."""

from __future__ import annotations

from datetime import date

from devices.emv.dol import build_dol, parse_dol
from devices.emv.errors import EmvError
from devices.emv.tlv import Tlv, decode, find, flatten
from devices.pcsc import apdu
from devices.pcsc.channel import CardChannel
from devices.pcsc.errors import CardBlocked, CardDataError, CardStatusError
from devices.pcsc.models import Completion, Cryptogram, DebitCard, TerminalData

PPSE = b"2PAY.SYS.DDF01"
PBOC_DEBIT_AID = bytes.fromhex("A000000333010101")
REQUEST_ARQC, REQUEST_TC, REQUEST_AAC = 0x80, 0x40, 0x00
ARC_APPROVED = b"00"
_MAX_DATA = 255  # a short APDU's Lc: the most data one command carries


def _decode(data: bytes, what: str) -> list[Tlv]:
    try:
        items = decode(data)
        flatten(items)  # opens every nested template now, so no later read of them can fail
    except EmvError:
        raise CardDataError(f"{what} is not valid BER-TLV") from None
    return items


def _required(values: dict[int, bytes], tag: int, what: str) -> bytes:
    if tag not in values:
        raise CardDataError(f"{what} lacks tag {tag:X}")
    return values[tag]


def choose_application(channel: CardChannel) -> bytes:
    """The debit AID listed in the PPSE directory (highest priority first)."""
    fci = _decode(channel.command(apdu.select_by_name(PPSE), "SELECT PPSE"), "PPSE FCI")
    directory = find(fci, 0xBF0C)
    entries = [t for t in directory.children if t.tag == 0x61] if directory else []
    candidates = []
    for entry in entries:
        values = flatten(entry.children)
        if 0x4F in values:
            priority = values.get(0x87) or b"\x0f"  # absent or empty: the lowest priority
            candidates.append((priority[0] & 0x0F, values[0x4F]))
    if not candidates:
        raise CardDataError("the PPSE lists no application")
    debit = [aid for _, aid in sorted(candidates) if aid.startswith(PBOC_DEBIT_AID[:5])]
    return debit[0] if debit else sorted(candidates)[0][1]


def read_debit(channel: CardChannel, terminal: TerminalData) -> DebitCard:
    """Select the debit application, start a transaction and read its records."""
    aid = choose_application(channel)
    response = channel.exchange(apdu.select_by_name(aid))
    if response.sw == apdu.SW_APP_BLOCKED:
        raise CardBlocked("the card's debit application is blocked")
    if not response.ok:
        raise CardStatusError("SELECT debit application", response.sw)
    fci = flatten(_decode(response.data, "application FCI"))
    pdol = _dol_data(fci.get(0x9F38, b""), terminal.values(), "PDOL", _MAX_DATA - 2)
    gpo = channel.command(apdu.get_processing_options(pdol), "GET PROCESSING OPTIONS")
    aip, afl = _processing_options(gpo)
    records = _read_afl(channel, afl)
    return _debit_card(aid, aip, afl, records)


def _dol_data(raw: bytes, values: dict[int, bytes], what: str, limit: int = _MAX_DATA) -> bytes:
    """The terminal's data the card's DOL asks for; CardDataError when the DOL is malformed
    or asks for more than one command can carry."""
    try:
        dol = parse_dol(raw)
        if sum(length for _, length in dol) > limit:
            raise CardDataError(f"the card's {what} asks for more than a command can carry")
        return build_dol(dol, values)
    except EmvError:
        raise CardDataError(f"the card's {what} is malformed") from None


def _processing_options(gpo: bytes) -> tuple[bytes, bytes]:
    items = _decode(gpo, "GPO response")
    if items and items[0].tag == 0x80 and len(items[0].value) >= 2:  # format 1
        return items[0].value[:2], items[0].value[2:]
    values = flatten(items)
    return _required(values, 0x82, "GPO response"), _required(values, 0x94, "GPO response")


def _read_afl(channel: CardChannel, afl: bytes) -> dict[int, bytes]:
    if not afl or len(afl) % 4:
        raise CardDataError("the AFL is not a list of 4-byte entries")
    values: dict[int, bytes] = {}
    for start in range(0, len(afl), 4):
        sfi, first, last = afl[start] >> 3, afl[start + 1], afl[start + 2]
        for number in range(first, last + 1):
            record = channel.command(apdu.read_record(number, sfi), f"READ RECORD {sfi}/{number}")
            items = _decode(record, "record")
            if not items or items[0].tag != 0x70:
                raise CardDataError("a record is not a 70 template")
            for tag, value in flatten(items).items():
                values.setdefault(tag, value)
    return values


def _debit_card(aid: bytes, aip: bytes, afl: bytes, values: dict[int, bytes]) -> DebitCard:
    pan = _required(values, 0x5A, "records").hex().upper().rstrip("F")
    expiry = _required(values, 0x5F24, "records").hex()
    if not pan.isdigit() or len(expiry) != 6:
        raise CardDataError("PAN or expiry date is malformed")
    try:
        expires = date(2000 + int(expiry[:2]), int(expiry[2:4]), int(expiry[4:6]))
    except ValueError:
        raise CardDataError("expiry date is malformed") from None
    return DebitCard(
        aid=aid,
        pan=pan,
        psn=values.get(0x5F34, b"\x00").hex(),
        expiry=expires,
        aip=aip,
        afl=afl,
        cdol1=_required(values, 0x8C, "records"),
        cdol2=values.get(0x8D, b""),
        cardholder_name=values.get(0x5F20, b"").decode("ascii", "replace").strip(),
        records=values,
    )


def generate_arqc(channel: CardChannel, card: DebitCard, terminal: TerminalData) -> Cryptogram:
    """First GENERATE AC, asking to go online."""
    data = _dol_data(card.cdol1, terminal.values(), "CDOL1")
    answer = channel.command(apdu.generate_ac(REQUEST_ARQC, data), "GENERATE AC")
    return _cryptogram(answer, terminal, card.aip)


def complete(
    channel: CardChannel,
    card: DebitCard,
    terminal: TerminalData,
    arc: bytes,
    arpc: bytes | None,
) -> Completion:
    """Hand the issuer's answer to the card (EXTERNAL AUTHENTICATE), then the second
    GENERATE AC: a TC when the issuer approved and the card accepted its ARPC, else an AAC."""
    authenticated = False
    if arpc is not None:
        response = channel.exchange(apdu.external_authenticate(arpc, arc))
        if response.sw not in (apdu.SW_OK, apdu.SW_ISSUER_AUTH_FAILED):
            raise CardStatusError("EXTERNAL AUTHENTICATE", response.sw)
        authenticated = response.ok
    wanted = REQUEST_TC if authenticated and arc == ARC_APPROVED else REQUEST_AAC
    values = {**terminal.values(), 0x8A: arc}
    data = _dol_data(card.cdol2, values, "CDOL2")
    answer = channel.command(apdu.generate_ac(wanted, data), "second GENERATE AC")
    return Completion(authenticated, _cryptogram(answer, terminal, card.aip))


def _cryptogram(answer: bytes, terminal: TerminalData, aip: bytes) -> Cryptogram:
    items = _decode(answer, "GENERATE AC response")
    if items and items[0].tag == 0x80:  # format 1: CID, ATC, AC, IAD
        raw = items[0].value
        if len(raw) < 11:
            raise CardDataError("GENERATE AC response is too short")
        values = {0x9F27: raw[:1], 0x9F36: raw[1:3], 0x9F26: raw[3:11], 0x9F10: raw[11:]}
    else:
        values = flatten(items)
    cid = _required(values, 0x9F27, "GENERATE AC response")
    atc = _required(values, 0x9F36, "GENERATE AC response")
    ac = _required(values, 0x9F26, "GENERATE AC response")
    if len(cid) != 1 or len(atc) != 2 or len(ac) != 8:
        raise CardDataError("GENERATE AC response has malformed fields")
    return Cryptogram(
        cid=cid[0],
        atc=int.from_bytes(atc, "big"),
        cryptogram=ac,
        iad=values.get(0x9F10, b""),
        terminal=terminal,
        aip=aip,
    )
