import base64
import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.emv import tlv
from devices.emv.tlv import Tlv
from devices.qr.cpm import ConsumerPayload, decode_cpm, encode_cpm
from devices.qr.errors import PayloadError, QrError

INDICATOR = Tlv(0x85, b"CPV01")
AID = Tlv(0x4F, bytes.fromhex("A0000003330101"))
PAN = bytes.fromhex("6231700000007515")


def b64(items: list[Tlv]) -> str:
    return base64.b64encode(tlv.encode(items)).decode("ascii")


def application(*children: Tlv) -> Tlv:
    return Tlv(0x61, tlv.encode(children))


# --- known answers -------------------------------------------------------------------------


def test_sample_has_two_applications_and_the_pan_in_common_data(cpm_vectors):
    payload = decode_cpm(cpm_vectors["emvco_sample"])
    aids = [tlv.find(app, 0x4F) for app in payload.applications]
    assert [aid.value.hex().upper() for aid in aids if aid] == ["A0000000555555", "A0000000666666"]
    labels = [tlv.find(app, 0x50) for app in payload.applications]
    assert [label.value for label in labels if label] == [b"Product1", b"Product2"]
    pan = tlv.find(payload.common, 0x5A)
    assert pan is not None and pan.value.hex() == "1234567890123458"
    name = tlv.find(payload.common, 0x5F20)
    assert name is not None and name.value == b"CARDHOLDER/EMV"


def test_sample_keeps_cryptogram_data_in_the_transparent_template(cpm_vectors):
    payload = decode_cpm(cpm_vectors["emvco_sample"])
    transparent = tlv.find(payload.common, 0x64)
    assert transparent is not None
    assert [child.tag for child in transparent.children] == [0x9F10, 0x9F26, 0x9F36, 0x9F37]
    atc = tlv.find(payload.common, 0x9F36)
    assert atc is not None and atc.value == b"\x00\x01"


def test_sample_reencodes_to_the_same_text(cpm_vectors):
    sample = cpm_vectors["emvco_sample"]
    assert encode_cpm(decode_cpm(sample)) == sample


def test_repr_never_shows_the_pan(cpm_vectors):
    payload = decode_cpm(cpm_vectors["emvco_sample"])
    assert "1234567890123458" not in repr(payload)
    assert "5A" in repr(payload)


# --- refusals ------------------------------------------------------------------------------


def test_truncated_base64_is_refused(cpm_vectors):
    sample = cpm_vectors["emvco_sample"]
    for cut in (1, 2, 3, 4, 8, 40):
        with pytest.raises(PayloadError) as caught:
            decode_cpm(sample[:-cut])
        assert caught.value.code == "qr_payload_invalid"


@pytest.mark.parametrize(
    ("items", "why"),
    [
        ([Tlv(0x85, b"CPV02"), application(AID)], "wrong format indicator"),
        ([application(AID)], "format indicator missing"),
        ([application(AID), INDICATOR], "format indicator not first"),
        ([INDICATOR], "no application template"),
        ([INDICATOR, Tlv(0x62, tlv.encode([Tlv(0x5A, PAN)]))], "common data only"),
        ([INDICATOR, application(Tlv(0x50, b"DEBIT"))], "application without AID"),
        ([INDICATOR, application(AID), Tlv(0x9F26, bytes(8))], "unknown top-level tag"),
        ([INDICATOR, application(AID), Tlv(0x64, b"")], "64 outside the common template"),
        ([INDICATOR, application(AID), Tlv(0x62, b""), Tlv(0x62, b"")], "62 twice"),
        ([INDICATOR, Tlv(0x62, b""), application(AID)], "61 after 62"),
        ([INDICATOR, application(AID, Tlv(0x63, b"\x9f\x26\x08"))], "broken inner template"),
    ],
)
def test_malformed_payload_is_refused(items, why):
    with pytest.raises(PayloadError):
        decode_cpm(b64(items))


def test_deeply_nested_templates_are_refused_without_recursing():
    inner = Tlv(0x9F26, bytes(8))
    for _ in range(2000):
        inner = Tlv(0x63, tlv.encode([inner]))
    with pytest.raises(PayloadError):
        decode_cpm(b64([INDICATOR, application(AID, inner)]))


