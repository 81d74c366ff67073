"""Request signing: a known answer, a round trip, and every field bound by the signature."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from devices.protocol.signing import (
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TERMINAL,
    HEADER_TIMESTAMP,
    SignatureError,
    canonical_message,
    check_skew,
    key_fingerprint,
    load_public_key,
    parse_signed_headers,
    public_key_text,
    sign_request,
    signed_target,
    verify_request,
    verify_signature,
)

# RFC 8032 section 7.1, test 1: the secret key and its public key.
RFC_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
KEY = Ed25519PrivateKey.from_private_bytes(RFC_SECRET)
BODY = b'{"sequence":1}'
NOW = 1_796_000_000


def _headers(**overrides):
    fields = {"timestamp": NOW, "nonce": "0123456789abcdef", **overrides}
    return sign_request(KEY, 42, "POST", "/api/terminal/heartbeat", BODY, **fields)


def test_canonical_message_is_the_documented_string():
    message = canonical_message("post", "/p?q=1", 42, NOW, "0123456789abcdef", b"")
    empty = hashlib.sha256(b"").hexdigest()
    assert message == f"SSC1\nPOST\n/p?q=1\n42\n{NOW}\n0123456789abcdef\n{empty}".encode()


def test_known_answer_for_the_rfc_8032_key():
    # Ed25519 is deterministic: the same key and request always give the same signature.
    assert public_key_text(KEY.public_key()) == base64.b64encode(RFC_PUBLIC).decode()
    signature = _headers()[HEADER_SIGNATURE]
    assert signature == base64.b64encode(KEY.sign(canonical_message(
        "POST", "/api/terminal/heartbeat", 42, NOW, "0123456789abcdef", BODY
    ))).decode()  # fmt: skip
    assert _headers()[HEADER_SIGNATURE] == signature


def test_signed_request_verifies_and_names_its_terminal():
    signed = verify_request(
        load_public_key(public_key_text(KEY.public_key())),
        _headers(),
        "POST",
        "/api/terminal/heartbeat",
        BODY,
        now=NOW + 10,
    )
    assert (signed.terminal_id, signed.timestamp, signed.nonce) == (42, NOW, "0123456789abcdef")


@pytest.mark.parametrize(
    "method,path,body,header,value",
    [
        ("GET", "/api/terminal/heartbeat", BODY, None, None),
        ("POST", "/api/terminal/events", BODY, None, None),
        ("POST", "/api/terminal/heartbeat", b'{"sequence":2}', None, None),
        ("POST", "/api/terminal/heartbeat", BODY, HEADER_TERMINAL, "43"),
        ("POST", "/api/terminal/heartbeat", BODY, HEADER_TIMESTAMP, str(NOW + 1)),
        ("POST", "/api/terminal/heartbeat", BODY, HEADER_NONCE, "0123456789abcdee"),
    ],
)
def test_every_signed_field_is_bound(method, path, body, header, value):
    headers = _headers()
    if header:
        headers[header] = value
    signed = parse_signed_headers(headers)
    assert not verify_signature(KEY.public_key(), signed, method, path, body)


def test_another_key_does_not_verify():
    signed = parse_signed_headers(_headers())
    other = Ed25519PrivateKey.generate().public_key()
    assert not verify_signature(other, signed, "POST", "/api/terminal/heartbeat", BODY)
    with pytest.raises(SignatureError) as refused:
        verify_request(other, _headers(), "POST", "/api/terminal/heartbeat", BODY, now=NOW)
    assert refused.value.code == "signature_invalid"


def test_the_signed_target_is_the_ascii_target_with_its_percent_encoding_kept():
    assert signed_target(b"/api/terminal/bills/MZ%20000%3F1", b"a=%2F") == (
        "/api/terminal/bills/MZ%20000%3F1?a=%2F"
    )


@pytest.mark.parametrize("raw", [b"/bills/\xff", b"/bills/\xfe", b"/bills/\xc3\xa4"])
def test_a_target_that_is_not_ascii_is_refused_as_malformed(raw):
    """Decoded with replacement, the bytes FF and FE both read as U+FFFD: one signature would
    have served two different targets."""
    for path, query in ((raw, b""), (b"/bills", raw[1:])):
        with pytest.raises(SignatureError) as refused:
            signed_target(path, query)
        assert refused.value.code == "signature_malformed"


def test_header_names_are_case_insensitive():
    lowered = {k.lower(): v for k, v in _headers().items()}
    assert parse_signed_headers(lowered).terminal_id == 42


@pytest.mark.parametrize(
    "header,value,code",
    [
        (HEADER_SIGNATURE, None, "signature_missing"),
        (HEADER_TERMINAL, "0", "signature_malformed"),
        (HEADER_TERMINAL, "-1", "signature_malformed"),
        (HEADER_TIMESTAMP, "yesterday", "signature_malformed"),
        (HEADER_NONCE, "short", "signature_malformed"),
        (HEADER_NONCE, "x" * 65, "signature_malformed"),
        (HEADER_SIGNATURE, base64.b64encode(b"x" * 63).decode(), "signature_malformed"),
        (HEADER_SIGNATURE, "%%%", "signature_malformed"),
    ],
)
def test_malformed_headers_have_stable_codes(header, value, code):
    headers = _headers()
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    with pytest.raises(SignatureError) as refused:
        parse_signed_headers(headers)
    assert refused.value.code == code


def test_skew_of_exactly_the_limit_passes_and_one_more_second_fails():
    check_skew(NOW, NOW + 300)
    check_skew(NOW, NOW - 300)
    for now in (NOW + 301, NOW - 301):
        with pytest.raises(SignatureError) as refused:
            check_skew(NOW, now)
        assert refused.value.code == "clock_skew"


def test_public_keys_travel_as_base64_raw_bytes():
    with pytest.raises(ValueError):
        load_public_key(base64.b64encode(b"\x01" * 31).decode())
    with pytest.raises(ValueError):
        load_public_key("not base64!")
    assert len(key_fingerprint(KEY.public_key())) == 16


@given(st.binary(max_size=512), st.text(alphabet="abcdefghijklmnop/?=&", max_size=40))
def test_any_body_and_path_round_trip(body, path):
    path = "/" + path
    headers = sign_request(KEY, 7, "POST", path, body, timestamp=NOW)
    signed = parse_signed_headers(headers)
    assert verify_signature(KEY.public_key(), signed, "POST", path, body)
    assert not verify_signature(KEY.public_key(), signed, "POST", path, body + b" ")
