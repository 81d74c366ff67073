"""Bad input and idempotency: each refusal has its stable code and leaves the books unchanged."""

from __future__ import annotations

import pytest

from hub.ledger import service
from hub.ledger.models import AccountStatus
from hub.ledger.schemas import AccountIn

BEFORE = {
    "bank": (10_000, 0, 0, 0),
    "unit": (0, 0, 0, 0),
    "card": (0, 10_000, 0, 0),
    "card2": (0, 0, 0, 0),
}


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"debit_account_id": 999, "credit_account_id": "unit"}, "debit_account_not_found"),
        ({"debit_account_id": "card", "credit_account_id": 999}, "credit_account_not_found"),
        ({"amount": 0}, "amount_must_be_positive"),
        ({"amount": -5}, "amount_must_be_positive"),
        ({"amount": 2**63}, "amount_too_large"),
        ({"credit_account_id": "card"}, "accounts_must_be_different"),
        ({"currency": "USD"}, "transfer_currency_mismatch"),
        ({"amount": 10_001}, "exceeds_credits"),
        ({"timeout": 30}, "timeout_reserved_for_pending_transfer"),
        ({"pending": True, "post_pending": True}, "flags_are_mutually_exclusive"),
        ({"pending_id": "x"}, "pending_id_must_be_empty"),
    ],
)
def test_refused_transfer_moves_nothing(books, fields, code):
    body = {"id": "t1", "debit_account_id": "card", "credit_account_id": "unit", "amount": 100}
    body |= fields
    for side in ("debit_account_id", "credit_account_id"):
        if isinstance(body[side], str):
            body[side] = books.ids[body[side]]
    from hub.ledger.schemas import TransferIn

    assert books.post(TransferIn(code="card_payment", **body)) == [code]
    assert books.table() == BEFORE
    assert books.check() == []


def test_mismatched_account_currencies_are_refused(books, db, clock):
    usd = db.transaction(
        lambda s: service.create_account(
            s, AccountIn(kind="fees", owner_ref="x", currency="USD"), clock()
        )
    )
    books.ids["usd"] = usd.id
    assert books.post(books.t("t1", "bank", "usd", 100)) == ["accounts_must_have_the_same_currency"]


def test_hold_refusals(books):
    books.post(books.t("h1", "card", "unit", 3_000, pending=True))
    assert books.post(books.t("c1", pending_id="h1", amount=3_001, post_pending=True)) == [
        "exceeds_pending_transfer_amount"
    ]
    assert books.post(books.t("c2", pending_id="nope", post_pending=True)) == [
        "pending_transfer_not_found"
    ]
    assert books.post(books.t("c3", pending_id="open:card", post_pending=True)) == [
        "pending_transfer_not_pending"
    ]
    assert books.post(books.t("c4", "card2", pending_id="h1", post_pending=True)) == [
        "pending_transfer_has_different_debit_account"
    ]
    assert books.post(books.t("v1", pending_id="h1", amount=10, void_pending=True)) == [
        "pending_transfer_has_different_amount"
    ]
    assert books.table()["card"] == (0, 10_000, 3_000, 0)
    assert books.check() == []


def test_same_id_same_fields_returns_exists_and_different_fields_is_refused(books):
    assert books.post(books.t("p1", "card", "unit", 100)) == ["ok"]
    assert books.post(books.t("p1", "card", "unit", 100)) == ["exists"]
    assert books.post(books.t("p1", "card", "unit", 101)) == ["exists_with_different_fields"]
    assert books.post(books.t("p1", "card2", "unit", 100)) == ["exists_with_different_fields"]
    assert books.table()["card"] == (100, 10_000, 0, 0)


def test_a_failed_transfer_stays_failed_under_its_id(books):
    assert books.post(books.t("big", "card", "unit", 20_000)) == ["exceeds_credits"]
    books.post(books.t("topup", "bank", "card", 50_000, code="deposit"))
    # Enough money now, but the id already failed: a retry must not change the answer.
    assert books.post(books.t("big", "card", "unit", 20_000)) == ["exceeds_credits"]
    assert books.table()["card"] == (0, 60_000, 0, 0)


def test_duplicate_ids_inside_one_batch(books):
    assert books.post(books.t("p1", "card", "unit", 100), books.t("p1", "card", "unit", 100)) == [
        "ok",
        "exists",
    ]


def test_a_batch_that_resends_a_hold_and_voids_it_locks_the_holds_accounts(books):
    assert books.post(books.t("h1", "card", "unit", 300, pending=True)) == ["ok"]
    # The re-sent hold names other accounts: only the stored one's accounts say what to lock.
    resent = books.t("h1", "card2", "bank", 5, pending=True, timeout=60)
    assert books.post(books.t("v1", pending_id="h1", void_pending=True), resent) == [
        "ok",
        "exists_with_different_fields",
    ]
    assert books.table()["card"] == (0, 10_000, 0, 0)
    assert books.check() == []


