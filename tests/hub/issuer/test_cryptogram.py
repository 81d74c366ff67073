"""ARQC verification and ARPC against the PBOC worked example; the ATC window; chip data."""

import json
from pathlib import Path

import pytest

from devices.emv.tlv import Tlv, decode, encode
from hub.issuer.cryptogram import (
    arpc,
    atc_refusal,
    parse_icc_data,
    response_code,
    session_key_if_valid,
)
from hub.issuer.errors import IccDataInvalid

VECTORS = Path(__file__).parents[3].parent / "shared" / "data" / "vectors.json"
PBOC = json.loads(VECTORS.read_text(encoding="utf-8"))["pboc_arqc"]
IMK = bytes.fromhex(PBOC["issuer_master_key_ac"])
FIELDS = [(0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3)]
FIELDS += [(0x9C, 1), (0x9F37, 4), (0x82, 2), (0x9F36, 2)]


def chip_data(**changes: bytes) -> bytes:
    """The worked example's MAC input spelt as the chip data a terminal sends."""
    mac_input = bytes.fromhex(PBOC["mac_input"])
    values, offset = {}, 0
    for tag, size in FIELDS:
        values[tag] = mac_input[offset : offset + size]
        offset += size
    values[0x9F10] = bytes([0x07, 0x01, 0x01]) + mac_input[offset:] + b"\x00"
    values[0x9F26] = bytes.fromhex(PBOC["arqc"])
    values[0x9F27] = b"\x80"
    data = encode([Tlv(tag, value) for tag, value in values.items()])
    return encode([Tlv(t.tag, changes.get(f"t{t.tag:X}", t.value)) for t in decode(data)])


def test_the_worked_examples_arqc_verifies_and_gives_its_session_key():
    icc = parse_icc_data(chip_data())
    assert (icc.atc, icc.amount, icc.currency, icc.key_version) == (0x0240, 1, "0156", 1)
    key = session_key_if_valid(IMK, PBOC["pan"], PBOC["psn"], icc)
    assert key == bytes.fromhex(PBOC["session_key"])


def test_the_arpc_matches_the_worked_example():
    key = bytes.fromhex(PBOC["session_key"])
    code = bytes.fromhex(PBOC["arc"]).decode()
    assert arpc(key, bytes.fromhex(PBOC["arqc"]), code) == bytes.fromhex(PBOC["arpc_method1"])


@pytest.mark.parametrize(
    "change",
    [
        {"t9F26": bytes(8)},
        {"t9F02": bytes.fromhex("000000000002")},
        {"t9F37": bytes.fromhex("00000001")},
        {"t9F36": bytes.fromhex("0241")},
    ],
)
def test_any_changed_field_fails_verification(change):
    tampered = parse_icc_data(chip_data(**change))
    assert session_key_if_valid(IMK, PBOC["pan"], PBOC["psn"], tampered) is None


def test_another_card_or_master_key_fails_verification():
    icc = parse_icc_data(chip_data())
    assert session_key_if_valid(IMK, "6228000100002", PBOC["psn"], icc) is None
    assert session_key_if_valid(IMK, PBOC["pan"], "02", icc) is None
    assert session_key_if_valid(bytes(16), PBOC["pan"], PBOC["psn"], icc) is None


@pytest.mark.parametrize(
    ("last", "atc", "refusal"),
    [
        (None, 1, None),
        (None, 1000, None),
        (None, 1001, "atc_out_of_window"),
        (7, 8, None),
        (7, 7, "atc_replayed"),
        (7, 3, "atc_replayed"),
        (7, 1007, None),
        (7, 1008, "atc_out_of_window"),
    ],
)
def test_the_atc_window(last, atc, refusal):
    assert atc_refusal(last, atc, window=1000) == refusal


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x9f\x26", "BER-TLV"),
        (encode([Tlv(0x9F26, bytes(8))]), "lacks tag 9F27"),
        (chip_data(t9F26=bytes(7)), "9F26 must be 8 bytes"),
        (chip_data(t9F27=b"\x40"), "not an ARQC"),
        (chip_data(t9F10=bytes.fromhex("0701010200")), "PBOC layout"),
        (chip_data(t9F02=bytes.fromhex("00000000001A")), "BCD"),
    ],
)
def test_malformed_chip_data_is_refused_by_name(raw, message):
    with pytest.raises(IccDataInvalid, match=message):
        parse_icc_data(raw)


def test_response_codes():
    assert response_code(None) == "00"
    assert response_code("insufficient_funds") == "51"
    assert response_code("pin_tries_exceeded") == "75"
    assert response_code("something_new") == "05"
