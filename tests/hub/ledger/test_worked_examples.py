"""Worked examples, written as an accountant would: each step and the books it leaves.

Columns: (debits_posted, credits_posted, debits_pending, credits_pending), in fen.
The card opened with a 100.00 CNY deposit from the bank.
"""

from __future__ import annotations


def test_card_payment_hold_then_capture(books):
    assert books.post(books.t("h1", "card", "unit", 3_000, pending=True)) == ["ok"]
    assert books.table() == {
        "bank": (10_000, 0, 0, 0),
        "unit": (0, 0, 0, 3_000),
        "card": (0, 10_000, 3_000, 0),
        "card2": (0, 0, 0, 0),
    }
    assert books.post(books.t("c1", pending_id="h1", post_pending=True)) == ["ok"]
    assert books.table() == {
        "bank": (10_000, 0, 0, 0),
        "unit": (0, 3_000, 0, 0),
        "card": (3_000, 10_000, 0, 0),
        "card2": (0, 0, 0, 0),
    }
    assert books.check() == []


def test_partial_capture_releases_the_rest(books):
    books.post(books.t("h1", "card", "unit", 3_000, pending=True))
    assert books.post(books.t("c1", pending_id="h1", amount=2_250, post_pending=True)) == ["ok"]
    assert books.table()["card"] == (2_250, 10_000, 0, 0)
    assert books.table()["unit"] == (0, 2_250, 0, 0)
    # The hold resolved once: a second capture of the rest is refused.
    assert books.post(books.t("c2", pending_id="h1", amount=750, post_pending=True)) == [
        "pending_transfer_already_posted"
    ]
    assert books.check() == []


def test_void_releases_the_hold_and_moves_nothing(books):
    books.post(books.t("h1", "card", "unit", 3_000, pending=True))
    assert books.post(books.t("v1", pending_id="h1", void_pending=True)) == ["ok"]
    assert books.table()["card"] == (0, 10_000, 0, 0)
    assert books.table()["unit"] == (0, 0, 0, 0)
    assert books.post(books.t("c1", pending_id="h1", post_pending=True)) == [
        "pending_transfer_already_voided"
    ]
    assert books.check() == []


def test_expired_hold_is_released_by_the_sweeper_and_cannot_be_captured(books, db, clock):
    from hub.ledger import service

    books.post(books.t("h1", "card", "unit", 3_000, pending=True, timeout=60))
    clock.advance(59)
    assert db.transaction(lambda s: service.expire_holds(s, clock())) == 0
    clock.advance(1)
    assert db.transaction(lambda s: service.expire_holds(s, clock())) == 1
    assert books.table()["card"] == (0, 10_000, 0, 0)
    assert books.post(books.t("c1", pending_id="h1", post_pending=True)) == [
        "pending_transfer_expired"
    ]
    assert books.check() == []


def test_capture_after_timeout_fails_even_before_the_sweeper_runs(books, clock):
    books.post(books.t("h1", "card", "unit", 3_000, pending=True, timeout=60))
    clock.advance(60)  # the hold's last instant has passed
    assert books.post(books.t("c1", pending_id="h1", post_pending=True)) == [
        "pending_transfer_expired"
    ]
    assert books.table()["card"] == (0, 10_000, 0, 0)
    assert books.check() == []


def test_linked_chain_whose_last_leg_fails_leaves_nothing(books):
    # A checkout: fund pays 40.00, the card pays 150.00 but holds only 100.00.
    chain = [
        books.t("fund", "bank", "unit", 4_000, code="insurance_fund", linked=True),
        books.t("acct", "bank", "unit", 1_000, code="personal_account", linked=True),
        books.t("self", "card", "unit", 15_000, code="card_payment"),
    ]
    assert books.post(*chain) == ["linked_event_failed", "linked_event_failed", "exceeds_credits"]
    assert books.table() == {
        "bank": (10_000, 0, 0, 0),
        "unit": (0, 0, 0, 0),
        "card": (0, 10_000, 0, 0),
        "card2": (0, 0, 0, 0),
    }
    # The failed leg keeps failing under its id; the others were never written.
    assert books.post(books.t("self", "card", "unit", 500, code="card_payment")) == [
        "exceeds_credits"
    ]
    assert books.post(books.t("fund", "bank", "unit", 4_000, code="insurance_fund")) == ["ok"]
    assert books.check() == []


def test_linked_chain_that_succeeds_posts_every_leg(books):
    chain = [
        books.t("fund", "bank", "unit", 4_000, code="insurance_fund", linked=True),
        books.t("self", "card", "unit", 6_000, code="card_payment"),
    ]
    assert books.post(*chain) == ["ok", "ok"]
    assert books.table()["unit"] == (0, 10_000, 0, 0)
    assert books.table()["card"] == (6_000, 10_000, 0, 0)
    assert books.check() == []


def test_an_account_read_before_a_transfer_shows_it_in_the_same_transaction(books, db, clock):
    from hub.ledger import service

    def work(s):
        card = service.get_account(s, books.ids["card"])
        assert service.balance(card).available == 10_000
        service.transfer(s, books.t("p1", "card", "unit", 2_500), clock())
        return service.balance(service.get_account(s, books.ids["card"])).available

    assert db.transaction(work) == 7_500
