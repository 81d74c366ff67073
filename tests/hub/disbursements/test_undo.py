"""Undoing a disbursement: a reversing transfer that names the original, only with cover."""

import pytest

from hub.audit import service as audit
from hub.ledger import service as ledger
from hub.ledger.schemas import TransferIn

from .conftest import balance, error_code

START = 100_000_000


def spend(db, clock, programme, card_number, amount, transfer_id):
    """The cardholder pays a shop: money leaves the card account."""
    db.transaction(
        lambda s: ledger.transfer(
            s,
            TransferIn(
                id=transfer_id,
                debit_account_id=programme.cards[card_number],
                credit_account_id=programme.treasury,
                amount=amount,
                code="card_payment",
            ),
            clock(),
        )
    )


def test_undo_with_cover_reverses_the_original_transfer(db, clock, programme, api, order):
    api.create(order())
    clock.advance(600)
    response = api.undo("L-0001", "borrower cancelled in the cooling-off period")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["reversal_transfer_id"]) == ("undone", "disb-undo:L-0001")
    card = programme.cards["K10000001"]
    # Dr card 10,000.00 / Cr loan funding 10,000.00, naming the same disbursement.
    with db.session() as s:
        original, reversal = ledger.transfers_for(s, "disbursement:L-0001")
        assert (reversal.debit_account_id, reversal.credit_account_id, reversal.amount) == (
            card,
            programme.funding,
            1_000_000,
        )
        assert (original.id, reversal.code) == ("disb:L-0001", "reversal")
        assert ledger.check_invariants(s) == []
        (entry,) = audit.recent(s, action="disbursement.undone")
    assert entry.actor == "loan_client:micro-loans"
    assert entry.details["reverses"] == "disb:L-0001"
    assert balance(db, card) == 0 and balance(db, programme.funding) == START


def test_undo_again_answers_the_same_and_reverses_once(db, programme, api, order):
    api.create(order())
    first = api.undo("L-0001")
    again = api.undo("L-0001")
    assert again.status_code == 200 and again.json() == first.json()
    with db.session() as s:
        assert len(ledger.transfers_for(s, "disbursement:L-0001")) == 2


def test_undo_without_cover_is_refused_naming_the_shortfall(db, clock, programme, api, order):
    api.create(order())
    spend(db, clock, programme, "K10000001", 600_000, "pay:1")
    refused = api.undo("L-0001")
    assert (refused.status_code, error_code(refused)) == (409, "undo_not_covered")
    message = refused.json()["error"]["message"]
    assert "covers 4000.00 CNY of 10000.00 CNY" in message
    assert "short by 6000.00 CNY (600000 fen)" in message
    assert balance(db, programme.cards["K10000001"]) == 400_000
    assert api.get("L-0001").json()["status"] == "credited"
    # Once the card holds enough again, the undo goes through.
    db.transaction(
        lambda s: ledger.transfer(
            s,
            TransferIn(
                id="deposit:1",
                debit_account_id=programme.treasury,
                credit_account_id=programme.cards["K10000001"],
                amount=600_000,
                code="deposit",
            ),
            clock(),
        )
    )
    assert api.undo("L-0001").status_code == 200
    assert balance(db, programme.cards["K10000001"]) == 0


def test_only_a_credited_disbursement_of_ones_own_can_be_undone(db, programme, api, order):
    api.create(order(card_number="K99999999"))
    rejected = api.undo("L-0001")
    assert (rejected.status_code, error_code(rejected)) == (409, "not_undoable")
    unknown = api.undo("L-0404")
    assert (unknown.status_code, error_code(unknown)) == (404, "disbursement_not_found")
    assert balance(db, programme.funding) == START


def test_bank_operations_undo_through_the_same_rules_under_the_operators_name(
    db, clock, programme, api, order, rules
):
    from hub.disbursements import service
    from hub.disbursements.errors import UndoNotCovered

    api.create(order())
    spend(db, clock, programme, "K10000001", 600_000, "pay:1")

    def undo(s):
        return service.undo_by_operator(s, "L-0001", "fraud", clock(), rules, actor="operator:ada")

    with pytest.raises(UndoNotCovered, match=r"short by 6000\.00 CNY \(600000 fen\)"):
        db.transaction(undo)  # the same refusal as the loan system's, naming the shortfall
    assert api.get("L-0001").json()["status"] == "credited"
    db.transaction(
        lambda s: ledger.transfer(
            s,
            TransferIn(
                id="deposit:1",
                debit_account_id=programme.treasury,
                credit_account_id=programme.cards["K10000001"],
                amount=600_000,
                code="deposit",
            ),
            clock(),
        )
    )
    assert db.transaction(undo).status == "undone"
    assert api.undo("L-0001").json()["status"] == "undone"  # the client's undo answers the same
    with db.session() as s:
        (entry,) = audit.recent(s, action="disbursement.undone")
        assert len(ledger.transfers_for(s, "disbursement:L-0001")) == 2
    assert (entry.actor, entry.details["reason"]) == ("operator:ada", "fraud")
    assert balance(db, programme.funding) == START
