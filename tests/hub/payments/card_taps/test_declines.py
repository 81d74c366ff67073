"""Every refusal of a card tap: a decline code (or a 4xx) and not a fen moved."""

from datetime import date

import pytest

from devices.agent.hub_client import HubRefused
from devices.emv.tlv import Tlv, decode, encode
from hub.issuer import service as issuer
from hub.issuer.models import CardStatus

APPROVED_BALANCE = 50_000
# Decisions that do not depend on the database run on SQLite only; the counter and PIN-tries
# tests, which rely on row locks, run on both.
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def untouched(world, holder, terminal) -> bool:
    return world.balance(holder.account_id) == (APPROVED_BALANCE, APPROVED_BALANCE) and (
        world.settlement(terminal.institution_code) == (0, 0)
    )


def with_icc(tap, tag, value):
    items = [
        Tlv(t.tag, value if t.tag == tag else t.value)
        for t in decode(bytes.fromhex(tap.body["icc_data"]))
    ]
    tap.body["icc_data"] = encode(items).hex().upper()
    return tap


def declined(world, terminal, tap, code):
    answer = world.authorize(terminal, tap)
    outcome = (answer["approved"], answer["status"], answer["decline_code"])
    assert outcome == (False, "declined", code)
    return answer


@sqlite_only
def test_a_forged_arqc_is_declined_without_an_arpc(world, terminal):
    holder = world.cardholder(APPROVED_BALANCE)
    tap = with_icc(holder.tap(1_000, "T-1", world.now()), 0x9F26, bytes(8))
    answer = declined(world, terminal, tap, "cryptogram_invalid")
    assert answer["arpc"] is None and answer["response_code"] == "05"
    assert tap.finish(answer).cryptogram.kind == "AAC"
    assert untouched(world, holder, terminal)


@sqlite_only
def test_an_amount_other_than_the_one_the_card_signed_is_refused(world, terminal):
    holder = world.cardholder(APPROVED_BALANCE)
    tap = holder.tap(1_000, "T-1", world.now())
    tap.body["amount"] = 100
    with pytest.raises(HubRefused) as caught:
        world.authorize(terminal, tap)
    assert (caught.value.status, caught.value.code) == (422, "amount_mismatch")
    assert untouched(world, holder, terminal)


def test_a_replayed_cryptogram_is_declined(world, terminal):
    holder = world.cardholder(APPROVED_BALANCE)
    tap = holder.tap(1_000, "T-1", world.now())
    assert world.authorize(terminal, tap)["approved"]
    tap.body["transaction_id"] = "T-2"
    answer = declined(world, terminal, tap, "atc_replayed")
    assert answer["arpc"] is None
    assert world.balance(holder.account_id) == (APPROVED_BALANCE, APPROVED_BALANCE - 1_000)


@sqlite_only
def test_a_counter_that_goes_backwards_or_jumps_too_far_is_declined(world, terminal):
    holder = world.cardholder(APPROVED_BALANCE)
    holder.chip.profile.atc = 9
    assert world.authorize(terminal, holder.tap(1_000, "T-1", world.now()))["approved"]
    holder.chip.profile.atc = 3  # a cloned card with an older counter
    declined(world, terminal, holder.tap(1_000, "T-2", world.now()), "atc_replayed")
    holder.chip.profile.atc = 10 + 5_000
    declined(world, terminal, holder.tap(1_000, "T-3", world.now()), "atc_out_of_window")
    assert world.balance(holder.account_id) == (APPROVED_BALANCE, APPROVED_BALANCE - 1_000)


@sqlite_only
def test_an_unknown_card_is_declined(world, terminal):
    holder = world.cardholder(APPROVED_BALANCE)
    tap = holder.tap(1_000, "T-1", world.now())
    tap.body["card"]["pan"] = "6231700000000099990"[:-1] + "4"
    answer = declined(world, terminal, tap, "card_unknown")
    assert answer["arpc"] is None and answer["pan_masked"] is None
    tap = holder.tap(1_000, "T-2", world.now())
    tap.body["card"]["card_number"] = "K99999999"
    declined(world, terminal, tap, "card_unknown")
    assert untouched(world, holder, terminal)


@pytest.mark.parametrize(
    ("status", "code"), [(CardStatus.BLOCKED, "card_blocked"), (CardStatus.LOST, "card_not_active")]
)
@sqlite_only
def test_a_blocked_or_lost_card_is_declined_with_an_authentic_answer(world, terminal, status, code):
    holder = world.cardholder(APPROVED_BALANCE)
    world.db.transaction(
        lambda s: issuer.set_card_status(s, issuer.card_by_number(s, holder.card_number).id, status)
    )
    tap = holder.tap(1_000, "T-1", world.now())
    answer = declined(world, terminal, tap, code)
    done = tap.finish(answer)
    assert done.issuer_authenticated and done.cryptogram.kind == "AAC"
    assert untouched(world, holder, terminal)


