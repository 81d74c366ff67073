"""Bad input at the terminal door: properly signed requests with malformed bodies.

Schemathesis (test_schemathesis.py) cannot sign, so it only ever sees the terminal endpoints
refuse at the signature check. Here every request carries a real Ed25519 signature over the
exact bytes sent, by an enrolled combo terminal of a seeded unit, so what is exercised is
everything after the door: body limits, parsing, validation, the domains behind. The operations
come from the hub's own OpenAPI document, so a new terminal endpoint is fuzzed without touching
this file. Then targeted strategies for card taps (chip data, ARQC, ATC, PIN blocks), scanned
QR text (payment codes, bill codes, e-vouchers) and camera frames.

Every answer: status < 500, a refusal is the hub's JSON error with a stable code, and no answer
carries a full PAN. The outside systems (HIS, insurance platform) are their real simulators, so
a 5xx can only be the hub's own. SQLite by default, one PostgreSQL run with fewer examples;
derandomized when CI is set, so CI always runs the same examples.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from devices.emv.tlv import Tlv, decode, encode, encode_length
from devices.protocol import pin_key
from devices.protocol.messages import (
    ENROL_PATH,
    CommandReply,
    Heartbeat,
    KeyRotation,
    TerminalEvent,
)
from devices.protocol.signing import sign_request, signed_target
from devices.qr.mpm import crc16_ccitt_false
from devices.qr.render import render_png
from hub.checkout.schemas import CardCredential, CheckoutIn, IdentifyIn, SelfPayIn
from hub.config import Settings
from hub.db import Database
from hub.demo.seed import DEMO_CARDS
from hub.issuer.protection import luhn_valid
from hub.issuer.terminal_endpoints import PinKeyIn
from hub.payments.code_schemas import BillIn, CodePaymentIn, ScanIn
from hub.payments.schemas import CaptureIn, CardIn, CardTapIn, RefundIn, ReversalIn
from tests.hub.checkout.conftest import wired_settings
from tests.hub.checkout.window import Simulators, Window
from tests.hub.payments.card_taps.world import World
from tests.reliability.conftest import fuzz_settings

TERMINAL_PREFIX = "/api/terminal/"
UNSIGNED = {ENROL_PATH}  # the one-time code is its credential; schemathesis covers it
CODE = re.compile(r"^[a-z][a-z0-9_]*$")
PAN = re.compile(r"[0-9]{13,19}")
# Every request here is signed by an enabled combo terminal: a 401, or one of these refusals of
# the door (hub/gateway/auth.py) and the scanner check, means signing broke and nothing got past.
DOOR_REFUSALS = {"terminal_disabled", "unit_disabled", "terminal_cannot_scan"}


# --- the operations, from the OpenAPI document ------------------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # a template: /api/terminal/card-payments/{payment_id}/capture
    path_params: tuple[tuple[str, str], ...]  # (name, OpenAPI type)
    query_params: tuple[tuple[str, str], ...]


def _type_of(parameter: dict[str, Any]) -> str:
    schema = parameter.get("schema", {})
    kinds = [schema.get("type")] + [s.get("type") for s in schema.get("anyOf", [])]
    return "integer" if "integer" in kinds else "string"


def terminal_operations(app: FastAPI) -> list[Operation]:
    """Every signed terminal operation the hub documents."""
    found = []
    for path, item in app.openapi()["paths"].items():
        if not path.startswith(TERMINAL_PREFIX) or path in UNSIGNED:
            continue
        for method, operation in item.items():
            parameters = operation.get("parameters", [])
            found.append(
                Operation(
                    method.upper(),
                    path,
                    tuple((p["name"], _type_of(p)) for p in parameters if p["in"] == "path"),
                    tuple((p["name"], _type_of(p)) for p in parameters if p["in"] == "query"),
                )
            )
    return found


# --- the door: a seeded unit, its combo terminal, a card with a real chip ---------------------


def _pans_in(sent: bytes) -> set[bytes]:
    """The card numbers a request sent as `pan` (a transaction id may be digits, and is echoed)."""
    try:
        found = [json.loads(sent)]
    except (ValueError, RecursionError):
        return set()
    pans = set()
    while found:
        value = found.pop()
        if isinstance(value, dict):
            pan = value.get("pan")
            if isinstance(pan, str) and PAN.fullmatch(pan) and luhn_valid(pan):
                pans.add(pan.encode())
            found += value.values()
        elif isinstance(value, list):
            found += value
    return pans


@dataclass
class Door:
    """One enrolled combo terminal that signs whatever bytes the test hands it."""

    client: TestClient
    window: Window
    world: World
    operations: list[Operation]
    known: dict[str, list[Any]] = field(default_factory=dict)  # real values of path params
    pans: set[bytes] = field(default_factory=set)
    tap_bodies: list[dict[str, Any]] = field(default_factory=list)
    cardholder: Any = None  # tests.hub.payments.card_taps.world.Cardholder, with a real chip
    payment_code: str = ""
    bill_code: str = ""

    @property
    def terminal_id(self) -> int:
        return self.window.terminal.terminal_id

    def send(
        self,
        method: str,
        path: str,
        body: bytes,
        content_type: str | None = "application/json",
        *,
        chunked: bool = False,
    ) -> httpx.Response:
        """Sign the exact bytes and send them; `path` may carry a query string."""
        timestamp = int(self.window.clock().timestamp())
        key = self.window.terminal.private_key
        # Signed as it goes on the wire: percent-encoded path segments stay encoded.
        signed = signed_target(httpx.URL(f"http://testserver{path}").raw_path)
        headers = sign_request(key, self.terminal_id, method, signed, body, timestamp=timestamp)
        if content_type is not None:
            headers["Content-Type"] = content_type
        content: bytes | Iterator[bytes] = body
        if chunked:  # no Content-Length: the limits must hold while reading
            content = iter([body[i : i + 8192] for i in range(0, len(body), 8192)] or [b""])
        return self.client.request(method, path, content=content, headers=headers)

    def check(self, response: httpx.Response, sent: bytes) -> None:
        """Past the door and no 5xx; a refusal is the hub's JSON error with a stable code; no
        full PAN."""
        where = f"{response.request.method} {response.request.url.path}"
        assert response.status_code < 500, (where, response.status_code, response.text[:300])
        if response.status_code >= 400:
            error = response.json()["error"]
            assert CODE.fullmatch(error["code"]), (where, error)
            assert isinstance(error["message"], str)
            assert response.status_code != 401, (where, error)
            assert error["code"] not in DOOR_REFUSALS, (where, error)
        elif response.headers.get("content-type", "").startswith("application/json"):
            response.json()
        for pan in self.pans | _pans_in(sent):
            assert pan not in response.content, (where, "a full PAN in the answer")


def _terminal_ready(door: Door) -> None:
    """Real ids for the path parameters, and real bodies to mutate."""
    window, world = door.window, door.world
    cardholder = door.cardholder = world.cardholder(balance=1_000_000)
    door.pans = {pan.encode() for *_, pan, _ in DEMO_CARDS} | {cardholder.pan.encode()}
    clock = window.clock
    taps = [cardholder.tap(1_000 + n, f"seed-{n}", clock()) for n in range(3)]
    door.tap_bodies = [tap.body for tap in taps]
    hub = window.terminal
    approved = hub.post("/api/terminal/card-payments", taps[0].body)
    assert approved["approved"], approved
    # A PIN key of version 1, so PIN blocks of the right size are deciphered and counted.
    hub.post(
        pin_key.PIN_KEY_PATH, {"public_key": pin_key.public_key_text(X25519PrivateKey.generate())}
    )
    bill = hub.post("/api/terminal/bills", {"bill_number": "FUZZ-1", "amount_fen": 1_234})
    door.bill_code = bill["payload"]
    checkout = window.open(window.his_bill(("ZL0001", 1), ("YP0101", 2)).bill_no)
    command = window.client.post(
        f"/api/gateway/terminals/{door.terminal_id}/commands",
        json={"kind": "collect_diagnostics"},
    ).json()
    token = window.client.post(
        "/api/payments/cardholder-tokens", json={"card_number": cardholder.card_number}
    ).json()["token"]
    issued = window.client.post(
        "/api/cardholder/payment-codes", headers={"Authorization": f"Bearer {token}"}
    )
    door.payment_code = issued.json()["payload"]
    door.known = {
        "payment_id": [approved["payment_id"]],
        "checkout_id": [checkout["checkout_id"]],
        "command_id": [command["id"]],
        "bill_number": ["FUZZ-1"],
        "transaction_id": ["seed-0"],
    }


@pytest.fixture
def settings(db: Database, simulators: Simulators) -> Settings:
    """The `client` fixture's settings: the checkout's (the hub wired to the running simulators),
    quieter, for the hundreds of requests here."""
    return wired_settings(db, simulators, log_level="WARNING")


@pytest.fixture
def door(
    client: TestClient, db: Database, clock: Any, simulators: Simulators, settings: Settings
) -> Door:
    world = World(db, clock, client)
    world.issuer_key()
    window = Window(client, db, clock, simulators, settings)
    made = Door(client, window, world, terminal_operations(client.app))  # type: ignore[arg-type]
    _terminal_ready(made)
    return made


sqlite = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
postgres = pytest.mark.parametrize(
    "db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


# --- strategies: hostile values and bodies ----------------------------------------------------

HUGE = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1, -(10**30)]
hostile_ints = st.one_of(
    st.sampled_from([0, -1, 1, *HUGE]), st.integers(min_value=-(2**70), max_value=2**70)
)
hostile_floats = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e308, -1e308, 0.5, -0.0, 1.0e-300]),
)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "null", "0", "-1", "1e999", "ＡＢＣ", "١٢٣٤", "🂡" * 10]),
    st.text(alphabet="0123456789", min_size=12, max_size=20),  # PAN-shaped
    st.integers(min_value=1000, max_value=5000).map(lambda n: "x" * n),  # long
)
hostile_scalars = st.one_of(st.none(), st.booleans(), hostile_ints, hostile_floats, hostile_text)
json_values = st.recursive(
    hostile_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def rarely(one_in: int = 4) -> st.SearchStrategy[bool]:
    # A middle value: hypothesis favours the ends of a range, so `n == 0` would come too often.
    return st.integers(0, one_in - 1).map(lambda n: n == one_in // 2)


def mostly(valid: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
    """Valid three times in four: a request must get past its first bad field to go deep."""
    return rarely().flatmap(lambda bad: hostile if bad else valid)


# A new id each time (hypothesis repeats its uuids, and a repeat is only `transaction_id_reused`).
transaction_ids = mostly(st.builds(lambda: uuid.uuid4().hex), hostile_text)


def _field_names(*models: Any) -> list[str]:
    names = set()
    for model in models:
        names |= set(model.model_fields)
    return sorted(names)


# Every field name any terminal request model knows: bodies that look nearly right.
FIELD_NAMES = _field_names(
    Heartbeat, CommandReply, TerminalEvent, KeyRotation, CardTapIn, CardIn, CaptureIn, RefundIn,
    ReversalIn, CodePaymentIn, ScanIn, BillIn, CheckoutIn, IdentifyIn, CardCredential, SelfPayIn,
    PinKeyIn,
)  # fmt: skip
near_miss = st.dictionaries(st.sampled_from(FIELD_NAMES), json_values, max_size=8)


def _encode(value: Any) -> bytes:
    return json.dumps(value, default=str).encode()


def _nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


raw_bodies = st.one_of(
    json_values.map(_encode),
    near_miss.map(_encode),
    st.binary(max_size=300),  # not JSON at all
    json_values.map(_encode).flatmap(  # JSON cut short
        lambda raw: st.integers(0, max(len(raw) - 1, 0)).map(lambda cut: raw[:cut])
    ),
    st.builds(_nested, st.sampled_from([64, 1_000, 20_000]), st.sampled_from(["list", "dict"])),
    st.sampled_from(
        [
            b"",
            b"{}",
            b"null",
            b'{"amount": NaN}',
            b'{"amount": Infinity, "amount_fen": -Infinity}',
            b'{"amount": 1e999}',
            b'{"sequence": 1, "sequence": -1}',
            b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
            "{}".encode("utf-16"),
            b'{"text": "\\ud800"}',  # a lone surrogate
            b'{"detail": {"' + b"k" * 100 + b'": 1}}',
        ]
    ),
    st.sampled_from([64 * 1024 + 1, 300 * 1024]).map(  # over the terminal and global limits
        lambda size: b'{"pad": "' + b"x" * size + b'"}'
    ),
)
content_types = st.sampled_from(
    [
        "application/json",
        None,
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/json; charset=latin-1",
        "image/png",
        "application/octet-stream",
    ]
)
path_texts = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=50),
    st.sampled_from(["0", "-1", "00000000000000000000001", "1e3", "%00", "..", "ＡＢＣ"]),
)


def path_value(door: Door, name: str, kind: str) -> st.SearchStrategy[str]:
    known = [str(v) for v in door.known.get(name, [])]
    values = [st.sampled_from(known)] if known else []
    if kind == "integer":
        values.append(hostile_ints.map(str))
    values.append(path_texts)
    return st.one_of(*values)


@st.composite
def target(draw: st.DrawFn, door: Door, operation: Operation | None = None) -> tuple[str, str]:
    """(method, path with query) of one terminal operation, its parameters drawn."""
    op = operation or draw(st.sampled_from(door.operations))
    path = op.path
    for name, kind in op.path_params:
        path = path.replace(f"{{{name}}}", quote(draw(path_value(door, name, kind)), safe=""))
    query = {}
    for name, kind in op.query_params:
        if draw(st.booleans()):
            query[name] = draw(path_value(door, name, kind))
    return op.method, path + (f"?{urlencode(query)}" if query else "")


# --- every terminal door ----------------------------------------------------------------------


@sqlite
def test_the_fuzzed_doors_are_every_signed_terminal_operation(door: Door) -> None:
    paths = {(op.method, op.path) for op in door.operations}
    assert len(paths) >= 27, sorted(paths)  # 27 when this was written; fewer means lost routes
    assert {
        ("POST", "/api/terminal/heartbeat"),
        ("POST", "/api/terminal/card-payments"),
        ("POST", "/api/terminal/frames"),
        ("POST", "/api/terminal/scans"),
        ("POST", "/api/terminal/checkouts/{checkout_id}/identify"),
        ("POST", "/api/terminal/pin-key"),
    } <= paths
    assert all(p.startswith(TERMINAL_PREFIX) and p != ENROL_PATH for _, p in paths)


def _any_door(door: Door, data: st.DataObject) -> None:
    method, path = data.draw(target(door), label="target")
    body = data.draw(raw_bodies, label="body")
    content_type = data.draw(content_types, label="content_type")
    chunked = data.draw(st.booleans(), label="chunked") if body else False
    door.check(door.send(method, path, body, content_type, chunked=chunked), body)


@sqlite
@fuzz_settings(max_examples=400)
@given(data=st.data())
def test_no_signed_request_with_a_malformed_body_gets_a_5xx(door: Door, data: st.DataObject):
    _any_door(door, data)


@postgres
@fuzz_settings(max_examples=60)
@given(data=st.data())
def test_no_signed_request_with_a_malformed_body_gets_a_5xx_on_postgres(door, data):
    _any_door(door, data)


# --- card taps --------------------------------------------------------------------------------


def _tlv_objects(icc_hex: str) -> list[Tlv]:
    return decode(bytes.fromhex(icc_hex))


def _with_value(objects: list[Tlv], tag: int, value: bytes | None) -> bytes:
    """The chip data with one object replaced (None: removed); the others as they were."""
    out = b""
    for item in objects:
        if item.tag != tag:
            out += encode([item])
        elif value is not None:
            out += encode([Tlv(tag, value)])
    return out


def _with_raw_length(objects: list[Tlv], tag: int, length: bytes) -> bytes:
    """One object's length field replaced by raw bytes: too long, too short, overlong forms."""
    out = b""
    for item in objects:
        raw = encode([item])
        if item.tag == tag:
            header = raw[: len(raw) - len(item.value) - len(encode_length(len(item.value)))]
            raw = header + length + item.value
        out += raw
    return out


