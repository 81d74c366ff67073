"""The money operations the QR and checkout flows reuse, called as a service."""

import pytest

from hub.issuer import service as issuer
from hub.payments import service as payments
from hub.payments.errors import PaymentOfAnotherUnit, TransactionIdReused, TransactionReversed
from hub.payments.models import Channel

sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


def hold(world, holder, unit, key, amount):
    with world.db.session() as s:
        card = issuer.card_by_number(s, holder.card_number)
    return payments.HoldRequest(
        idempotency_key=key,
        channel=Channel.QR_CODE,
        card_id=card.id,
        card_account_id=card.account_id,
        amount=amount,
        caller=payments.Caller("checkout", unit[0], unit[1]),
        timeout_seconds=300,
    )


def test_a_one_step_payment_posts_once_per_key(world, unit):
    holder = world.cardholder(10_000)
    request = hold(world, holder, unit, "qr:1", 2_500)
    first = world.db.transaction(lambda s: payments.pay_card(s, request, world.now()))
    again = world.db.transaction(lambda s: payments.pay_card(s, request, world.now()))
    assert (first.id, first.status, first.captured) == (again.id, "captured", 2_500)
    assert world.balance(holder.account_id) == (7_500, 7_500)
    assert world.settlement(unit[1]) == (2_500, 2_500)
    other = hold(world, holder, unit, "qr:1", 2_600)
    with pytest.raises(TransactionIdReused):
        world.db.transaction(lambda s: payments.pay_card(s, other, world.now()))


@sqlite_only
def test_a_hold_beyond_the_balance_is_a_declined_payment(world, unit):
    holder = world.cardholder(1_000)
    request = hold(world, holder, unit, "qr:2", 1_001)
    payment = world.db.transaction(lambda s: payments.hold_card(s, request, world.now()))
    assert (payment.status, payment.decline_code) == ("declined", "insufficient_funds")
    assert world.balance(holder.account_id) == (1_000, 1_000)


@sqlite_only
def test_another_unit_cannot_capture_and_a_reversal_can_come_first(world, unit):
    holder = world.cardholder(5_000)
    payment = world.db.transaction(
        lambda s: payments.hold_card(s, hold(world, holder, unit, "qr:3", 1_000), world.now())
    )
    stranger = payments.Caller("checkout", unit[0] + 1000, "H00000000000")
    with pytest.raises(PaymentOfAnotherUnit):
        world.db.transaction(lambda s: payments.capture(s, payment.id, None, stranger, world.now()))
    caller = payments.Caller("checkout", unit[0], unit[1])
    mark = world.db.transaction(
        lambda s: payments.reverse(s, "qr:4", caller, world.now(), Channel.QR_CODE)
    )
    assert (mark.status, mark.channel) == ("reversed", "qr_code")
    with pytest.raises(TransactionReversed):
        world.db.transaction(
            lambda s: payments.hold_card(s, hold(world, holder, unit, "qr:4", 1_000), world.now())
        )
