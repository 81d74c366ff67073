import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.emv.errors import PinBlockError
from devices.emv.pinblock import (
    decipher_pinblock_iso4,
    decode_pinblock_iso0,
    encipher_pinblock_iso4,
    encode_pinblock_iso0,
)

KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
PAN = "6231700000007515"


def test_format0_vectors(vectors):
    for case in vectors["iso9564_pin_blocks"]["format0_clear"]:
        block = encode_pinblock_iso0(case["pin"], case["pan"])
        assert block.hex().upper() == case["block"]
        assert decode_pinblock_iso0(block, case["pan"]) == case["pin"]


def test_format4_vectors(vectors):
    for case in vectors["iso9564_pin_blocks"]["format4_encrypted"]:
        key, fill = bytes.fromhex(case["key"]), bytes.fromhex(case["random_fill"])
        block = encipher_pinblock_iso4(key, case["pin"], case["pan"], random_fill=fill)
        assert block.hex().upper() == case["block"]
        assert decipher_pinblock_iso4(key, block, case["pan"]) == case["pin"]


def test_format4_blocks_differ_each_time_but_decipher_alike():
    first, second = (encipher_pinblock_iso4(KEY, "123456", PAN) for _ in range(2))
    assert first != second
    assert decipher_pinblock_iso4(KEY, first, PAN) == decipher_pinblock_iso4(KEY, second, PAN)


def test_format4_block_is_bound_to_its_pan():
    block = encipher_pinblock_iso4(KEY, "123456", PAN, random_fill=bytes(8))
    with pytest.raises(PinBlockError):
        decipher_pinblock_iso4(KEY, block, "6231700000007516")


pins = st.text("0123456789", min_size=4, max_size=12)


@given(pins, st.text("0123456789", min_size=13, max_size=19))
def test_format0_round_trip(pin, pan):
    assert decode_pinblock_iso0(encode_pinblock_iso0(pin, pan), pan) == pin


@given(pins, st.text("0123456789", min_size=1, max_size=19), st.binary(min_size=8, max_size=8))
def test_format4_round_trip(pin, pan, fill):
    block = encipher_pinblock_iso4(KEY, pin, pan, random_fill=fill)
    assert decipher_pinblock_iso4(KEY, block, pan) == pin


@pytest.mark.parametrize("pin", ["123", "1234567890123", "12a4", "١٢٣٤", ""])
def test_bad_pins_are_refused_without_echoing_them(pin):
    for encode in (
        lambda: encode_pinblock_iso0(pin, PAN),
        lambda: encipher_pinblock_iso4(KEY, pin, PAN),
    ):
        with pytest.raises(PinBlockError) as raised:
            encode()
        assert not pin or pin not in str(raised.value)


@pytest.mark.parametrize("pan", ["623170000000", "62317000000075151234", "6231-7000-0000-75", ""])
def test_bad_pans_are_refused(pan):
    with pytest.raises(PinBlockError) as raised:
        encode_pinblock_iso0("1234", pan)
    assert not pan or pan not in str(raised.value)


def test_malformed_blocks_are_refused():
    with pytest.raises(PinBlockError):
        decode_pinblock_iso0(bytes(7), PAN)
    with pytest.raises(PinBlockError):
        decode_pinblock_iso0(bytes.fromhex("1412FFFFFFFFFFFF"), PAN)  # format code 1
    with pytest.raises(PinBlockError):
        decipher_pinblock_iso4(KEY, bytes(15), PAN)
    with pytest.raises(PinBlockError):
        decipher_pinblock_iso4(KEY, bytes(16), PAN)  # deciphers to noise
    with pytest.raises(PinBlockError):
        decipher_pinblock_iso4(bytes(10), bytes(16), PAN)
