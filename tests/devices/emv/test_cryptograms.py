import pytest

from devices.emv.crypto import (
    arpc_method1,
    arqc_input,
    derive_icc_master_key,
    emv_common_session_key,
    generate_arqc,
    key_check_value,
    option_a_y,
    pboc_session_key,
    retail_mac,
)
from devices.emv.errors import CryptoInputError


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def odd_parity(key: bytes) -> bytes:
    return bytes(b ^ (1 - bin(b).count("1") % 2) for b in key)


@pytest.fixture
def common(vectors):
    return vectors["emv_common_session_key"]


@pytest.fixture
def pboc(vectors):
    return vectors["pboc_arqc"]


# EMV common session key derivation (pyemv vectors)


def test_issuer_master_key_check_value(common):
    assert key_check_value(h(common["issuer_master_key"])) == common["issuer_master_key_kcv"]


def test_icc_master_key_option_a(common):
    icc_mk = derive_icc_master_key(h(common["issuer_master_key"]), common["pan"], common["psn"])
    assert key_check_value(icc_mk) == common["icc_master_key_kcv"]
    assert icc_mk == odd_parity(icc_mk)


def _common_session_key(common) -> bytes:
    icc_mk = derive_icc_master_key(h(common["issuer_master_key"]), common["pan"], common["psn"])
    return emv_common_session_key(icc_mk, h(common["session_key_r"]))


def test_common_session_key(common):
    assert key_check_value(_common_session_key(common)) == common["session_key_kcv"]


def test_arqc_with_padding_method_2(common):
    arqc = generate_arqc(_common_session_key(common), h(common["mac_data"]))
    assert arqc.hex().upper() == common["arqc_iso9797_m2_padding"]


def test_retail_mac_with_padding_method_1(common):
    case = common["arqc_data_with_trailing_01_zero_padding"]
    mac = retail_mac(_common_session_key(common), h(case["mac_data"]), padding=1)
    assert mac.hex().upper() == case["arqc"]


def test_arpc_method1_under_icc_master_key(common):
    icc_mk = derive_icc_master_key(h(common["issuer_master_key"]), common["pan"], common["psn"])
    arpc = arpc_method1(icc_mk, h(common["arqc_iso9797_m2_padding"]), h("0000"))
    assert arpc.hex().upper() == common["arpc_method1_with_icc_master_key_arc_0000"]


# PBOC worked example


def test_option_a_y_pads_short_pan_psn(pboc):
    assert option_a_y(pboc["pan"], pboc["psn"]).hex().upper() == pboc["option_a_y"]


def test_pboc_icc_master_key_equals_example_up_to_parity(pboc):
    # the worked example prints the key before parity is set; DES ignores parity bits
    icc_mk = derive_icc_master_key(h(pboc["issuer_master_key_ac"]), pboc["pan"], pboc["psn"])
    assert icc_mk == odd_parity(h(pboc["icc_master_key"]))
    assert key_check_value(icc_mk) == key_check_value(h(pboc["icc_master_key"]))


def test_pboc_session_key(pboc):
    session_key = pboc_session_key(h(pboc["icc_master_key"]), h(pboc["atc"]))
    assert session_key.hex().upper() == pboc["session_key"]


def _fields_of(mac_input: bytes) -> tuple[dict[int, bytes], bytes]:
    """Split the example's MAC input back into card fields and a PBOC 9F10 around its CVR."""
    sizes = [(0x9F02, 6), (0x9F03, 6), (0x9F1A, 2), (0x95, 5), (0x5F2A, 2), (0x9A, 3), (0x9C, 1)]
    sizes += [(0x9F37, 4), (0x82, 2), (0x9F36, 2)]
    fields, offset = {}, 0
    for tag, size in sizes:
        fields[tag] = mac_input[offset : offset + size]
        offset += size
    iad = h("0701") + b"\x01" + mac_input[offset:] + h("0000000000")  # len, DKI, CVN, CVR, ...
    return fields, iad


