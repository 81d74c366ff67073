"""Payment codes: issued to a cardholder's app, paid once by a scanning terminal."""

from __future__ import annotations

import base64

import pytest

from devices.emv import tlv
from devices.emv.tlv import Tlv
from devices.qr.cpm import ConsumerPayload, decode_cpm, encode_cpm
from devices.qr.frames import decode_frame
from hub.ledger import service as ledger

ZHANG, WANG, LI = "K10000001", "K10000002", "K10000003"
PAY_PATH = "/api/terminal/payment-codes/payments"
# What does not depend on the database engine runs on SQLite only; PostgreSQL would add
# nothing but the time it takes to empty its tables between tests.
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _with_proprietary(payload: str, tag: int, change: bytes) -> str:
    """The same code with one object of its 64 template replaced (a forger's edit)."""
    decoded = decode_cpm(payload)
    (transparent,) = decoded.common
    items = [Tlv(i.tag, change if i.tag == tag else i.value) for i in transparent.children]
    common = (Tlv(0x64, tlv.encode(items)),)
    return encode_cpm(ConsumerPayload(decoded.applications, common))


class TestPaying:
    def test_a_code_pays_once_from_the_card_to_the_unit(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        response = desk.terminal.pay(payload, 2372, "sale-1")
        assert response.status_code == 200, response.text
        paid = response.json()
        assert paid["status"] == "paid"
        assert paid["card"] == "623170******0003"
        assert desk.balance(ZHANG) == 50_000 - 2372
        assert desk.unit_balance() == 2372

    def test_a_retry_of_the_same_sale_returns_the_first_payment_even_after_expiry(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        first = desk.terminal.pay(payload, 1500, "sale-2").json()
        desk.clock.advance(600)
        again = desk.terminal.pay(payload, 1500, "sale-2")
        assert again.status_code == 200
        assert again.json() == first
        assert desk.balance(ZHANG) == 50_000 - 1500

    @sqlite_only
    def test_the_terminal_can_ask_for_a_sale_whose_answer_it_lost(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        paid = desk.terminal.pay(payload, 990, "sale-3").json()
        assert desk.terminal.get(f"{PAY_PATH}/sale-3").json() == paid
        assert desk.refusal(desk.terminal.get(f"{PAY_PATH}/sale-9")) == (404, "payment_not_found")

    @sqlite_only
    def test_the_ledger_shows_a_hold_captured_at_once(self, desk):
        payload = desk.payment_code(desk.cardholder(WANG))
        paid = desk.terminal.pay(payload, 110_000, "big-1").json()
        with desk.db.session() as s:
            entries = ledger.transfers_for(s, f"payment:{paid['payment_id']}")
            shape = sorted((t.pending_id is not None, t.amount, t.flags) for t in entries)
        hold, capture = shape
        assert hold[:2] == (False, 110_000) and capture[:2] == (True, 110_000)
        assert desk.balance(WANG) == 120_000 - 110_000
        assert desk.unit_balance() == 110_000

    @sqlite_only
    def test_the_payload_names_the_debit_application_and_carries_no_card_number(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        decoded = decode_cpm(payload)
        assert Tlv(0x4F, bytes.fromhex("A000000333010101")) in decoded.applications[0]
        assert b"6231700000000003" not in base64.b64decode(payload)

    @sqlite_only
    def test_the_png_code_scans_back_to_a_payment_code_that_pays(self, desk):
        response = desk.client.post(
            "/api/cardholder/payment-codes/png", headers=desk.cardholder(ZHANG)
        )
        assert response.headers["content-type"] == "image/png"
        assert "x-ssc-expires-at" in response.headers
        payload = decode_frame(response.content)
        assert desk.terminal.pay(payload, 100, "png-1").status_code == 200


class TestRefusals:
    def test_a_code_used_twice_pays_once(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        assert desk.terminal.pay(payload, 1000, "a-1").status_code == 200
        second = desk.terminal.pay(payload, 1000, "a-2")
        assert desk.refusal(second) == (409, "payment_code_used")
        assert desk.balance(ZHANG) == 50_000 - 1000

    @sqlite_only
    def test_an_expired_code_charges_nothing(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        desk.clock.advance(60)
        assert desk.refusal(desk.terminal.pay(payload, 1000, "e-1")) == (
            410,
            "payment_code_expired",
        )
        assert desk.balance(ZHANG) == 50_000

    @sqlite_only
    @pytest.mark.parametrize("tag", [0xDF53, 0xDF52, 0xDF51])
    def test_a_tampered_code_is_refused_and_audited(self, desk, tag):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        value = {i.tag: i.value for i in decode_cpm(payload).common[0].children}[tag]
        forged = _with_proprietary(payload, tag, bytes([value[0] ^ 0x01]) + value[1:])
        response = desk.terminal.pay(forged, 1000, "t-1")
        assert desk.refusal(response) == (422, "payment_code_mac_invalid")
        assert desk.balance(ZHANG) == 50_000
        assert ("payment_code.refused", {"code": "payment_code_mac_invalid", "path": PAY_PATH}) in (
            desk.audit_actions()
        )

    @sqlite_only
    @pytest.mark.parametrize(
        ("payload", "code"),
        [
            ("hQVDUFYwMWETTwegAAAAVVVV", "qr_payload_invalid"),  # truncated base64/TLV
            ("not base64 at all!", "qr_payload_invalid"),
            # Another issuer's consumer-presented code (EMVCo sample): well formed, not ours.
            (
                "hQVDUFYwMWETTwegAAAAVVVVUAhQcm9kdWN0MWETTwegAAAAZmZmUAhQcm9kdWN0MmJJWggSNFZ4kBI0WF8g"
                "DkNBUkRIT0xERVIvRU1WXy0IcnVlc2RlZW5kIZ8QBwYBCgMAAACfJghYT9OF+iNLzJ82AgABnzcEbVjvEw==",
                "payment_code_invalid",
            ),
        ],
    )
    def test_malformed_payloads_are_refused_with_stable_codes(self, desk, payload, code):
        assert desk.refusal(desk.terminal.pay(payload, 1000, "m-1")) == (422, code)

    @sqlite_only
    def test_a_blocked_card_cannot_pay(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        desk.ok("PUT", f"/api/issuer/cards/{ZHANG}/status", json={"status": "blocked"})
        assert desk.refusal(desk.terminal.pay(payload, 1000, "b-1")) == (403, "card_blocked")
        assert desk.balance(ZHANG) == 50_000

    def test_insufficient_funds_charge_nothing_and_leave_the_code_usable(self, desk):
        payload = desk.payment_code(desk.cardholder(LI))
        assert desk.refusal(desk.terminal.pay(payload, 8_801, "f-1")) == (
            402,
            "insufficient_funds",
        )
        assert desk.balance(LI) == 8_800
        assert desk.terminal.pay(payload, 8_800, "f-2").status_code == 200
        assert desk.balance(LI) == 0

    @sqlite_only
    def test_a_transaction_id_cannot_be_reused_for_another_payment(self, desk):
        app = desk.cardholder(ZHANG)
        first, second = desk.payment_code(app), desk.payment_code(app)
        assert desk.terminal.pay(first, 1000, "r-1").status_code == 200
        assert desk.refusal(desk.terminal.pay(second, 1000, "r-1")) == (
            409,
            "transaction_id_reused",
        )
        assert desk.refusal(desk.terminal.pay(first, 2000, "r-1")) == (
            409,
            "transaction_id_reused",
        )
        assert desk.terminal.pay(second, 1000, "r-2").status_code == 200

    @sqlite_only
    @pytest.mark.parametrize("amount", [0, -5, 12.5, "100"])
    def test_amounts_must_be_positive_whole_fen(self, desk, amount):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        assert desk.refusal(desk.terminal.pay(payload, amount, "x-1")) == (422, "invalid_request")

    @sqlite_only
    def test_a_card_reader_without_a_scanner_cannot_submit_codes(self, desk):
        reader = desk.new_terminal("SSC-CR300")
        payload = desk.payment_code(desk.cardholder(ZHANG))
        assert desk.refusal(reader.pay(payload, 1000, "k-1")) == (403, "terminal_cannot_scan")

    @sqlite_only
    def test_an_unsigned_submission_is_refused(self, desk):
        body = {"transaction_id": "u-1", "amount_fen": 1, "payload": "x"}
        response = desk.client.post(PAY_PATH, json=body)
        assert desk.refusal(response) == (401, "signature_missing")


@sqlite_only
class TestCardholderApp:
    @pytest.mark.parametrize(
        "headers",
        [{"Authorization": ""}, {"Authorization": "Bearer cht_forged"}, {"Authorization": "x"}],
    )
    def test_issuing_needs_a_cardholder_token(self, desk, headers):
        response = desk.client.post("/api/cardholder/payment-codes", headers=headers)
        assert desk.refusal(response) == (401, "cardholder_unauthorized")

    def test_the_ops_token_is_not_a_cardholder_token(self, desk):
        response = desk.client.post("/api/cardholder/payment-codes")
        assert desk.refusal(response) == (401, "cardholder_unauthorized")

    def test_a_revoked_token_issues_nothing(self, desk):
        issued = desk.ok("POST", "/api/payments/cardholder-tokens", json={"card_number": ZHANG})
        desk.ok("POST", f"/api/payments/cardholder-tokens/{issued['token_id']}/revoke")
        headers = {"Authorization": f"Bearer {issued['token']}"}
        response = desk.client.post("/api/cardholder/payment-codes", headers=headers)
        assert desk.refusal(response) == (401, "cardholder_unauthorized")

    def test_a_blocked_card_gets_no_code(self, desk):
        app = desk.cardholder(ZHANG)
        desk.ok("PUT", f"/api/issuer/cards/{ZHANG}/status", json={"status": "lost"})
        response = desk.client.post("/api/cardholder/payment-codes", headers=app)
        assert desk.refusal(response) == (403, "card_blocked")

    def test_a_code_is_valid_for_sixty_seconds(self, desk):
        response = desk.client.post("/api/cardholder/payment-codes", headers=desk.cardholder(WANG))
        issued = response.json()
        assert issued["valid_seconds"] == 60
        assert issued["expires_at"].startswith("2026-11-29T08:01:00")