CHIP_TAGS = [0x9F26, 0x9F27, 0x9F10, 0x9F36, 0x9F02, 0x5F2A, 0x9F37, 0x95, 0x9A, 0x9C]


@st.composite
def chip_data(draw: st.DrawFn, base_hex: str) -> str:
    """Hex of the chip data, mutated: wrong lengths, bad ARQC, ATC overflow, broken TLV."""
    objects = _tlv_objects(base_hex)
    raw = bytes.fromhex(base_hex)
    tag = draw(st.sampled_from(CHIP_TAGS))
    mutated = draw(
        st.one_of(
            st.just(raw),
            st.binary(min_size=8, max_size=8).map(lambda arqc: _with_value(objects, 0x9F26, arqc)),
            st.sampled_from([b"\xff\xff", b"\x00\x00", b"\x01\x00\x00", b"\x7f"]).map(
                lambda atc: _with_value(objects, 0x9F36, atc)  # ATC overflow and odd sizes
            ),
            st.binary(max_size=40).map(lambda value: _with_value(objects, tag, value)),
            st.just(_with_value(objects, tag, None)),
            st.sampled_from(
                [b"\x00", b"\x7f", b"\x81\xff", b"\x82\xff\xff", b"\x84\x00\x00\x00\x01", b"\x80"]
            ).map(lambda length: _with_raw_length(objects, tag, length)),
            st.integers(0, len(raw)).map(lambda cut: raw[:cut]),  # truncated
            st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)).map(
                lambda flip: raw[: flip[0]] + bytes([flip[1]]) + raw[flip[0] + 1 :]
            ),
            st.just(encode([Tlv(0x77, raw)])),  # wrapped in a template
            st.just(raw + raw),  # every tag twice
            st.binary(max_size=64),
        )
    )
    as_hex = mutated.hex().upper()
    broken = st.sampled_from(
        [as_hex.lower(), as_hex[:-1], as_hex + "ZZ", " " + as_hex, "0" * 1026]  # not hex
    )
    return draw(mostly(st.just(as_hex), broken))


