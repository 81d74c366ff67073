import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.emv.dol import build_dol, parse_dol
from devices.emv.errors import DolError, EmvError
from devices.emv.tlv import encode_length, tag_bytes

# CDOL1 of the PBOC debit application: the fields that feed the ARQC, then transaction time
CDOL1 = bytes.fromhex("9F02069F03069F1A0295055F2A029A039C019F37049F2103")


def test_parse_cdol1_lists_tags_and_lengths_in_card_order():
    assert parse_dol(CDOL1) == [
        (0x9F02, 6),
        (0x9F03, 6),
        (0x9F1A, 2),
        (0x95, 5),
        (0x5F2A, 2),
        (0x9A, 3),
        (0x9C, 1),
        (0x9F37, 4),
        (0x9F21, 3),
    ]


def test_build_cdol1_with_exact_values_concatenates_them():
    values = {
        0x9F02: bytes.fromhex("000000000100"),
        0x9F03: bytes(6),
        0x9F1A: bytes.fromhex("0156"),
        0x95: bytes.fromhex("0080046000"),
        0x5F2A: bytes.fromhex("0156"),
        0x9A: bytes.fromhex("140701"),
        0x9C: bytes.fromhex("00"),
        0x9F37: bytes.fromhex("1E78EEBC"),
        0x9F21: bytes.fromhex("101530"),
    }
    assert build_dol(parse_dol(CDOL1), values) == b"".join(values.values())


def test_missing_tag_is_sent_as_zeros():
    assert build_dol([(0x9F37, 4), (0xDF99, 2)], {0x9F37: b"\x01\x02\x03\x04"}) == bytes.fromhex(
        "010203040000"
    )


def test_numeric_value_is_left_padded_and_left_truncated():
    assert build_dol([(0x9F02, 6)], {0x9F02: bytes.fromhex("0100")}) == bytes.fromhex(
        "000000000100"
    )
    assert build_dol([(0x9F02, 4)], {0x9F02: bytes.fromhex("000000000100")}) == bytes.fromhex(
        "00000100"
    )


def test_binary_value_is_right_padded_and_right_truncated():
    assert build_dol([(0x9F37, 6)], {0x9F37: bytes.fromhex("1E78EEBC")}) == bytes.fromhex(
        "1E78EEBC0000"
    )
    assert build_dol([(0x9F37, 2)], {0x9F37: bytes.fromhex("1E78EEBC")}) == bytes.fromhex("1E78")


def test_compressed_numeric_pan_is_padded_with_ff():
    pan = bytes.fromhex("6228000100001F")
    assert build_dol([(0x5A, 8)], {0x5A: pan}) == pan + b"\xff"


def test_template_tag_is_sent_as_zeros_even_when_known():
    assert build_dol([(0x70, 3)], {0x70: b"\x5a\x01\x12"}) == bytes(3)


@pytest.mark.parametrize("dol", ["9F", "9F02", "9F0281", "0001", "9F0280"])
def test_malformed_dol_raises_dol_error(dol):
    with pytest.raises(DolError):
        parse_dol(bytes.fromhex(dol))


dol_tags = st.sampled_from([0x9F02, 0x9F03, 0x9F1A, 0x95, 0x5F2A, 0x9A, 0x9C, 0x9F37, 0x5A, 0x70])
dols = st.lists(st.tuples(dol_tags, st.integers(0, 300)), max_size=10)


@given(dols)
def test_parse_reads_back_what_was_written(dol):
    data = b"".join(tag_bytes(tag) + encode_length(length) for tag, length in dol)
    assert parse_dol(data) == dol


@given(dols, st.dictionaries(dol_tags, st.binary(max_size=20)))
def test_built_data_has_exactly_the_lengths_asked_for(dol, values):
    assert len(build_dol(dol, values)) == sum(length for _, length in dol)


@given(st.binary(max_size=100), st.dictionaries(dol_tags, st.binary(max_size=8)))
def test_random_bytes_raise_nothing_but_emv_errors(data, values):
    with contextlib.suppress(EmvError):
        build_dol(parse_dol(data), values)
