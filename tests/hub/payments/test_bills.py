"""Bill codes: a unit shows a merchant-presented code, a cardholder's app pays it exactly once."""

from __future__ import annotations

import pytest

from devices.qr.frames import decode_frame
from devices.qr.mpm import MpmField, decode_mpm, encode_mpm, field, subfield

ZHANG, WANG, LI = "K10000001", "K10000002", "K10000003"
INSTITUTION = "H33010200001"
BILLS_PATH = "/api/terminal/bills"
PAY_PATH = "/api/cardholder/bills/pay"
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _bill(desk, number="HIS000000001", amount=2372, **extra):
    response = desk.terminal.post(
        BILLS_PATH, {"bill_number": number, "amount_fen": amount, **extra}
    )
    assert response.status_code == 201, response.text
    return response.json()


def _pay(desk, payload, app):
    return desk.client.post(PAY_PATH, json={"payload": payload}, headers=app)


def _edited(payload, object_id, value):
    """The payload with one top-level object changed and a correct CRC (a careful forger)."""
    fields = [MpmField(f.id, value if f.id == object_id else f.value) for f in decode_mpm(payload)]
    return encode_mpm(fields)


class TestPayingABill:
    @sqlite_only
    def test_the_code_is_an_emvco_merchant_presented_payload_for_the_unit(self, desk):
        bill = _bill(desk)
        fields = decode_mpm(bill["payload"])  # checks the CRC too
        assert field(fields, "01") == "12"
        assert subfield(fields, "26", "00") == "CN.COM.SSCHUB"
        assert subfield(fields, "26", "01") == INSTITUTION
        assert (field(fields, "53"), field(fields, "54"), field(fields, "58")) == (
            "156",
            "23.72",
            "CN",
        )
        assert field(fields, "59") == "Hangzhou First Hospital"
        assert subfield(fields, "62", "01") == "HIS000000001"
        assert bill["status"] == "open"
        assert bill["expires_at"].startswith("2026-11-29T08:30:00")

    def test_the_app_pays_and_the_terminal_sees_it_paid(self, desk):
        bill = _bill(desk)
        paid = _pay(desk, bill["payload"], desk.cardholder(ZHANG))
        assert paid.status_code == 200, paid.text
        assert paid.json()["status"] == "paid"
        polled = desk.terminal.get(f"{BILLS_PATH}/HIS000000001").json()
        assert polled["status"] == "paid"
        assert polled["payment_id"] == paid.json()["payment_id"] is not None
        assert desk.balance(ZHANG) == 50_000 - 2372
        assert desk.unit_balance() == 2372

    def test_a_bill_paid_twice_pays_once(self, desk):
        bill = _bill(desk)
        zhang = desk.cardholder(ZHANG)
        first = _pay(desk, bill["payload"], zhang).json()
        assert _pay(desk, bill["payload"], zhang).json() == first  # the app's retry
        other = _pay(desk, bill["payload"], desk.cardholder(WANG))
        assert desk.refusal(other) == (409, "bill_already_paid")
        assert desk.balance(ZHANG) == 50_000 - 2372
        assert desk.balance(WANG) == 120_000
        assert desk.unit_balance() == 2372

    @sqlite_only
    def test_an_expired_bill_is_refused(self, desk):
        bill = _bill(desk, valid_seconds=120)
        desk.clock.advance(120)
        assert desk.refusal(_pay(desk, bill["payload"], desk.cardholder(ZHANG))) == (
            410,
            "bill_expired",
        )
        assert desk.terminal.get(f"{BILLS_PATH}/HIS000000001").json()["status"] == "expired"
        assert desk.balance(ZHANG) == 50_000

    @sqlite_only
    def test_a_cancelled_bill_is_refused_and_the_cancel_is_audited(self, desk):
        bill = _bill(desk)
        cancelled = desk.terminal.post(f"{BILLS_PATH}/HIS000000001/cancel", {})
        assert cancelled.json()["status"] == "cancelled"
        assert desk.refusal(_pay(desk, bill["payload"], desk.cardholder(ZHANG))) == (
            409,
            "bill_cancelled",
        )
        assert any(action == "bill.cancelled" for action, _ in desk.audit_actions())
        assert desk.balance(ZHANG) == 50_000

    @sqlite_only
    def test_short_of_funds_the_bill_stays_open(self, desk):
        bill = _bill(desk, amount=9_000)
        assert desk.refusal(_pay(desk, bill["payload"], desk.cardholder(LI))) == (
            402,
            "insufficient_funds",
        )
        assert desk.terminal.get(f"{BILLS_PATH}/HIS000000001").json()["status"] == "open"
        assert _pay(desk, bill["payload"], desk.cardholder(ZHANG)).status_code == 200


