"""Creating disbursements: the worked example, idempotency, and every refusal."""

from datetime import date, timedelta

import pytest
from sqlalchemy import event

from hub.disbursements import clients, posting, service
from hub.disbursements.schemas import DisbursementIn
from hub.issuer import service as issuer
from hub.issuer.models import CardStatus
from hub.ledger import service as ledger
from hub.ledger.models import AccountStatus
from hub.ledger.schemas import TransferIn
from hub.outbox import service as outbox
from integrations.loans.client import ClientKey, DisbursementApi

from .conftest import balance, error_code, fund

START = 100_000_000  # the programme's funding in the fixture


def test_worked_example_one_transfer_from_loan_funding_to_the_card(db, programme, api, order):
    response = api.create(order())
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "credited" and body["transfer_id"] == "disb:L-0001"
    card = programme.cards["K10000001"]
    # Dr loan funding 10,000.00 / Cr card K10000001 10,000.00: one transfer, nothing else.
    with db.session() as s:
        (t,) = ledger.transfers_for(s, "disbursement:L-0001")
        assert (t.debit_account_id, t.credit_account_id, t.amount, t.code) == (
            programme.funding,
            card,
            1_000_000,
            "loan_disbursement",
        )
        assert ledger.check_invariants(s) == []
        (callback,) = outbox.messages(s, topic=service.CALLBACK_TOPIC)
    assert balance(db, programme.funding) == START - 1_000_000
    assert balance(db, card) == 1_000_000
    assert callback.event_id == "disb.credited.L-0001"
    assert callback.payload["event"]["disbursement"]["status"] == "credited"


def test_same_order_again_returns_the_first_result_and_moves_no_more_money(
    db, programme, api, order
):
    first = api.create(order())
    again = api.create(order())
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert balance(db, programme.cards["K10000001"]) == 1_000_000


def test_reused_external_id_with_a_different_order_is_refused(db, programme, api, order):
    api.create(order())
    response = api.create(order(amount=2_000_000))
    assert response.status_code == 409 and error_code(response) == "external_id_reused"
    assert balance(db, programme.cards["K10000001"]) == 1_000_000


def test_order_in_flight_answers_409_and_after_its_lease_a_retry_credits_once(
    db, clock, programme, api, order, rules, issued
):
    # The first request committed its "processing" row, then the hub died (or is still busy).
    first = DisbursementIn(**order())
    client_id = db.transaction(lambda s: clients.get_client(s, issued.client).id)
    db.transaction(lambda s: service.accept(s, client_id, first, rules, clock()))
    response = api.create(order())
    assert response.status_code == 409 and error_code(response) == "disbursement_in_flight"
    assert balance(db, programme.cards["K10000001"]) == 0
    clock.advance(rules.in_flight_seconds + 1)
    assert api.create(order()).status_code == 201
    assert api.create(order()).status_code == 201
    assert balance(db, programme.cards["K10000001"]) == 1_000_000


def test_hub_killed_while_posting_leaves_nothing_and_the_retry_credits_once(
    db, clock, programme, api, order, rules, issued
):
    first = DisbursementIn(**order())
    client_id = db.transaction(lambda s: clients.get_client(s, issued.client).id)
    db.transaction(lambda s: service.accept(s, client_id, first, rules, clock()))

    def posted_then_killed(s):
        posting.settle(s, [first.external_id], rules, clock())
        raise SystemExit("killed before commit")

    with pytest.raises(SystemExit):
        db.transaction(posted_then_killed)
    assert balance(db, programme.cards["K10000001"]) == 0
    clock.advance(rules.in_flight_seconds + 1)
    assert api.create(order()).status_code == 201
    assert balance(db, programme.cards["K10000001"]) == 1_000_000


class Killed(BaseException):
    """The process dies here: nothing after this statement reaches the database."""


def test_hub_killed_before_any_statement_leaves_one_credit_after_the_retry(
    db, clock, programme, api, order, rules, issued
):
    client_id = db.transaction(lambda s: clients.get_client(s, issued.client).id)
    count = {"n": 0, "kill_at": 0}

    def before(*args):
        count["n"] += 1
        if count["n"] == count["kill_at"]:
            raise Killed

    def first_attempt(o):
        count["n"] = 0
        db.transaction(lambda s: service.accept(s, client_id, o, rules, clock()))
        db.transaction(lambda s: posting.settle(s, [o.external_id], rules, clock()))

    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "commit", before)
    try:
        first_attempt(DisbursementIn(**order(external_id="K-warm")))  # opens the day's totals
        first_attempt(DisbursementIn(**order(external_id="K-0")))  # not killed: count them
        statements = count["n"]
        for kill_at in range(1, statements + 1):
            count["kill_at"] = kill_at
            with pytest.raises(Killed):
                first_attempt(DisbursementIn(**order(external_id=f"K-{kill_at}")))
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "commit", before)
    clock.advance(rules.in_flight_seconds + 1)
    for kill_at in range(1, statements + 1):
        assert api.create(order(external_id=f"K-{kill_at}")).status_code == 201
    assert statements >= 10
    assert balance(db, programme.cards["K10000001"]) == (statements + 2) * 1_000_000
    with db.session() as s:
        for kill_at in range(statements + 1):
            assert len(ledger.transfers_for(s, f"disbursement:K-{kill_at}")) == 1
        assert ledger.check_invariants(s) == []


def test_hub_killed_after_commit_before_answering_replays_the_credit(
    db, clock, programme, api, order, rules, issued
):
    first = DisbursementIn(**order())
    client_id = db.transaction(lambda s: clients.get_client(s, issued.client).id)
    db.transaction(lambda s: service.accept(s, client_id, first, rules, clock()))
    # Posted and committed; then the hub died before it could answer.
    db.transaction(lambda s: posting.settle(s, [first.external_id], rules, clock()))
    retry = api.create(order())
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert balance(db, programme.cards["K10000001"]) == 1_000_000


