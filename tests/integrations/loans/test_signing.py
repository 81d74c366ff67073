import hashlib
import hmac

import httpx
import pytest

from integrations.loans.client import (
    ClientKey,
    DisbursementApi,
    id_number_check,
    sign,
    signature_valid,
    signed_headers,
    string_to_sign,
)

SECRET = "s3cret"
BODY = b'{"amount":100}'


def test_signature_covers_method_target_timestamp_and_body_hash():
    base = string_to_sign("post", "/api/loans/disbursements?x=1", 1_800_000_000, BODY)
    assert base == (
        b"POST\n/api/loans/disbursements?x=1\n1800000000\n"
        + hashlib.sha256(BODY).hexdigest().encode()
    )
    expected = hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()
    assert sign(SECRET, "POST", "/api/loans/disbursements?x=1", 1_800_000_000, BODY) == expected


@pytest.mark.parametrize(
    "changed",
    [
        dict(method="PUT"),
        dict(target="/api/loans/disbursements/other"),
        dict(timestamp=1_800_000_001),
        dict(body=b'{"amount":101}'),
        dict(secret="other"),
    ],
)
def test_any_change_breaks_the_signature(changed):
    request = dict(method="POST", target="/p", timestamp=1_800_000_000, body=BODY)
    signature = sign(SECRET, **request)
    args = dict(secret=SECRET, **request) | changed
    assert not signature_valid(signature=signature, **args)
    assert signature_valid(SECRET, signature=signature, **request)


def test_id_number_check_is_keyed_and_ignores_case_and_spaces():
    key = b"shared-key"
    check = id_number_check("33010219700707345x", key)
    assert check == id_number_check(" 33010219700707345X ", key)
    assert check != id_number_check("33010219700707345X", b"other-key")
    assert check == hmac.new(key, b"33010219700707345X", hashlib.sha256).hexdigest()


def test_api_client_signs_the_bytes_and_target_it_sends():
    seen = {}

    def hub(request: httpx.Request) -> httpx.Response:
        seen["valid"] = signature_valid(
            SECRET,
            request.method,
            request.url.raw_path.decode(),
            int(request.headers["X-SSC-Timestamp"]),
            request.content,
            request.headers["X-SSC-Signature"],
        )
        seen["target"] = request.url.raw_path.decode()
        return httpx.Response(200, json={})

    http = httpx.Client(base_url="http://hub", transport=httpx.MockTransport(hub))
    api = DisbursementApi(http, ClientKey("lk_1", SECRET), clock=lambda: 1_800_000_000.0)
    api.list(status="credited", limit=5)
    assert seen == {
        "valid": True,
        "target": "/api/loans/disbursements?status=credited&limit=5",
    }
    api.create({"external_id": "L-1", "amount": 1})
    assert seen["valid"]


def test_signed_headers_name_the_key_and_time():
    headers = signed_headers(ClientKey("lk_1", SECRET), "GET", "/p", b"", 1_800_000_000.7)
    assert headers["X-SSC-Key-Id"] == "lk_1"
    assert headers["X-SSC-Timestamp"] == "1800000000"
    assert headers["X-SSC-Signature"] == sign(SECRET, "GET", "/p", 1_800_000_000, b"")


def test_client_key_repr_hides_the_secret():
    assert SECRET not in repr(ClientKey("lk_1", SECRET))