pin_blocks = mostly(
    st.binary(min_size=16, max_size=16).map(lambda b: b.hex()),  # the right size, wrong PIN
    st.one_of(
        st.none(),
        st.binary(max_size=40).map(lambda b: b.hex().upper()),  # PIN blocks of every wrong size
        st.text(max_size=40),
        hostile_ints,
    ),
)
pin_key_versions = mostly(st.integers(1, 3), st.one_of(hostile_ints, hostile_scalars))


def draw_card_tap(data: st.DataObject, door: Door) -> dict[str, Any]:
    """A tap body: half the time fresh chip data from the card (so the ARQC verifies and the
    PIN, ATC and hold paths are reached), else mutated chip data; then hostile fields."""
    fresh = data.draw(st.booleans(), label="fresh")
    if fresh:
        amount = data.draw(st.sampled_from([1_000, 49_999, 50_000, 120_000]), label="tap amount")
        base = door.cardholder.tap(amount, "fuzz", door.window.clock()).body
    else:
        base = data.draw(st.sampled_from(door.tap_bodies), label="base")
    body: dict[str, Any] = json.loads(json.dumps(base))
    body["transaction_id"] = data.draw(transaction_ids, label="transaction_id")
    if not fresh or data.draw(st.booleans(), label="mutate chip"):
        body["icc_data"] = data.draw(chip_data(base["icc_data"]), label="icc_data")
    if data.draw(st.booleans()):
        body["pin_block"] = data.draw(pin_blocks, label="pin_block")
        body["pin_key_version"] = data.draw(pin_key_versions, label="pin_key_version")
    if data.draw(rarely()):
        body["amount"] = data.draw(st.one_of(hostile_ints, hostile_scalars), label="amount")
    if data.draw(rarely()):
        card = body["card"]
        part = data.draw(st.sampled_from(["pan", "psn", "card_number"]))
        card[part] = data.draw(
            st.one_of(
                hostile_scalars,
                st.text(alphabet="0123456789", min_size=0, max_size=25),
                st.just(card["pan"][:-1] + str((int(card["pan"][-1]) + 1) % 10)),  # bad Luhn
            ),
            label=part,
        )
    if data.draw(rarely(6)):
        body.pop(data.draw(st.sampled_from(sorted(body)), label="dropped"))
    return body