def test_open_chain_is_refused_whole(books):
    assert books.post(books.t("a", "card", "unit", 1, linked=True)) == ["linked_event_chain_open"]
    assert books.table() == BEFORE


def test_frozen_account_refuses_debits_but_takes_credits(books, db):
    db.transaction(lambda s: service.set_account_status(s, books.ids["card"], AccountStatus.FROZEN))
    assert books.post(books.t("out", "card", "unit", 100)) == ["debit_account_frozen"]
    assert books.post(books.t("in", "bank", "card", 100, code="deposit")) == ["ok"]
    db.transaction(lambda s: service.set_account_status(s, books.ids["card"], AccountStatus.CLOSED))
    assert books.post(books.t("in2", "bank", "card", 100, code="deposit")) == [
        "credit_account_closed"
    ]


class TestApi:
    def test_single_transfer_answers_4xx_with_stable_codes(self, client, books):
        body = {
            "id": "api1",
            "debit_account_id": books.ids["card"],
            "credit_account_id": books.ids["unit"],
            "amount": 100,
            "code": "card_payment",
        }
        assert client.post("/api/ledger/transfers", json=body).status_code == 201
        assert client.post("/api/ledger/transfers", json=body).status_code == 200
        changed = client.post("/api/ledger/transfers", json=body | {"amount": 5})
        assert changed.status_code == 409
        assert changed.json()["error"]["code"] == "exists_with_different_fields"
        for amount, code in [(0, "amount_must_be_positive"), (-1, "amount_must_be_positive")]:
            r = client.post("/api/ledger/transfers", json=body | {"id": "z", "amount": amount})
            assert (r.status_code, r.json()["error"]["code"]) == (422, code)
        r = client.post("/api/ledger/transfers", json=body | {"id": "z", "amount": 2**64})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "amount_too_large")
        for bad in (1.5, "100", None):
            r = client.post("/api/ledger/transfers", json=body | {"id": "z", "amount": bad})
            assert r.status_code == 422 and r.json()["error"]["code"] in (
                "invalid_request",
                "amount_required",
            )
        r = client.post("/api/ledger/transfers", json=body | {"id": "z", "debit_account_id": 999})
        assert (r.status_code, r.json()["error"]["code"]) == (404, "debit_account_not_found")
        assert books.table()["card"] == (100, 10_000, 0, 0)

    def test_batch_returns_a_result_per_transfer(self, client, books):
        t = {"debit_account_id": books.ids["card"], "credit_account_id": books.ids["unit"]}
        batch = [
            t | {"id": "b1", "amount": 100, "code": "card_payment"},
            t | {"id": "b2", "amount": 99_999, "code": "card_payment"},
            t | {"id": "b1", "amount": 100, "code": "card_payment"},
        ]
        r = client.post("/api/ledger/transfers/batch", json={"transfers": batch})
        assert r.status_code == 200
        assert [x["result"] for x in r.json()] == ["ok", "exceeds_credits", "exists"]

    def test_account_history_pages_with_a_cursor(self, client, books):
        for i in range(5):
            books.post(books.t(f"p{i}", "card", "unit", 10))
        card = books.ids["card"]
        first = client.get(f"/api/ledger/accounts/{card}/transfers", params={"limit": 4}).json()
        assert [t["id"] for t in first["items"]] == ["open:card", "p0", "p1", "p2"]
        rest = client.get(
            f"/api/ledger/accounts/{card}/transfers",
            params={"limit": 4, "cursor": first["next_cursor"]},
        ).json()
        assert [t["id"] for t in rest["items"]] == ["p3", "p4"] and rest["next_cursor"] is None
        balance = client.get(f"/api/ledger/accounts/{card}/balance").json()
        assert balance["posted"] == 10_000 - 50 and balance["available"] == 10_000 - 50

    def test_accounts_list_by_kind_with_a_cursor(self, client, books):
        cards = client.get("/api/ledger/accounts", params={"kind": "card", "limit": 1}).json()
        assert [a["owner_ref"] for a in cards["items"]] == ["K1"]
        rest = client.get(
            "/api/ledger/accounts", params={"kind": "card", "cursor": cards["next_cursor"]}
        ).json()
        assert [a["owner_ref"] for a in rest["items"]] == ["K2"] and rest["next_cursor"] is None

    def test_api_needs_the_ops_token(self, client):
        r = client.get("/api/ledger/accounts/1", headers={"Authorization": "Bearer wrong"})
        assert (r.status_code, r.json()["error"]["code"]) == (401, "unauthorized")

    def test_unknown_account_is_404(self, client):
        r = client.get("/api/ledger/accounts/424242")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "account_not_found")
