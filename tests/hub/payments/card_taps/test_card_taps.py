"""Card taps through the signed terminal API, with real chips (the emulated card) and the
real ledger: authorise, capture, void, refund, reversal, each idempotent and audited."""

import pytest

from devices.agent.hub_client import HubRefused
from devices.protocol.card_payments import (
    REVERSALS_PATH,
    capture_path,
    payment_path,
    refunds_path,
    void_path,
)
from hub.audit import service as audit
from hub.ledger import service as ledger


def actions(world) -> list[str]:
    with world.db.session() as s:
        return [e.action for e in reversed(audit.recent(s, 200)) if e.action.startswith("payment.")]


def refused(call, *args) -> HubRefused:
    with pytest.raises(HubRefused) as caught:
        call(*args)
    return caught.value


def test_an_approved_tap_holds_the_money_and_the_card_accepts_the_arpc(world, terminal):
    holder = world.cardholder(50_000)
    tap = holder.tap(12_345, "T-1", world.now())
    answer = world.authorize(terminal, tap)
    assert answer["approved"] and answer["status"] == "authorized"
    assert answer["response_code"] == "00" and len(answer["arpc"]) == 16
    assert answer["pan_masked"].startswith("623170") and "*" in answer["pan_masked"]
    done = tap.finish(answer)
    assert done.issuer_authenticated and done.approved_by_card
    assert world.balance(holder.account_id) == (50_000, 50_000 - 12_345)
    assert world.settlement(terminal.institution_code) == (0, 0)
    assert actions(world) == ["payment.authorized"]


def test_capture_posts_the_hold_to_the_unit(world, terminal):
    holder = world.cardholder(50_000)
    answer = world.authorize(terminal, holder.tap(12_345, "T-1", world.now()))
    captured = terminal.hub.post(capture_path(answer["payment_id"]), {})
    assert captured["status"] == "captured" and captured["captured"] == 12_345
    assert world.balance(holder.account_id) == (50_000 - 12_345, 50_000 - 12_345)
    assert world.settlement(terminal.institution_code) == (12_345, 12_345)
    with world.db.session() as s:
        entries = ledger.transfers_for(s, f"payment:{answer['payment_id']}")
        assert [(t.code, t.amount, t.flags) for t in entries] == [
            ("card_payment", 12_345, 1),  # the hold (pending)
            ("card_payment", 12_345, 2),  # its posting
        ]
        assert ledger.check_invariants(s) == []


def test_a_partial_capture_releases_the_rest_and_a_repeat_returns_the_first(world, terminal):
    holder = world.cardholder(50_000)
    answer = world.authorize(terminal, holder.tap(20_000, "T-1", world.now()))
    path = capture_path(answer["payment_id"])
    first = terminal.hub.post(path, {"amount": 15_000})
    again = terminal.hub.post(path, {"amount": 15_000})
    assert first == again and first["captured"] == 15_000
    assert world.balance(holder.account_id) == (35_000, 35_000)
    assert refused(terminal.hub.post, path, {"amount": 20_000}).code == "already_captured"
    assert actions(world) == ["payment.authorized", "payment.captured"]


def test_capture_above_the_hold_moves_nothing(world, terminal):
    holder = world.cardholder(50_000)
    answer = world.authorize(terminal, holder.tap(10_000, "T-1", world.now()))
    error = refused(terminal.hub.post, capture_path(answer["payment_id"]), {"amount": 10_001})
    assert (error.status, error.code) == (409, "capture_exceeds_authorized")
    assert world.balance(holder.account_id) == (50_000, 40_000)
    assert world.settlement(terminal.institution_code) == (0, 0)


def test_void_releases_the_hold_once_and_a_captured_payment_cannot_be_voided(world, terminal):
    holder = world.cardholder(50_000)
    first = world.authorize(terminal, holder.tap(10_000, "T-1", world.now()))
    voided = terminal.hub.post(void_path(first["payment_id"]), {})
    assert (
        voided["status"]
        == "voided"
        == terminal.hub.post(void_path(first["payment_id"]), {})["status"]
    )
    assert world.balance(holder.account_id) == (50_000, 50_000)
    assert refused(terminal.hub.post, capture_path(first["payment_id"]), {}).code == (
        "payment_not_authorized"
    )
    second = world.authorize(terminal, holder.tap(5_000, "T-2", world.now()))
    terminal.hub.post(capture_path(second["payment_id"]), {})
    assert (
        refused(terminal.hub.post, void_path(second["payment_id"]), {}).code == "already_captured"
    )


