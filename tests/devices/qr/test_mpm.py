import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.qr.errors import CrcError, PayloadError, QrError
from devices.qr.mpm import (
    TEMPLATE_IDS,
    MpmField,
    crc16_ccitt_false,
    decode_mpm,
    encode_mpm,
    field,
    subfield,
    template,
)

INDICATOR = MpmField("00", "01")


def with_crc(body: str) -> str:
    """Close a hand-made body with a correct CRC, so only the rule under test is broken."""
    body += "6304"
    return f"{body}{crc16_ccitt_false(body.encode('utf-8')):04X}"


# --- known answers -------------------------------------------------------------------------


def test_crc_check_value_of_123456789(mpm_vectors):
    assert crc16_ccitt_false(b"123456789") == int(mpm_vectors["crc_check_123456789"], 16)


def test_sample_crc_is_the_published_one(mpm_vectors):
    sample = mpm_vectors["sample"]
    assert sample.endswith("6304" + mpm_vectors["sample_crc"])
    assert crc16_ccitt_false(sample[:-4].encode("utf-8")) == int(mpm_vectors["sample_crc"], 16)


def test_sample_decodes_into_its_objects(mpm_vectors):
    fields = decode_mpm(mpm_vectors["sample"])
    assert fields[0] == INDICATOR
    assert field(fields, "01") == "12"
    assert field(fields, "54") == "23.72"
    assert field(fields, "53") == "156"
    assert field(fields, "59") == "BEST TRANSPORT"
    assert subfield(fields, "29", "00") == "D15600000000"
    assert subfield(fields, "62", "07") == "A6008667"
    assert subfield(fields, "91", "00") == "A011223344998877"
    assert all(item.id != "63" for item in fields)


def test_lengths_count_characters_not_bytes(mpm_vectors):
    fields = decode_mpm(mpm_vectors["sample"])
    # "最佳运输" is 4 characters but 12 UTF-8 bytes; its length field says 04.
    assert subfield(fields, "64", "01") == "最佳运输"
    assert subfield(fields, "64", "02") == "北京"


def test_sample_reencodes_to_the_same_text(mpm_vectors):
    sample = mpm_vectors["sample"]
    assert encode_mpm(decode_mpm(sample)) == sample


# --- refusals ------------------------------------------------------------------------------


def test_wrong_crc_is_a_crc_error(mpm_vectors):
    tampered = mpm_vectors["sample"].replace("540523.72", "540523.79")
    with pytest.raises(CrcError) as caught:
        decode_mpm(tampered)
    assert caught.value.code == "qr_crc_mismatch"


def test_lower_case_crc_is_refused(mpm_vectors):
    with pytest.raises(PayloadError):
        decode_mpm(mpm_vectors["sample"][:-4] + "a13a")


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("52044111", "format indicator missing"),
        ("000202", "format indicator is not 01"),
        ("5204411100020", "format indicator not first"),
        ("00020100020152044111", "object 00 twice"),
        ("0002015200", "empty value"),
        ("0002015299", "value runs past the CRC"),
        ("0002015A044111", "id is not digits"),
        ("000201520٤4111", "length uses non-ASCII digits"),
        ("0002012904ABCD", "template holds no sub-objects"),
        ("000201620503***0503***", "template sub-object twice"),
    ],
)
def test_malformed_payload_is_refused(body, why):
    with pytest.raises(PayloadError):
        decode_mpm(with_crc(body))


def test_crc_must_be_the_last_object():
    payload = with_crc("000201") + "52044111"
    with pytest.raises(PayloadError):
        decode_mpm(payload)


def test_payload_without_crc_is_refused():
    with pytest.raises(PayloadError):
        decode_mpm("00020152044111")


def test_truncated_payload_is_refused(mpm_vectors):
    sample = mpm_vectors["sample"]
    for cut in (1, 5, 60, len(sample) - 1):
        with pytest.raises(PayloadError):
            decode_mpm(sample[:cut])