def _tap(door: Door, body: dict[str, Any]) -> httpx.Response:
    raw = _encode(body)
    response = door.send("POST", "/api/terminal/card-payments", raw)
    door.check(response, raw)
    return response


@sqlite
@fuzz_settings(max_examples=250)
@given(data=st.data())
def test_card_taps_with_malformed_chip_data_are_refused_never_5xx(door: Door, data):
    _tap(door, draw_card_tap(data, door))


@sqlite
@pytest.mark.parametrize("version", [0, 2**31, 2**63, 2**64, 10**30])
def test_a_pin_key_version_out_of_range_is_refused_before_the_database(door: Door, version):
    """It went to a 32-bit column: SQLite raised OverflowError past 64 bits (a 500)."""
    body = dict(door.tap_bodies[1], transaction_id="pin-version")
    body |= {"pin_block": "00" * 16, "pin_key_version": version}
    response = _tap(door, body)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_request")


@postgres
@fuzz_settings(max_examples=40)
@given(data=st.data())
def test_card_taps_with_malformed_chip_data_on_postgres(door: Door, data):
    _tap(door, draw_card_tap(data, door))


# --- scanned QR text --------------------------------------------------------------------------


def _mpm_with_crc(body: str, crc: str | None = None) -> str:
    head = body + "6304"
    return head + (crc if crc is not None else f"{crc16_ccitt_false(head.encode()):04X}")