def test_arqc_input_follows_pboc_order(pboc):
    assert pboc["mac_input_order"][-1] == "CVR from 9F10"
    fields, iad = _fields_of(h(pboc["mac_input"]))
    reordered = dict(reversed(fields.items()))  # order comes from the rule, not the mapping
    assert arqc_input(reordered, iad).hex().upper() == pboc["mac_input"]
    assert iad[3:7] == h("03A04002")


def test_pboc_arqc_and_arpc(pboc):
    session_key = h(pboc["session_key"])
    arqc = generate_arqc(session_key, h(pboc["mac_input"]))
    assert arqc.hex().upper() == pboc["arqc"]
    assert arpc_method1(session_key, arqc, h(pboc["arc"])).hex().upper() == pboc["arpc_method1"]


def test_pboc_worked_example_end_to_end():
    """Issuer master key to ARPC, as the issuer does when a card taps."""
    icc_mk = derive_icc_master_key(h("F0C34A8124CEE0A91A0B034AA97D6EAC"), "6228000100001", "01")
    session_key = pboc_session_key(icc_mk, h("0240"))
    fields = {
        0x9F02: h("000000000001"),
        0x9F03: h("000000000000"),
        0x9F1A: h("0156"),
        0x95: h("0080046000"),
        0x5F2A: h("0156"),
        0x9A: h("140701"),
        0x9C: h("00"),
        0x9F37: h("1E78EEBC"),
        0x82: h("7D00"),
        0x9F36: h("0240"),
    }
    arqc = generate_arqc(session_key, arqc_input(fields, h("07010103A04002")))
    assert arqc == h("5D016C91005E7CC2")
    assert arpc_method1(session_key, arqc, b"01") == h("21415243527CE78F")  # ARC '01' = 3031


# input shapes


def test_retail_mac_padding_methods_differ_and_method_1_adds_nothing_when_aligned():
    key = h("0123456789ABCDEFFEDCBA9876543210")
    block = h("0123456789ABCDEF")
    assert retail_mac(key, block, padding=1) == retail_mac(key, block + b"", padding=1)
    assert retail_mac(key, block, padding=1) != retail_mac(key, block, padding=2)
    assert retail_mac(key, b"", padding=1) == retail_mac(key, bytes(8), padding=1)
    with pytest.raises(CryptoInputError):
        retail_mac(key, block, padding=3)


@pytest.mark.parametrize("key", [bytes(8), bytes(15), bytes(24)])
def test_keys_must_be_double_length(key):
    with pytest.raises(CryptoInputError) as raised:
        key_check_value(key)
    assert key.hex() not in str(raised.value)


def test_wrong_shapes_are_refused():
    key = h("0123456789ABCDEFFEDCBA9876543210")
    with pytest.raises(CryptoInputError):
        pboc_session_key(key, h("024000"))
    with pytest.raises(CryptoInputError):
        emv_common_session_key(key, h("1234"))
    with pytest.raises(CryptoInputError):
        arpc_method1(key, bytes(8), h("303132"))
    with pytest.raises(CryptoInputError):
        derive_icc_master_key(key, "6228 0001", "01")


def test_arqc_input_refuses_missing_fields_and_foreign_iad():
    fields = {tag: bytes(size) for tag, size in [(0x9F02, 6), (0x9F03, 6), (0x9F1A, 2)]}
    with pytest.raises(CryptoInputError, match="95"):
        arqc_input(fields, h("07010103A04002"))
    full = {
        **fields,
        0x95: bytes(5),
        0x5F2A: bytes(2),
        0x9A: bytes(3),
        0x9C: bytes(1),
        0x9F37: bytes(4),
        0x82: bytes(2),
        0x9F36: bytes(2),
    }
    with pytest.raises(CryptoInputError):
        arqc_input(full, h("0701010A"))  # CVR cut short
    with pytest.raises(CryptoInputError):
        arqc_input({**full, 0x9F02: bytes(5)}, h("07010103A04002"))