def test_crc_error_message_does_not_quote_the_payload(mpm_vectors):
    with pytest.raises(CrcError) as caught:
        decode_mpm(mpm_vectors["sample"][:-1] + "B")
    assert "BEST TRANSPORT" not in str(caught.value)


@pytest.mark.parametrize(
    "fields",
    [
        [],
        [MpmField("52", "4111")],
        [INDICATOR, MpmField("63", "ABCD")],
        [INDICATOR, MpmField("52", "4111"), MpmField("52", "5812")],
        [INDICATOR, MpmField("52", "")],
        [INDICATOR, MpmField("59", "x" * 100)],
        [INDICATOR, MpmField("5", "x")],
        [INDICATOR, MpmField("62", "0503***")],
        [INDICATOR, MpmField("52", (MpmField("00", "x"),))],
        [INDICATOR, MpmField("62", (MpmField("50", (MpmField("00", "x"),)),))],
        [INDICATOR, MpmField("62", ())],
        [INDICATOR, MpmField("59", "\ud800")],
    ],
)
def test_encoder_refuses_what_the_decoder_would_refuse(fields):
    with pytest.raises(PayloadError):
        encode_mpm(fields)


def test_lookups_tell_templates_from_values(mpm_vectors):
    fields = decode_mpm(mpm_vectors["sample"])
    assert field(fields, "56") is None
    assert subfield(fields, "26", "00") is None
    assert subfield(fields, "62", "01") is None
    assert template(fields, "62") is not None
    with pytest.raises(PayloadError):
        field(fields, "62")
    with pytest.raises(PayloadError):
        template(fields, "54")


# --- properties ----------------------------------------------------------------------------

_values = st.text(min_size=1, max_size=99)
_sub_ids = st.integers(0, 99).map(lambda n: f"{n:02d}")
# Four sub-objects of at most 20 characters always fit a template's 99 characters.
_subfields = st.lists(
    st.tuples(_sub_ids, st.text(min_size=1, max_size=20)),
    min_size=1,
    max_size=4,
    unique_by=lambda pair: pair[0],
)
_root_ids = st.integers(1, 99).map(lambda n: f"{n:02d}").filter(lambda i: i != "63")


@st.composite
def _payload_fields(draw: st.DrawFn) -> list[MpmField]:
    ids = draw(st.lists(_root_ids, max_size=8, unique=True))
    fields = [INDICATOR]
    for object_id in ids:
        if object_id in TEMPLATE_IDS:
            subs = draw(_subfields)
            fields.append(MpmField(object_id, tuple(MpmField(i, v) for i, v in subs)))
        else:
            fields.append(MpmField(object_id, draw(_values)))
    return fields


@given(_payload_fields())
def test_encoded_payloads_decode_to_the_same_fields(fields):
    assert decode_mpm(encode_mpm(fields)) == fields


@given(_payload_fields(), st.data())
def test_any_single_ascii_change_is_caught(fields, data):
    payload = encode_mpm(fields)
    positions = [i for i, char in enumerate(payload[:-4]) if char.isascii()]
    position = data.draw(st.sampled_from(positions))
    replacement = data.draw(
        st.characters(min_codepoint=32, max_codepoint=126).filter(lambda c: c != payload[position])
    )
    tampered = payload[:position] + replacement + payload[position + 1 :]
    # An 8-bit change is a burst CRC-16 always detects, unless the structure already breaks.
    with pytest.raises(PayloadError):
        decode_mpm(tampered)


@given(st.text(max_size=300))
def test_random_text_raises_only_qr_errors(text):
    with contextlib.suppress(QrError):
        decode_mpm(text)


@given(st.text(alphabet="0123456789ABCDEF", max_size=120))
def test_random_digit_runs_raise_only_qr_errors(text):
    with contextlib.suppress(QrError):
        decode_mpm(with_crc("000201" + text))