def _random_tlv(draw: st.DrawFn) -> bytes:
    tags = st.sampled_from([0x85, 0x61, 0x62, 0x63, 0x64, 0x4F, 0x5A, 0x57, 0x9F26, 0x9F36, 0x9F10])
    items = draw(st.lists(st.tuples(tags, st.binary(max_size=30)), max_size=6))
    body = b"".join(encode([Tlv(tag, value)]) for tag, value in items)
    if draw(st.booleans()):
        body = encode([Tlv(0x85, b"CPV01")]) + body
    return body


@st.composite
def qr_texts(draw: st.DrawFn, door: Door) -> str:
    """Scanned text: random, base64 of random BER-TLV, MPM with a wrong CRC, mixed unicode."""
    pay, bill = door.payment_code, door.bill_code
    choice = draw(st.integers(0, 8))
    if choice == 0:
        return draw(st.text(min_size=1, max_size=300))
    if choice == 1:
        return base64.b64encode(_random_tlv(draw)).decode()
    if choice == 2:  # the bill code with another CRC, or a field changed under the old CRC
        wrong = draw(st.text(alphabet="0123456789ABCDEFabcdefG ", min_size=0, max_size=6))
        return bill[:-4] + wrong
    if choice == 3:  # an MPM payload whose CRC is right but whose fields are not
        fields = draw(st.text(alphabet="0123456789ABCDEFGXYZ.-", max_size=120))
        return _mpm_with_crc("000201" + fields)
    if choice == 4:  # real codes, one character changed or cut
        text = draw(st.sampled_from([pay, bill]))
        at = draw(st.integers(0, len(text) - 1))
        char = draw(st.characters(blacklist_categories=("Cs",)))
        return draw(st.sampled_from([text[:at] + char + text[at + 1 :], text[:at] or char]))
    if choice == 5:  # mixed unicode inside real codes
        text = draw(st.sampled_from([pay, bill]))
        insert = draw(st.text(alphabet="中文 ＡＢ٣\u200b\ufeff\u0301", min_size=1, max_size=4))
        at = draw(st.integers(0, len(text)))
        return text[:at] + insert + text[at:]
    if choice == 6:  # e-voucher shaped
        tail = draw(st.text(alphabet="0123456789ABCXYZ", min_size=0, max_size=70))
        return "ECT" + draw(st.text(alphabet="0123456789", min_size=6, max_size=6)) + tail
    if choice == 7:  # base64 of a payment code's bytes, re-padded or cut
        raw = base64.b64decode(pay)
        cut = draw(st.integers(0, len(raw)))
        return base64.b64encode(raw[:cut]).decode().rstrip("=")
    return draw(st.sampled_from([pay, bill, "000201", "hQVDUFYwM", "ECT"]))


