"""The virtual card answers as a social security card does, APDU by APDU (no reader needed)."""

import pytest

from devices.emulators.sscard.card import (
    ATR,
    CDOL1,
    CDOL2,
    DEBIT_AID,
    PPSE,
    SOCIAL_SECURITY_AID,
    CardPulled,
    SocialSecurityCard,
)
from devices.emv.crypto import (
    arpc_method1,
    arqc_input,
    derive_icc_master_key,
    generate_arqc,
    pboc_session_key,
)
from devices.emv.dol import parse_dol
from devices.emv.tlv import decode, flatten
from tests.devices.emulators.sscard.virtual_card import TEST_IMK, TEST_PAN, make_profile

AMOUNT = bytes.fromhex("000000012345")
CDOL1_DATA = (
    AMOUNT
    + bytes(6)
    + bytes.fromhex("0156")
    + bytes(5)
    + bytes.fromhex("0156")
    + bytes.fromhex("261129")
    + b"\x00"
    + bytes.fromhex("1E78EEBC")
    + bytes.fromhex("083000")
    + b"HOSPITAL".ljust(20, b"\x00")
)


def select(name: bytes) -> bytes:
    return bytes([0x00, 0xA4, 0x04, 0x00, len(name)]) + name + b"\x00"


def _gpo_body() -> bytes:
    pdol_data = b"\x00" + AMOUNT + bytes.fromhex("0156")
    return bytes([0x83, len(pdol_data)]) + pdol_data + b"\x00"


def gpo_command() -> bytes:
    body = _gpo_body()[:-1]
    return bytes([0x80, 0xA8, 0x00, 0x00, len(body)]) + body + b"\x00"


def generate_ac(p1: int, data: bytes) -> bytes:
    return bytes([0x80, 0xAE, p1, 0x00, len(data)]) + data + b"\x00"


def ok(response: bytes) -> bytes:
    assert response[-2:] == b"\x90\x00", response[-2:].hex()
    return response[:-2]


def started(card: SocialSecurityCard) -> SocialSecurityCard:
    card.power_on()
    ok(card.transmit(select(DEBIT_AID)))
    ok(card.transmit(gpo_command()))
    return card


@pytest.fixture
def card() -> SocialSecurityCard:
    return SocialSecurityCard(make_profile())


def test_power_on_answers_the_atr(card):
    assert card.power_on() == ATR == card.atr


def test_ppse_lists_the_debit_application(card):
    fci = flatten(decode(ok(card.transmit(select(PPSE)))))
    assert fci[0x4F] == DEBIT_AID


def test_unknown_application_is_not_found(card):
    assert card.transmit(select(bytes.fromhex("A0000000031010"))) == b"\x6a\x82"


def test_social_security_items_are_read_as_tagged_records(card):
    ok(card.transmit(select(SOCIAL_SECURITY_AID)))
    ok(card.transmit(bytes.fromhex("00A4020002EF05")))
    assert ok(card.transmit(bytes.fromhex("00B2070400"))) == b"\x07\x09K10000001"
    ok(card.transmit(bytes.fromhex("00A4020002EF06")))
    name = ok(card.transmit(bytes.fromhex("00B2090400")))
    assert name[:2] == b"\x09\x1e" and name[2:].decode("gbk").strip() == "张秀英"


def test_holder_file_is_not_reachable_from_the_debit_application(card):
    ok(card.transmit(select(DEBIT_AID)))
    assert card.transmit(bytes.fromhex("00A4020002EF06")) == b"\x6a\x82"


def test_records_by_afl_carry_pan_psn_and_cdols(card):
    started(card)
    second = flatten(decode(ok(card.transmit(bytes.fromhex("00B2020C00")))))
    assert second[0x5A].hex().upper().rstrip("F") == TEST_PAN
    assert second[0x5F34] == b"\x01"
    assert second[0x8C] == CDOL1 and second[0x8D] == CDOL2


def test_gpo_with_a_short_pdol_answer_is_refused(card):
    ok(card.transmit(select(DEBIT_AID)))
    assert card.transmit(bytes.fromhex("80A80000028300")) == b"\x67\x00"


def test_generate_ac_before_gpo_is_refused(card):
    ok(card.transmit(select(DEBIT_AID)))
    assert card.transmit(generate_ac(0x80, CDOL1_DATA)) == b"\x69\x85"


