"""Camera frames and scanned text, routed by what the code is: payment, bill or e-voucher."""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageFilter

from devices.agent.hub_client import encode_body
from devices.protocol.signing import sign_request
from devices.qr.render import render_png
from hub.payments.frames import CodeKind, kind_of

ZHANG = "K10000001"
SCANS_PATH = "/api/terminal/scans"
FRAMES_PATH = "/api/terminal/frames"
GATEWAY_BODY_LIMIT = 64 * 1024
EVOUCHER = "ECT330100ZHANGWEI0000000000000001"
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def _code(payload: str, box_size: int = 4) -> Image.Image:
    return Image.open(io.BytesIO(render_png(payload, box_size=box_size))).convert("L")


def _photo(size=(640, 480), seed=7) -> Image.Image:
    """A counter top seen by the camera: a lit gradient with sensor grain."""
    rng = random.Random(seed)
    grain = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    return Image.blend(
        Image.linear_gradient("L").resize(size).rotate(20, fillcolor=120), grain, 0.3
    )


def _frame(*payloads: str, size=(640, 480), angle: float = 0, blur: float = 0) -> bytes:
    scene = _photo(size)
    for i, payload in enumerate(payloads):
        code = _code(payload).rotate(angle, expand=True, fillcolor=255)
        scene.paste(code, (40 + i * (code.width + 20), (size[1] - code.height) // 2))
    if blur:
        scene = scene.filter(ImageFilter.GaussianBlur(blur))
    out = io.BytesIO()
    scene.save(out, format="JPEG", quality=92)
    return out.getvalue()


class TestKindOf:
    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("hQVDUFYwMWETTwegAAAA", CodeKind.PAYMENT_CODE),
            ("00020101021229300012D15600000000", CodeKind.BILL_CODE),
            (EVOUCHER, CodeKind.EVOUCHER),
            ("https://example.com/pay", CodeKind.UNKNOWN),
            ("ECT33", CodeKind.UNKNOWN),
        ],
    )
    def test_a_code_is_told_by_its_form(self, text, kind):
        assert kind_of(text) is kind


class TestFrames:
    def test_a_photographed_payment_code_pays(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        frame = _frame(payload, angle=12, blur=0.8)
        assert len(frame) > GATEWAY_BODY_LIMIT  # larger than any other terminal request
        response = desk.terminal.frame(frame, transaction_id="cam-1", amount_fen=2372)
        assert response.status_code == 200, response.text
        assert response.json()["kind"] == "payment_code"
        assert response.json()["payment"]["amount_fen"] == 2372
        assert desk.balance(ZHANG) == 50_000 - 2372

    @sqlite_only
    def test_a_photographed_bill_code_shows_the_bill(self, desk):
        made = desk.terminal.post("/api/terminal/bills", {"bill_number": "B-9", "amount_fen": 880})
        response = desk.terminal.frame(_frame(made.json()["payload"]))
        assert response.status_code == 200, response.text
        scanned = response.json()
        assert (scanned["kind"], scanned["bill"]["status"]) == ("bill_code", "open")


@sqlite_only
class TestFrameRefusals:
    def test_an_evoucher_code_without_a_waiting_checkout_is_refused(self, desk):
        response = desk.terminal.frame(_frame(EVOUCHER))
        assert desk.refusal(response) == (404, "checkout_not_found")

    def test_a_code_of_no_known_kind_is_refused(self, desk):
        response = desk.terminal.frame(_frame("https://example.com/pay"))
        assert desk.refusal(response) == (422, "code_not_recognised")

    def test_a_payment_code_without_a_sale_is_refused(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        response = desk.terminal.frame(_frame(payload))
        assert desk.refusal(response) == (422, "payment_details_required")
        assert desk.balance(ZHANG) == 50_000

    def test_bytes_that_are_no_image_are_refused(self, desk):
        response = desk.terminal.frame(b"GIF89a" + bytes(200))
        assert desk.refusal(response) == (422, "frame_not_image")

    def test_a_frame_without_a_code_is_refused(self, desk):
        response = desk.terminal.frame(_frame())
        assert desk.refusal(response) == (422, "frame_no_code")

    def test_a_frame_with_two_codes_is_refused(self, desk):
        response = desk.terminal.frame(_frame("first code", "second code", size=(800, 480)))
        assert desk.refusal(response) == (422, "frame_multiple_codes")

    def test_a_frame_over_the_byte_limit_is_refused_before_it_is_read(self, desk):
        limit = desk.client.app.state.settings.frame_max_bytes
        response = desk.terminal.frame(b"\xff\xd8\xff" + bytes(limit))
        assert desk.refusal(response) == (413, "body_too_large")

    def test_a_frame_declaring_too_many_pixels_is_refused_before_decoding(self, desk):
        out = io.BytesIO()
        Image.new("L", (5000, 4000), 255).save(out, format="PNG")  # 20 MP, a few KB
        response = desk.terminal.frame(out.getvalue())
        assert desk.refusal(response) == (413, "frame_too_large")

    def test_a_frame_changed_after_signing_is_refused(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        frame = _frame(payload)
        signed = sign_request(
            desk.terminal.hub.private_key,
            desk.terminal.id,
            "POST",
            FRAMES_PATH,
            frame,
            timestamp=int(desk.clock().timestamp()),
        )
        # The camera's frame is signed; one byte changes on the way.
        response = desk.client.post(FRAMES_PATH, content=frame[:-1] + b"\x00", headers=signed)
        assert desk.refusal(response) == (401, "signature_invalid")

    def test_an_unsigned_frame_is_refused(self, desk):
        response = desk.client.post(FRAMES_PATH, content=_frame("x"))
        assert desk.refusal(response) == (401, "signature_missing")


@sqlite_only
class TestScannedText:
    def test_a_scanned_payment_code_pays(self, desk):
        payload = desk.payment_code(desk.cardholder(ZHANG))
        body = {"text": payload, "transaction_id": "scan-1", "amount_fen": 500}
        response = desk.terminal.post(SCANS_PATH, body)
        assert response.json()["kind"] == "payment_code"
        assert desk.balance(ZHANG) == 50_000 - 500

    def test_a_scanned_bill_code_of_another_unit_is_not_found(self, desk):
        other_unit = desk.new_unit("H33010200002")
        other = desk.new_terminal("SSC-QS210", other_unit["id"])
        made = other.post("/api/terminal/bills", {"bill_number": "B-1", "amount_fen": 1}).json()
        response = desk.terminal.post(SCANS_PATH, {"text": made["payload"]})
        assert desk.refusal(response) == (404, "bill_not_found")

    @pytest.mark.parametrize(
        ("text", "code"),
        [
            ("hello", "code_not_recognised"),
            ("000201010212", "qr_payload_invalid"),
            ("hQVDUFYwMW==", "qr_payload_invalid"),
        ],
    )
    def test_refusals_carry_stable_codes(self, desk, text, code):
        response = desk.terminal.post(SCANS_PATH, {"text": text})
        assert desk.refusal(response) == (422, code)

    def test_an_unknown_field_is_refused_after_the_signature_passed(self, desk):
        body = encode_body({"text": "x", "colour": "red"})
        response = desk.terminal.hub.send("POST", SCANS_PATH, body)
        assert desk.refusal(response) == (422, "invalid_request")
