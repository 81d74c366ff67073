"""The social-security application: EF05 (issuer data) and EF06 (holder data) as item records."""

from __future__ import annotations

from datetime import date

from devices.pcsc import apdu
from devices.pcsc.channel import CardChannel
from devices.pcsc.errors import CardDataError
from devices.pcsc.models import SocialSecurityData

SOCIAL_SECURITY_AID = bytes.fromhex("7378312E73682EC9E7BBE1B1A3D5CF")
ISSUER_FILE, HOLDER_FILE = 0xEF05, 0xEF06
ISSUER_ITEMS = range(0x01, 0x08)
HOLDER_ITEMS = range(0x08, 0x0E)


def read_social_security(channel: CardChannel) -> SocialSecurityData:
    """Select the application and read every item of EF05 and EF06."""
    channel.command(apdu.select_by_name(SOCIAL_SECURITY_AID), "SELECT social security")
    items: dict[int, bytes] = {}
    for fid, numbers in ((ISSUER_FILE, ISSUER_ITEMS), (HOLDER_FILE, HOLDER_ITEMS)):
        channel.command(apdu.select_file(fid), f"SELECT {fid:04X}")
        for number in numbers:
            record = channel.command(apdu.read_record(number), f"READ RECORD {fid:04X}/{number}")
            items[number] = _item(record, number)
    return _parse(items)


def _item(record: bytes, number: int) -> bytes:
    """An item record is its number, a one-byte length and the value."""
    if len(record) < 2 or record[0] != number or record[1] != len(record) - 2:
        raise CardDataError(f"item {number:02X} is malformed")
    return record[2:]


def _text(value: bytes, encoding: str = "ascii") -> str:
    try:
        return value.decode(encoding).strip(" \x00")
    except UnicodeDecodeError:
        raise CardDataError("an item holds text in the wrong encoding") from None


def _date(value: bytes) -> date:
    digits = value.hex()
    try:
        return date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        raise CardDataError("an item holds an invalid date") from None


def _parse(items: dict[int, bytes]) -> SocialSecurityData:
    return SocialSecurityData(
        card_id_code=_text(items[0x01]),
        card_type=_text(items[0x02]),
        version=_text(items[0x03]),
        issuing_region=_text(items[0x04]),
        issue_date=_date(items[0x05]),
        expiry_date=_date(items[0x06]),
        card_number=_text(items[0x07]),
        id_number=_text(items[0x08]),
        holder_name=_text(items[0x09], "gbk"),
        sex=_text(items[0x0A]),
        nation=items[0x0B].hex(),
        birth_place=items[0x0C].hex(),
        birth_date=_date(items[0x0D]),
    )