def test_refunds_are_partial_repeated_idempotent_and_never_beyond_the_capture(world, terminal):
    holder = world.cardholder(50_000)
    answer = world.authorize(terminal, holder.tap(10_000, "T-1", world.now()))
    payment_id = answer["payment_id"]
    path = refunds_path(payment_id)
    assert (
        refused(terminal.hub.post, path, {"refund_id": "R-0", "amount": 1}).code == "not_captured"
    )
    terminal.hub.post(capture_path(payment_id), {"amount": 8_000})
    first = terminal.hub.post(path, {"refund_id": "R-1", "amount": 3_000})
    assert terminal.hub.post(path, {"refund_id": "R-1", "amount": 3_000}) == first
    assert refused(terminal.hub.post, path, {"refund_id": "R-1", "amount": 2_000}).code == (
        "refund_id_reused"
    )
    terminal.hub.post(path, {"refund_id": "R-2", "amount": 4_000})
    error = refused(terminal.hub.post, path, {"refund_id": "R-3", "amount": 1_001})
    assert (error.status, error.code) == (409, "refund_exceeds_captured")
    last = terminal.hub.post(path, {"refund_id": "R-3", "amount": 1_000})
    assert last["payment"]["status"] == "refunded" and last["payment"]["refunded"] == 8_000
    assert world.balance(holder.account_id) == (50_000, 50_000)
    assert world.settlement(terminal.institution_code) == (0, 0)
    assert actions(world).count("payment.refunded") == 3


def test_the_same_authorisation_sent_twice_holds_once(world, terminal):
    holder = world.cardholder(50_000)
    tap = holder.tap(10_000, "T-1", world.now())
    first = world.authorize(terminal, tap)
    assert world.authorize(terminal, tap) == first
    assert world.balance(holder.account_id) == (50_000, 40_000)
    other = holder.tap(9_000, "T-1", world.now())
    error = refused(world.authorize, terminal, other)
    assert (error.status, error.code) == (409, "transaction_id_reused")
    assert actions(world) == ["payment.authorized"]


def test_a_reversal_releases_the_hold_of_a_lost_answer(world, terminal):
    holder = world.cardholder(50_000)
    world.authorize(terminal, holder.tap(10_000, "T-1", world.now()))
    reversed_ = terminal.hub.post(REVERSALS_PATH, {"transaction_id": "T-1"})
    assert reversed_["status"] == "reversed"
    assert terminal.hub.post(REVERSALS_PATH, {"transaction_id": "T-1"})["status"] == "reversed"
    assert world.balance(holder.account_id) == (50_000, 50_000)
    assert actions(world) == ["payment.authorized", "payment.reversed"]


def test_a_reversal_that_overtakes_its_authorisation_refuses_the_late_one(world, terminal):
    holder = world.cardholder(50_000)
    assert terminal.hub.post(REVERSALS_PATH, {"transaction_id": "T-9"})["status"] == "reversed"
    error = refused(world.authorize, terminal, holder.tap(10_000, "T-9", world.now()))
    assert (error.status, error.code) == (409, "transaction_reversed")
    assert world.balance(holder.account_id) == (50_000, 50_000)


def test_a_terminal_of_another_unit_cannot_touch_the_payment(world, terminal):
    holder = world.cardholder(50_000)
    answer = world.authorize(terminal, holder.tap(10_000, "T-1", world.now()))
    stranger = world.terminal(world.unit("H33010200099"))
    payment_id = answer["payment_id"]
    for call in (
        lambda: stranger.hub.post(capture_path(payment_id), {}),
        lambda: stranger.hub.post(void_path(payment_id), {}),
        lambda: stranger.hub.post(refunds_path(payment_id), {"refund_id": "R", "amount": 1}),
        lambda: stranger.hub.get(payment_path(payment_id)),
    ):
        error = refused(call)
        assert (error.status, error.code) == (403, "payment_of_another_unit")
    # its reversal names its own transaction, so it cannot reach this one either
    stranger.hub.post(REVERSALS_PATH, {"transaction_id": "T-1"})
    assert world.balance(holder.account_id) == (50_000, 40_000)
    colleague = world.terminal((terminal.unit_id, terminal.institution_code))
    assert colleague.hub.post(capture_path(payment_id), {})["status"] == "captured"


def test_a_capture_after_the_hold_expired_is_refused(world, terminal, client):
    holder = world.cardholder(50_000)
    answer = world.authorize(terminal, holder.tap(10_000, "T-1", world.now()))
    world.clock.advance(client.app.state.settings.card_hold_seconds + 1)
    error = refused(terminal.hub.post, capture_path(answer["payment_id"]), {})
    assert error.code == "authorization_expired"
    world.db.transaction(lambda s: ledger.expire_holds(s, world.now()))
    assert world.balance(holder.account_id) == (50_000, 50_000)


def test_ops_read_a_payment_and_set_a_units_pin_threshold(world, terminal, client):
    holder = world.cardholder(50_000)
    answer = world.authorize(terminal, holder.tap(10_000, "T-1", world.now()))
    read = client.get(f"/api/payments/card-payments/{answer['payment_id']}")
    assert read.status_code == 200 and read.json()["status"] == "authorized"
    settings = client.put(
        f"/api/payments/units/{terminal.unit_id}/settings", json={"pin_threshold_fen": 100}
    )
    assert settings.status_code == 200 and settings.json()["pin_threshold_fen"] == 100
    assert (
        client.put("/api/payments/units/999/settings", json={"pin_threshold_fen": 1}).status_code
        == 404
    )
    declined = world.authorize(terminal, holder.tap(500, "T-2", world.now()))
    assert declined["decline_code"] == "pin_required"
