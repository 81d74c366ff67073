"""The reader driver against the real stack: pyscard -> pcscd -> vpcd -> the virtual card."""

from datetime import UTC, date, datetime

import pytest

from devices.emv.crypto import (
    arpc_method1,
    arqc_input,
    derive_icc_master_key,
    generate_arqc,
    pboc_session_key,
)
from devices.emv.tlv import decode, flatten
from devices.pcsc.debit import complete
from devices.pcsc.errors import CardBlocked, CardRemoved, NoCard, NoReader
from devices.pcsc.models import CardRead, TerminalData
from devices.pcsc.reader import (
    card_present,
    connect,
    list_readers,
    wait_for_card,
    wait_for_removal,
)
from devices.pcsc.tap import read_card
from tests.devices.emulators.sscard.virtual_card import TEST_IMK, TEST_PAN, make_profile

pytestmark = pytest.mark.pcsc

TERMINAL = TerminalData(
    amount=12_345,
    when=datetime(2026, 11, 29, 8, 30, tzinfo=UTC),
    unpredictable_number=bytes.fromhex("1E78EEBC"),
    merchant_name="COUNTY HOSPITAL",
)


def tap(timeout: float = 5) -> tuple[CardRead, object]:
    channel = wait_for_card(timeout=timeout)
    return read_card(channel, TERMINAL), channel


def session_key(atc: int) -> bytes:
    card_key = derive_icc_master_key(TEST_IMK, TEST_PAN, "01")
    return pboc_session_key(card_key, atc.to_bytes(2, "big"))


def test_both_virtual_readers_are_listed(pcsc_stack):
    assert {"Virtual PCD 00 00", "Virtual PCD 00 01"} <= set(list_readers())


def test_waiting_without_a_card_times_out(pcsc_stack):
    with pytest.raises(NoCard):
        wait_for_card(timeout=0.2)


def test_an_unknown_reader_is_refused(pcsc_stack):
    with pytest.raises(NoReader):
        connect("Reader that is not there")


def test_a_tap_reads_both_applications_and_a_verifiable_arqc(insert_card):
    insert_card(make_profile(atc=6))
    read, _ = tap()
    ss = read.social_security
    assert (ss.card_number, ss.holder_name, ss.card_type) == ("K10000001", "张秀英", "3")
    assert ss.expiry_date == date(2034, 1, 5) and ss.birth_date == date(1958, 3, 12)
    assert read.debit.pan == TEST_PAN and read.debit.psn == "01"
    assert read.debit.expiry == date(2034, 1, 31)
    assert read.arqc.kind == "ARQC" and read.arqc.atc == 7
    icc = flatten(decode(read.arqc.icc_data()))
    expected = generate_arqc(session_key(7), arqc_input(icc, icc[0x9F10]))
    assert icc[0x9F26] == expected and icc[0x9F02] == bytes.fromhex("000000012345")


def test_the_issuers_approval_ends_in_a_tc(insert_card):
    insert_card(make_profile())
    read, channel = tap()
    arpc = arpc_method1(session_key(read.arqc.atc), read.arqc.cryptogram, b"00")
    done = complete(channel, read.debit, TERMINAL, b"00", arpc)
    assert done.issuer_authenticated and done.approved_by_card


def test_a_forged_issuer_answer_ends_in_an_aac(insert_card):
    insert_card(make_profile())
    read, channel = tap()
    done = complete(channel, read.debit, TERMINAL, b"00", bytes(8))
    assert not done.issuer_authenticated and done.cryptogram.kind == "AAC"


def test_t0_get_response_and_wrong_le_cards_read_the_same(insert_card):
    insert_card(make_profile(t0_get_response=True, strict_le=True))
    read, channel = tap()
    assert read.debit.pan == TEST_PAN and read.arqc.kind == "ARQC"
    assert channel.apdus > 40  # every case-4 answer took a GET RESPONSE, every record a retry


def test_a_card_pulled_mid_read_is_reported_as_removed(insert_card):
    insert_card(make_profile(pull_after_apdus=10))
    with pytest.raises(CardRemoved):
        tap()


def test_a_blocked_card_is_reported_before_any_cryptogram(insert_card):
    card, _ = insert_card(make_profile(blocked=True))
    with pytest.raises(CardBlocked):
        tap()
    assert card.profile.atc == 0


def test_a_card_in_the_second_reader_is_found_and_each_reader_reads_its_own(insert_card):
    insert_card(make_profile(card_number="K10000002"), reader=1)
    read, _ = tap()
    assert read.reader == "Virtual PCD 00 01"
    assert read.social_security.card_number == "K10000002"
    insert_card(make_profile(), reader=0)
    first = read_card(wait_for_card(["Virtual PCD 00 00"], timeout=5), TERMINAL)
    assert first.social_security.card_number == "K10000001"


def test_removal_is_seen_and_an_empty_reader_has_no_card(insert_card):
    _, link = insert_card(make_profile())
    channel = wait_for_card(timeout=5)
    assert card_present(channel.reader)
    channel.close()
    link.remove()
    assert wait_for_removal(channel.reader, timeout=3)
    with pytest.raises(NoCard):
        connect(channel.reader)


def test_reprs_never_show_the_pan_or_id_number(insert_card):
    insert_card(make_profile())
    read, _ = tap()
    text = repr(read)
    assert TEST_PAN not in text and read.social_security.id_number not in text
    assert read.debit.pan_masked in text