@sqlite_only
def test_an_expired_card_is_declined(world, terminal):
    holder = world.cardholder(APPROVED_BALANCE, expiry=date(2026, 10, 31))
    answer = declined(world, terminal, holder.tap(1_000, "T-1", world.now()), "card_expired")
    assert answer["response_code"] == "54"
    assert untouched(world, holder, terminal)


@sqlite_only
def test_insufficient_funds_is_declined_and_the_card_hears_it_authentically(world, terminal):
    terminal.agree_pin_key()
    holder = world.cardholder(APPROVED_BALANCE)
    tap = holder.tap(APPROVED_BALANCE + 1, "T-1", world.now(), pin="123456", terminal=terminal)
    answer = declined(world, terminal, tap, "insufficient_funds")
    assert answer["response_code"] == "51"
    done = tap.finish(answer)
    assert done.issuer_authenticated and done.cryptogram.kind == "AAC"
    assert untouched(world, holder, terminal)


def test_above_the_threshold_a_pin_is_required_and_three_wrong_ones_block_the_card(
    world, terminal, client
):
    client.put(f"/api/payments/units/{terminal.unit_id}/settings", json={"pin_threshold_fen": 500})
    terminal.agree_pin_key()
    holder = world.cardholder(APPROVED_BALANCE, pin="246810")
    declined(world, terminal, holder.tap(500, "T-0", world.now()), "pin_required")
    assert world.authorize(terminal, holder.tap(499, "T-1", world.now()))["approved"]
    right = holder.tap(600, "T-2", world.now(), pin="246810", terminal=terminal)
    assert world.authorize(terminal, right)["approved"]
    for n, code in enumerate(["pin_incorrect", "pin_incorrect", "pin_tries_exceeded"]):
        tap = holder.tap(600, f"T-W{n}", world.now(), pin="135790", terminal=terminal)
        assert declined(world, terminal, tap, code)["response_code"] in ("55", "75")
    again = holder.tap(600, "T-3", world.now(), pin="246810", terminal=terminal)
    declined(world, terminal, again, "card_blocked")
    with world.db.session() as s:
        assert issuer.card_by_number(s, holder.card_number).status == CardStatus.BLOCKED
    assert world.balance(holder.account_id) == (APPROVED_BALANCE, APPROVED_BALANCE - 1_099)


@sqlite_only
def test_a_right_pin_resets_the_tries(world, terminal):
    terminal.agree_pin_key()
    holder = world.cardholder(APPROVED_BALANCE, pin="246810")
    for n in range(2):
        tap = holder.tap(100, f"T-W{n}", world.now(), pin="000000", terminal=terminal)
        declined(world, terminal, tap, "pin_incorrect")
    assert world.authorize(
        terminal, holder.tap(100, "T-R", world.now(), pin="246810", terminal=terminal)
    )["approved"]
    tap = holder.tap(100, "T-W3", world.now(), pin="000000", terminal=terminal)
    declined(world, terminal, tap, "pin_incorrect")


@sqlite_only
def test_a_pin_block_under_a_retired_pin_key_is_refused(world, terminal):
    terminal.agree_pin_key()
    old_key, old_version = terminal.pin_key, terminal.pin_key_version
    terminal.agree_pin_key()
    assert terminal.pin_key_version == old_version + 1 and terminal.pin_key != old_key
    holder = world.cardholder(APPROVED_BALANCE)
    terminal.pin_key, terminal.pin_key_version = old_key, old_version
    with pytest.raises(HubRefused) as caught:
        world.authorize(
            terminal, holder.tap(100, "T-1", world.now(), pin="123456", terminal=terminal)
        )
    assert (caught.value.status, caught.value.code) == (409, "pin_key_unknown")
    assert untouched(world, holder, terminal)


@sqlite_only
def test_a_card_of_an_unknown_key_version_is_declined_and_old_versions_still_verify(
    world, terminal
):
    old = world.cardholder(APPROVED_BALANCE)
    world.db.transaction(lambda s: issuer.rotate_issuer_key(s, world.secrets, world.now()))
    assert world.authorize(terminal, old.tap(100, "T-1", world.now()))["approved"]
    stranger = world.cardholder(APPROVED_BALANCE, key_index=9)
    declined(world, terminal, stranger.tap(100, "T-2", world.now()), "cryptogram_invalid")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"icc_data": "9F2608"}, "icc_data_invalid"),
        ({"icc_data": "ZZ"}, "invalid_request"),
        ({"amount": 0}, "invalid_request"),
        ({"pin_block": "12"}, "invalid_request"),
        ({"card": {"pan": "12ab"}}, "invalid_request"),
    ],
)
@sqlite_only
def test_malformed_requests_are_refused_without_echoing_the_card(world, terminal, change, code):
    holder = world.cardholder(APPROVED_BALANCE)
    tap = holder.tap(100, "T-1", world.now())
    tap.body.update(change)
    with pytest.raises(HubRefused) as caught:
        world.authorize(terminal, tap)
    assert (caught.value.status, caught.value.code) == (422, code)
    assert holder.pan not in caught.value.message and "12ab" not in caught.value.message
    assert untouched(world, holder, terminal)