@st.composite
def scans(draw: st.DrawFn, door: Door) -> tuple[str, dict[str, Any]]:
    text = draw(qr_texts(door), label="text")
    sale = {
        "transaction_id": draw(transaction_ids),
        "amount_fen": draw(mostly(st.integers(1, 100_000), hostile_scalars)),
    }
    path = draw(st.sampled_from(["/api/terminal/scans", "/api/terminal/payment-codes/payments"]))
    if path.endswith("/scans"):
        body = {"text": text} | (sale if draw(st.booleans()) else {})
    else:
        body = {"payload": text} | sale
    if draw(rarely(6)):
        body.pop(draw(st.sampled_from(sorted(body))))
    return path, body


@sqlite
@fuzz_settings(max_examples=250)
@given(data=st.data())
def test_scanned_qr_text_of_any_shape_is_refused_never_5xx(door: Door, data):
    path, body = data.draw(scans(door))
    raw = _encode(body)
    door.check(door.send("POST", path, raw), raw)


# --- camera frames ----------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims a size its few bytes of data cannot hold (a pixel bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return PNG_SIGNATURE + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", pixels)


def _jpeg(payload: str) -> bytes:
    out = BytesIO()
    Image.open(BytesIO(render_png(payload, box_size=3))).convert("L").save(out, "JPEG")
    return out.getvalue()


