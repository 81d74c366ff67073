"""Payment search and the day's figures for bank operations, from the payments themselves.

A small district day at one hospital and one pharmacy: card taps (captured, declined, held),
a payment code, a bill code, a refund, and a tap just after local midnight that is still the
28th in UTC. Code and bill payments go through the terminal and cardholder APIs; card taps are
opened through the payments service, as the tap endpoint does after the issuer's checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from hub.gateway import service as gateway
from hub.issuer import service as issuer
from hub.payments import service as payments
from hub.payments.models import Channel
from hub.payments.schemas import PaymentSearch, SearchChannel
from tests.hub.payments.qr_desk import QrDesk

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 11, 29)  # the test clock's local day
ZHANG, WANG, LI = "K10000001", "K10000002", "K10000003"  # PANs ...0003, ...0011, ...0029
OPS = payments.Caller("operator:ada", None)
PHARMACY = "P33010200007"


@dataclass
class Day:
    """The payment ids of the day, by what they are."""

    night_tap: int  # 00:30 local on the 29th, Zhang, at the pharmacy
    zhang_tap: int  # captured 100.00, then 30.00 refunded
    wang_declined: int  # over Wang's balance
    li_held: int  # authorised, never captured
    wang_code: int  # payment code 23.72
    zhang_bill: int  # bill HIS000000042, 18.00


def _tap(desk: QrDesk, unit: dict, card_number: str, amount: int, key: str, capture: bool) -> int:
    def work(s) -> int:
        card = issuer.find_card(s, card_number)
        caller = payments.Caller("terminal:test", unit["id"], unit["institution_code"])
        hold = payments.HoldRequest(
            idempotency_key=key,
            channel=Channel.CARD_TAP,
            card_id=card.id,
            card_account_id=card.account_id,
            amount=amount,
            caller=caller,
            timeout_seconds=300,
            transaction_id=key,
            pan_masked=card.pan_masked,
        )
        opened = (payments.pay_card if capture else payments.hold_card)(s, hold, desk.clock())
        return opened.id

    return desk.db.transaction(work)


@pytest.fixture
def day(desk: QrDesk) -> Day:
    pharmacy = desk.new_unit(PHARMACY, "Daming Lake Pharmacy")
    desk.clock.now = datetime(2026, 11, 28, 15, 50, tzinfo=UTC)  # 23:50 local, the 28th
    _tap(desk, pharmacy, WANG, 5_00, "eve-1", capture=True)
    desk.clock.now = datetime(2026, 11, 28, 16, 30, tzinfo=UTC)  # 00:30 local, the 29th
    night = _tap(desk, pharmacy, ZHANG, 12_00, "night-1", capture=True)
    desk.clock.now = datetime(2026, 11, 29, 2, 0, tzinfo=UTC)  # 10:00 local
    zhang = _tap(desk, desk.unit, ZHANG, 100_00, "tap-1", capture=True)
    desk.db.transaction(lambda s: payments.refund(s, zhang, "r-1", 30_00, OPS, desk.clock()))
    declined = _tap(desk, desk.unit, WANG, 5_000_00, "tap-2", capture=True)
    held = _tap(desk, desk.unit, LI, 10_00, "tap-3", capture=False)
    desk.clock.advance(3600)  # 11:00 local
    paid = desk.terminal.pay(desk.payment_code(desk.cardholder(WANG)), 2372, "sale-1")
    assert paid.status_code == 200, paid.text
    bill = desk.terminal.post(
        "/api/terminal/bills", {"bill_number": "HIS000000042", "amount_fen": 1800}
    ).json()
    billed = desk.client.post(
        "/api/cardholder/bills/pay",
        json={"payload": bill["payload"]},
        headers=desk.cardholder(ZHANG),
    )
    assert billed.status_code == 200, billed.text
    return Day(night, zhang, declined, held, paid.json()["payment_id"], billed.json()["payment_id"])


def _ids(desk: QrDesk, **filters: object) -> list[int]:
    query = PaymentSearch.model_validate(filters)
    with desk.db.session() as s:
        return [p.id for p in payments.search_payments(s, query, ZONE).items]


def test_newest_first_across_channels_and_units(desk, day):
    assert _ids(desk, day_from=DAY) == [
        day.zhang_bill,
        day.wang_code,
        day.li_held,
        day.wang_declined,
        day.zhang_tap,
        day.night_tap,
    ]


def test_a_card_is_found_by_last_four_first_six_or_both(desk, day):
    zhang = [day.zhang_bill, day.zhang_tap, day.night_tap]
    assert _ids(desk, card="0003") == zhang
    assert _ids(desk, card="623170******0003") == zhang
    assert _ids(desk, card="623170*0003", day_from=DAY) == zhang
    assert _ids(desk, card="6231700003") == zhang
    assert len(_ids(desk, card="623170")) == 7  # every card of the day's BIN
    assert _ids(desk, card="0029") == [day.li_held]
    assert _ids(desk, card="9999") == []
    assert _ids(desk, card="622848*0003") == []


def test_status_channel_and_unit_narrow_the_search(desk, day):
    assert _ids(desk, status="declined") == [day.wang_declined]
    assert _ids(desk, status="authorized") == [day.li_held]
    assert _ids(desk, channel="payment_code") == [day.wang_code]
    assert _ids(desk, channel="bill_code") == [day.zhang_bill]
    assert _ids(desk, channel="checkout") == []
    taps = _ids(desk, channel="card_tap", day_from=DAY)
    assert taps == [day.li_held, day.wang_declined, day.zhang_tap, day.night_tap]
    with desk.db.session() as s:
        pharmacy = next(u for u in gateway.list_units(s) if u.institution_code == PHARMACY)
    assert _ids(desk, unit_id=pharmacy.id, day_from=DAY) == [day.night_tap]
    assert _ids(desk, unit_id=desk.unit["id"], card="0003") == [day.zhang_bill, day.zhang_tap]


def test_days_are_the_banks_local_days(desk, day):
    # 00:30 in Shanghai on the 29th is 16:30 UTC on the 28th: it belongs to the 29th.
    assert day.night_tap in _ids(desk, day_from=DAY, day_to=DAY)
    (evening,) = _ids(desk, day_to=date(2026, 11, 28))
    assert evening not in _ids(desk, day_from=DAY)
    assert _ids(desk, day_from=date(2026, 11, 30)) == []


def test_a_bill_code_payment_is_found_by_its_bill_number(desk, day):
    with desk.db.session() as s:
        (row,) = payments.search_payments(s, PaymentSearch(bill_number="000042"), ZONE).items
    assert (row.id, row.bill_number, row.channel) == (day.zhang_bill, "HIS000000042", "bill_code")
    assert (row.amount, row.captured, row.pan_masked) == (1800, 1800, "623170******0003")
    assert _ids(desk, bill_number="HIS000000043") == []


def test_keyset_pages_list_every_payment_once(desk, day):
    seen: list[int] = []
    before = None
    with desk.db.session() as s:
        while True:
            page = payments.search_payments(s, PaymentSearch(limit=2, before=before), ZONE)
            seen += [p.id for p in page.items]
            if page.next_before is None:
                break
            before = page.next_before
    assert seen == _ids(desk) and len(seen) == 7 == len(set(seen))


def test_the_day_summary_counts_and_sums_per_channel(desk, day):
    with desk.db.session() as s:
        summary = payments.day_summary(s, DAY, ZONE)
    by_channel = {c.channel: c for c in summary.channels}
    taps = by_channel[SearchChannel.CARD_TAP]
    # Captured today: 12.00 just after midnight and 100.00 at ten; 30.00 refunded.
    assert (taps.captured_count, taps.captured) == (2, 112_00)
    assert (taps.refunded_count, taps.refunded, taps.declined_count) == (1, 30_00, 1)
    code = by_channel[SearchChannel.PAYMENT_CODE]
    bill = by_channel[SearchChannel.BILL_CODE]
    assert (code.captured_count, code.captured, code.refunded) == (1, 2372, 0)
    assert (bill.captured_count, bill.captured, bill.refunded) == (1, 1800, 0)
    assert by_channel[SearchChannel.CHECKOUT].captured_count == 0
    codes = summary.of(SearchChannel.PAYMENT_CODE, SearchChannel.BILL_CODE)
    assert (codes.captured_count, codes.captured) == (2, 2372 + 1800)
    # Local hours: 00:30 one capture, 10:00 one, 11:00 two.
    assert len(summary.captures_per_hour) == 24
    assert {h: n for h, n in enumerate(summary.captures_per_hour) if n} == {0: 1, 10: 1, 11: 2}
    with desk.db.session() as s:
        eve = payments.day_summary(s, date(2026, 11, 28), ZONE)
    assert eve.of(*SearchChannel).captured == 5_00


@pytest.mark.parametrize("typed", ["6231700000000003", "12345", "62317000*00003", "*", "abc"])
def test_a_card_query_is_masked_digits_only(typed):
    with pytest.raises(ValidationError) as refused:
        PaymentSearch(card=typed)
    assert "last four digits" in str(refused.value.errors()[0]["msg"])


def test_blank_form_fields_are_absent_and_days_must_be_in_order():
    assert PaymentSearch.model_validate({"card": " ", "status": "", "channel": ""}) == (
        PaymentSearch()
    )
    with pytest.raises(ValidationError):
        PaymentSearch(day_from=date(2026, 11, 29), day_to=date(2026, 11, 28))