REFUSALS = [
    ({"card_number": "K99999999"}, 422, "card_not_found"),
    ({"id_number": "330102199001019999"}, 422, "identity_mismatch"),
    ({"amount": 30_000_001}, 422, "amount_over_cap"),
    ({"amount": 0}, 422, "amount_not_positive"),
    ({"amount": -500}, 422, "amount_not_positive"),
    ({"amount": 100.5}, 422, "invalid_request"),
    ({"amount": 100.0}, 422, "invalid_request"),
    ({"amount": "100"}, 422, "invalid_request"),
    ({"amount": True}, 422, "invalid_request"),
    ({"value_date": "2026-11-30"}, 422, "value_date_invalid"),
    ({"value_date": "2026-11-20"}, 422, "value_date_invalid"),
    ({"id_number_hash": "not-a-hash"}, 422, "invalid_request"),
]


def test_every_refusal_has_a_stable_code_and_moves_no_money(db, programme, api, order):
    for n, (changes, status, code) in enumerate(REFUSALS):
        response = api.create(order(external_id=f"R-{n}", **changes))
        assert (response.status_code, error_code(response)) == (status, code), changes
    assert balance(db, programme.funding) == START
    with db.session() as s:
        assert ledger.check_invariants(s) == []
        assert all(ledger.transfers_for(s, f"disbursement:R-{n}") == [] for n in range(12))


def test_card_blocked_or_with_a_closed_account_is_refused(db, programme, api, order):
    with db.session() as s:
        card_id = issuer.card_by_number(s, "K10000002").id
    db.transaction(lambda s: issuer.set_card_status(s, card_id, CardStatus.BLOCKED))
    db.transaction(
        lambda s: ledger.set_account_status(s, programme.cards["K10000003"], AccountStatus.CLOSED)
    )
    blocked = api.create(order(external_id="L-2", card_number="K10000002"))
    closed = api.create(order(external_id="L-3", card_number="K10000003"))
    assert (blocked.status_code, error_code(blocked)) == (409, "card_blocked")
    assert (closed.status_code, error_code(closed)) == (409, "card_account_not_active")
    assert balance(db, programme.funding) == START


def test_funding_account_short_is_its_own_refusal_and_final_for_that_id(
    db, clock, programme, api, order
):
    # Leave 5,000.00 in the funding account; the loan is for 10,000.00.
    db.transaction(
        lambda s: ledger.transfer(
            s,
            TransferIn(
                id="defund",
                debit_account_id=programme.funding,
                credit_account_id=programme.treasury,
                amount=START - 500_000,
                code="funding",
            ),
            clock(),
        )
    )
    response = api.create(order())
    assert (response.status_code, error_code(response)) == (409, "funding_insufficient")
    assert balance(db, programme.funding) == 500_000
    fund(db, clock, programme, 10_000_000, transfer_id="fund:2")
    again = api.create(order())  # the rejection is this order's result
    assert (again.status_code, error_code(again)) == (409, "funding_insufficient")
    assert api.create(order(external_id="L-0001b")).status_code == 201
    with db.session() as s:
        rejected = api.get("L-0001").json()
        assert (rejected["status"], rejected["reason"]) == ("rejected", "funding_insufficient")
        assert outbox.find_message(s, "disb.rejected.L-0001") is not None


def test_daily_programme_limits_are_enforced_apart_from_funding(
    db, clock, programme, api, order, settings
):
    settings.disbursement_daily_amount_fen = 2_500_000
    settings.disbursement_daily_count = 3
    assert api.create(order(external_id="D-1")).status_code == 201
    assert api.create(order(external_id="D-2")).status_code == 201
    over = api.create(order(external_id="D-3"))
    assert (over.status_code, error_code(over)) == (409, "daily_limit_exceeded")
    # The refused loan did not use up the day: 500,000 fen and one loan are left.
    assert api.create(order(external_id="D-4", amount=500_000)).status_code == 201
    by_count = api.create(order(external_id="D-5", amount=100))
    assert error_code(by_count) == "daily_limit_exceeded"
    clock.advance(24 * 3600)  # the next business day starts afresh
    tomorrow = (date(2026, 11, 29) + timedelta(days=1)).isoformat()
    assert api.create(order(external_id="D-6", value_date=tomorrow)).status_code == 201
    assert balance(db, programme.funding) == START - 3_500_000


def test_status_query_and_list_show_only_the_clients_own_disbursements(
    db, clock, programme, api, order, client, rules
):
    api.create(order(external_id="S-1"))
    api.create(order(external_id="S-2", card_number="K99999999"))
    assert api.get("S-1").json()["status"] == "credited"
    assert api.get("S-2").json()["reason"] == "card_not_found"
    missing = api.get("S-9")
    assert (missing.status_code, error_code(missing)) == (404, "disbursement_not_found")
    credited = api.list(status="credited").json()
    assert [d["external_id"] for d in credited["items"]] == ["S-1"]
    assert len(api.list(posted_on="2026-11-29").json()["items"]) == 2
    assert api.list(posted_on="2026-11-28").json()["items"] == []
    other = db.transaction(
        lambda s: clients.create_client(s, "other", "http://x/cb", rules, clock(), actor="t")
    )
    theirs = DisbursementApi(client, ClientKey(other.key_id, other.secret), clock=api.clock)
    assert theirs.get("S-1").status_code == 404
    assert theirs.list().json()["items"] == []
    reused = theirs.create(order(external_id="S-1"))
    assert error_code(reused) == "external_id_reused"