GOOD = b64([INDICATOR, application(AID, Tlv(0x50, b"DEBIT"))])


@pytest.mark.parametrize(
    "text",
    [
        GOOD.rstrip("="),
        GOOD + "\n",
        " " + GOOD,
        GOOD[:8] + "!" + GOOD[9:],
        GOOD[:8] + "×" + GOOD[9:],
        GOOD[:-3] + "B==",  # unused low bits set: same bytes, another text
    ],
)
def test_text_that_is_not_strict_base64_is_refused(text):
    assert GOOD.endswith("VA==")
    assert text != GOOD
    with pytest.raises(PayloadError):
        decode_cpm(text)


def test_non_canonical_encodings_are_refused():
    good = b64([INDICATOR, application(AID)])
    assert decode_cpm(good).applications == ((AID,),)
    raw = base64.b64decode(good)
    long_form_length = raw[:8] + b"\x81" + raw[8:]  # 61 09 written as 61 81 09
    padded = raw + b"\x00"
    for variant in (long_form_length, padded):
        tlv.decode(variant)  # still well-formed BER-TLV
        with pytest.raises(PayloadError):
            decode_cpm(base64.b64encode(variant).decode())


def test_encoder_refuses_an_application_without_aid():
    with pytest.raises(PayloadError):
        encode_cpm(ConsumerPayload(applications=((Tlv(0x50, b"DEBIT"),),)))
    with pytest.raises(PayloadError):
        encode_cpm(ConsumerPayload(applications=()))


# --- properties ----------------------------------------------------------------------------

_PRIMITIVE_TAGS = [0x50, 0x57, 0x5A, 0x5F20, 0x5F2D, 0x9F08, 0x9F10, 0x9F19, 0x9F24]
_CRYPTOGRAM_TAGS = [0x9F10, 0x9F26, 0x9F27, 0x9F36, 0x9F37]


def _objects(tags: list[int], max_size: int) -> st.SearchStrategy[list[Tlv]]:
    # Values up to 300 bytes exercise the 81 and 82 long length forms.
    one = st.builds(Tlv, st.sampled_from(tags), st.binary(max_size=300))
    return st.lists(one, max_size=max_size)


@st.composite
def _transparent(draw: st.DrawFn, tag: int) -> list[Tlv]:
    children = draw(_objects(_CRYPTOGRAM_TAGS, 4))
    return [Tlv(tag, tlv.encode(children))] if draw(st.booleans()) else []


@st.composite
def _application(draw: st.DrawFn) -> tuple[Tlv, ...]:
    aid = Tlv(0x4F, draw(st.binary(min_size=5, max_size=16)))
    return (aid, *draw(_objects(_PRIMITIVE_TAGS, 4)), *draw(_transparent(0x63)))


@st.composite
def _payloads(draw: st.DrawFn) -> ConsumerPayload:
    applications = draw(st.lists(_application(), min_size=1, max_size=3))
    common = draw(_objects(_PRIMITIVE_TAGS, 4)) + draw(_transparent(0x64))
    return ConsumerPayload(tuple(applications), tuple(common))


@given(_payloads())
def test_encoded_payloads_decode_to_the_same_payload(payload):
    text = encode_cpm(payload)
    assert decode_cpm(text) == payload
    assert base64.b64decode(text, validate=True)  # standard alphabet with padding


@given(st.text(max_size=300))
def test_random_text_raises_only_qr_errors(text):
    with contextlib.suppress(QrError):
        decode_cpm(text)


@given(st.binary(max_size=300))
def test_random_bytes_as_base64_raise_only_qr_errors(raw):
    with contextlib.suppress(QrError):
        decode_cpm(base64.b64encode(raw).decode("ascii"))


@given(st.binary(max_size=200))
def test_random_bytes_after_the_indicator_raise_only_qr_errors(raw):
    text = base64.b64encode(tlv.encode([INDICATOR]) + raw).decode("ascii")
    with contextlib.suppress(QrError):
        decode_cpm(text)