@sqlite_only
class TestRefusals:
    def test_a_paid_bill_cannot_be_cancelled(self, desk):
        bill = _bill(desk)
        _pay(desk, bill["payload"], desk.cardholder(ZHANG))
        response = desk.terminal.post(f"{BILLS_PATH}/HIS000000001/cancel", {})
        assert desk.refusal(response) == (409, "bill_already_paid")

    def test_a_wrong_crc_is_refused(self, desk):
        payload = _bill(desk)["payload"]
        broken = payload[:-4] + ("0000" if payload[-4:] != "0000" else "FFFF")
        assert desk.refusal(_pay(desk, broken, desk.cardholder(ZHANG))) == (
            422,
            "qr_crc_mismatch",
        )

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda p: p.replace("5303156", "5304156", 1),  # a wrong length
            lambda p: p[:40],  # truncated
            lambda p: "00020101021227" + "05" + "ABCDE" + p[14:],  # template of garbage
        ],
    )
    def test_malformed_payloads_are_refused(self, desk, mangle):
        payload = mangle(_bill(desk)["payload"])
        assert desk.refusal(_pay(desk, payload, desk.cardholder(ZHANG))) == (
            422,
            "qr_payload_invalid",
        )

    def test_an_edited_amount_with_a_correct_crc_pays_nothing(self, desk):
        forged = _edited(_bill(desk)["payload"], "54", "0.01")
        assert desk.refusal(_pay(desk, forged, desk.cardholder(ZHANG))) == (422, "bill_mismatch")
        assert desk.balance(ZHANG) == 50_000

    def test_another_banks_merchant_code_is_not_a_bill(self, desk, mpm_vectors):
        response = _pay(desk, mpm_vectors["sample"], desk.cardholder(ZHANG))
        assert desk.refusal(response) == (422, "bill_code_invalid")

    def test_an_unknown_bill_is_not_found(self, desk):
        forged = _edited(_bill(desk)["payload"], "62", (MpmField("01", "HIS999999999"),))
        assert desk.refusal(_pay(desk, forged, desk.cardholder(ZHANG))) == (404, "bill_not_found")

    def test_paying_needs_a_cardholder_token(self, desk):
        bill = _bill(desk)
        assert desk.refusal(_pay(desk, bill["payload"], {})) == (401, "cardholder_unauthorized")

    def test_another_units_terminal_cannot_see_the_bill(self, desk):
        _bill(desk)
        other_unit = desk.new_unit("H33010200002")
        other = desk.new_terminal("SSC-QS210", other_unit["id"])
        response = other.get(f"{BILLS_PATH}/HIS000000001")
        assert desk.refusal(response) == (404, "bill_not_found")

    def test_a_bill_number_is_used_once(self, desk):
        first = _bill(desk)
        assert _bill(desk) == first  # the same bill again, e.g. a retried request
        again = desk.terminal.post(BILLS_PATH, {"bill_number": "HIS000000001", "amount_fen": 1})
        assert desk.refusal(again) == (409, "bill_exists")

    def test_validity_has_bounds(self, desk):
        body = {"bill_number": "B1", "amount_fen": 100, "valid_seconds": 5}
        assert desk.refusal(desk.terminal.post(BILLS_PATH, body)) == (422, "invalid_request")


@sqlite_only
class TestHisBills:
    def test_the_his_makes_a_bill_for_a_unit_by_institution_code(self, desk):
        spec = {"institution_code": INSTITUTION, "bill_number": "OP-7", "amount_fen": 4_500}
        made = desk.ok("POST", "/api/payments/bills", json=spec)
        assert made["status"] == "open"
        assert _pay(desk, made["payload"], desk.cardholder(WANG)).status_code == 200
        polled = desk.ok("GET", f"/api/payments/bills/{INSTITUTION}/OP-7")
        assert polled["status"] == "paid"

    def test_an_unknown_unit_gets_no_bill(self, desk):
        spec = {"institution_code": "H99999999999", "bill_number": "OP-8", "amount_fen": 10}
        response = desk.client.post("/api/payments/bills", json=spec)
        assert desk.refusal(response) == (404, "unit_not_found")

    def test_a_unit_with_a_chinese_name_shows_it_in_the_alternate_language_template(self, desk):
        unit = desk.new_unit("H33010200003", "杭州市第一人民医院")
        terminal = desk.new_terminal("SSC-QS210", unit["id"])
        made = terminal.post(BILLS_PATH, {"bill_number": "ZH-1", "amount_fen": 100}).json()
        fields = decode_mpm(made["payload"])
        assert field(fields, "59") == "H33010200003"
        assert subfield(fields, "64", "00") == "ZH"
        assert subfield(fields, "64", "01") == "杭州市第一人民医院"

    def test_the_bill_png_scans_back_to_its_payload(self, desk):
        made = _bill(desk)
        png = desk.terminal.get(f"{BILLS_PATH}/HIS000000001/png")
        assert png.headers["content-type"] == "image/png"
        assert decode_frame(png.content) == made["payload"]