@st.composite
def frames(draw: st.DrawFn, door: Door) -> bytes:
    """Camera frames: random bytes, truncated PNG/JPEG, bombs, real codes of hostile text."""
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return draw(st.binary(max_size=2_000))
    if choice == 1:
        header = draw(st.sampled_from([PNG_SIGNATURE, b"\xff\xd8\xff\xe0", b"BM", b"RIFF"]))
        return header + draw(st.binary(max_size=500))
    if choice in (2, 3):
        payload = draw(st.sampled_from([door.payment_code, door.bill_code, "hello"]))
        image = render_png(payload, box_size=3) if choice == 2 else _jpeg(payload)
        return image[: draw(st.integers(0, len(image)))]
    if choice == 4:
        size = draw(
            st.sampled_from([(1, 1), (0, 0), (65_535, 65_535), (2**31 - 1, 1), (1, 40_000)])
        )
        return _png_claiming(*size)
    if choice == 5:
        text = draw(qr_texts(door))
        return render_png(text[:1_000], box_size=2)
    return render_png(door.bill_code, box_size=3) + draw(st.binary(min_size=1, max_size=200))


@sqlite
@fuzz_settings(max_examples=80)
@given(data=st.data())
def test_camera_frames_of_any_shape_are_refused_never_5xx(door: Door, data):
    frame = data.draw(frames(door), label="frame")
    op = next(o for o in door.operations if o.path == "/api/terminal/frames")
    method, path = data.draw(target(door, op), label="target")
    content_type = data.draw(st.sampled_from(["image/png", "image/jpeg", None, "text/plain"]))
    door.check(door.send(method, path, frame, content_type), frame)