def first_ac(card: SocialSecurityCard) -> dict[int, bytes]:
    return flatten(decode(ok(card.transmit(generate_ac(0x80, CDOL1_DATA)))))


def test_arqc_is_the_issuers_pboc_mac_and_the_atc_counts_up(card):
    seen: list[int] = []
    card.on_atc = seen.append
    answer = first_ac(started(card))
    assert answer[0x9F27] == b"\x80" and answer[0x9F36] == b"\x00\x01" and seen == [1]
    key = derive_icc_master_key(TEST_IMK, TEST_PAN, "01")
    session_key = pboc_session_key(key, answer[0x9F36])
    values = dict(zip([t for t, _ in parse_dol(CDOL1)], _split(CDOL1_DATA), strict=True))
    values |= {0x82: bytes.fromhex("7C00"), 0x9F36: answer[0x9F36]}
    expected = generate_arqc(session_key, arqc_input(values, answer[0x9F10]))
    assert answer[0x9F26] == expected
    assert first_ac(started(card))[0x9F36] == b"\x00\x02"


def _split(data: bytes) -> list[bytes]:
    parts, offset = [], 0
    for _, length in parse_dol(CDOL1):
        parts.append(data[offset : offset + length])
        offset += length
    return parts


def _complete(card: SocialSecurityCard, arpc: bytes, arc: bytes) -> tuple[bytes, bytes]:
    auth = card.transmit(bytes.fromhex("008200000A") + arpc + arc)
    cdol2 = arc + bytes.fromhex("1E78EEBC") + bytes(5)
    answer = flatten(decode(ok(card.transmit(generate_ac(0x40, cdol2)))))
    return auth[-2:], answer[0x9F27]


def _arpc(card_answer: dict[int, bytes], arc: bytes) -> bytes:
    key = derive_icc_master_key(TEST_IMK, TEST_PAN, "01")
    return arpc_method1(pboc_session_key(key, card_answer[0x9F36]), card_answer[0x9F26], arc)


def test_issuers_arpc_with_approval_gives_a_tc(card):
    answer = first_ac(started(card))
    assert _complete(card, _arpc(answer, b"00"), b"00") == (b"\x90\x00", b"\x40")


def test_a_forged_arpc_gives_an_aac(card):
    first_ac(started(card))
    assert _complete(card, bytes(8), b"00") == (b"\x63\x00", b"\x00")


def test_an_authentic_decline_gives_an_aac(card):
    answer = first_ac(started(card))
    assert _complete(card, _arpc(answer, b"51"), b"51") == (b"\x90\x00", b"\x00")


def test_a_blocked_card_refuses_the_debit_application():
    card = SocialSecurityCard(make_profile(blocked=True))
    assert card.transmit(select(DEBIT_AID)) == b"\x62\x83"


def test_a_card_pulled_mid_read_stops_answering():
    card = SocialSecurityCard(make_profile(pull_after_apdus=2))
    card.transmit(select(PPSE))
    card.transmit(select(DEBIT_AID))
    with pytest.raises(CardPulled):
        card.transmit(gpo_command())


def test_a_t0_card_announces_data_with_61xx_and_hands_it_over_on_get_response():
    card = SocialSecurityCard(make_profile(t0_get_response=True))
    first = card.transmit(select(DEBIT_AID))
    assert first[0] == 0x61
    data = ok(card.transmit(bytes([0x00, 0xC0, 0x00, 0x00, first[1]])))
    assert len(data) == first[1] and data[0] == 0x6F


def test_a_strict_card_asks_for_the_exact_le_with_6cxx():
    card = started(SocialSecurityCard(make_profile(strict_le=True)))
    wrong = card.transmit(bytes.fromhex("00B2010C00"))
    assert wrong[0] == 0x6C
    assert len(ok(card.transmit(bytes.fromhex("00B2010C") + bytes([wrong[1]])))) == wrong[1]


def test_malformed_and_unknown_commands_get_status_words(card):
    assert card.transmit(b"\x00\xa4") == b"\x67\x00"
    assert card.transmit(bytes.fromhex("00A404000500")) == b"\x67\x00"
    assert card.transmit(bytes.fromhex("00FF000000")) == b"\x6d\x00"
    assert card.transmit(bytes.fromhex("A0A4000000")) == b"\x6e\x00"
