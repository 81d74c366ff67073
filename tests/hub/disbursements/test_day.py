"""A mixed day end to end: the loan system simulator sends, hears back, and reconciles."""

import random
from datetime import date

import pytest
from typer.testing import CliRunner

from hub import cli
from hub.app import outbox_worker
from hub.disbursements import clients
from hub.issuer import service as issuer
from hub.issuer.models import CardStatus
from hub.ledger import service as ledger
from hub.ledger.schemas import TransferIn
from integrations.loans.simulator import (
    Borrower,
    CallbackInbox,
    CallbackServer,
    LoanBook,
    make_orders,
    reconcile,
    send_orders,
    undo_loans,
)

from .conftest import CARDS, free_port


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def issued(db, clock, rules, port):
    url = f"http://127.0.0.1:{port}/callbacks"
    return db.transaction(
        lambda s: clients.create_client(s, "micro-loans", url, rules, clock(), actor="op:test")
    )


@pytest.fixture
def loan_system(issued, clock, port):
    """The loan system simulator's callback server, up all day."""
    inbox = CallbackInbox({issued.key_id: issued.secret}, clock=lambda: clock().timestamp())
    with CallbackServer(inbox, port=port) as server:
        yield server


def test_a_mixed_day_reconciles_without_a_difference(
    db, clock, settings, programme, api, order, loan_system
):
    with db.session() as s:
        blocked = issuer.card_by_number(s, "K10000003").id
    db.transaction(lambda s: issuer.set_card_status(s, blocked, CardStatus.BLOCKED))
    borrowers = [Borrower(number, card[2]) for number, card in CARDS.items()]
    orders = make_orders(
        borrowers,
        24,
        id_hash_key=settings.id_hash_key.get_secret_value().encode(),
        value_date=date(2026, 11, 29),
        prefix="DAY",
        rng=random.Random(5),
        wrong_identity_share=0.15,
    )
    orders.append(order(external_id="DAY-unknown", card_number="K99999999"))
    orders.append(order(external_id="DAY-over-cap", amount=settings.disbursement_cap_fen + 1))
    book = LoanBook()
    answers = send_orders(api, orders, book, rate=500, workers=4)
    send_orders(api, orders[:5], LoanBook(), rate=500, workers=4)  # retries: replayed, no effect
    outcomes = {a.outcome for a in answers}
    assert {"credited", "identity_mismatch", "card_blocked", "card_not_found"} <= outcomes
    assert "amount_over_cap" in outcomes
    credited = sorted(a.external_id for a in answers if a.outcome == "credited")
    # Two undos with cover; a third after the borrower spent the money is refused.
    undo_loans(api, credited[:2], book)
    spent = credited[2]
    card = programme.cards[book.orders[spent]["card_number"]]
    with db.session() as s:
        card_balance = ledger.balance(ledger.get_account(s, card)).posted
    db.transaction(
        lambda s: ledger.transfer(
            s,
            TransferIn(
                id="pay:all",
                debit_account_id=card,
                credit_account_id=programme.treasury,
                amount=card_balance,
                code="card_payment",
            ),
            clock(),
        )
    )
    (refused,) = undo_loans(api, [spent], book)
    assert refused.outcome == "undo_not_covered"

    outbox_worker(settings, db, clock).drain()
    finals = sum(1 for a in answers if a.outcome != "amount_over_cap")
    assert loan_system.inbox.wait_for(finals + 2, timeout=5)
    book.events = dict(loan_system.inbox.events)
    export = CliRunner().invoke(
        cli.app,
        ["disbursements", "export", "--date", "2026-11-29", "--out", "-"],
        env={"HUB_DATABASE_URL": db.url},
    )
    assert export.exit_code == 0, export.output
    result = reconcile(export.output, book)
    assert result.clean, result.differences
    # The trailer, as the loan system's accountant checks it.
    disbursed = sum(book.orders[x]["amount"] for x in credited)
    undone = sum(book.orders[x]["amount"] for x in credited[:2])
    trailer = export.output.strip().splitlines()[-1].split(",")
    assert trailer == [
        "trailer",
        "2026-11-29",
        str(len(credited)),
        str(disbursed),
        "2",
        str(undone),
        str(disbursed - undone),
        "",
    ]
    with db.session() as s:
        assert ledger.check_invariants(s) == []
    assert ledger_balance_moved(db, programme) == disbursed - undone


def ledger_balance_moved(db, programme):
    with db.session() as s:
        funding = ledger.balance(ledger.get_account(s, programme.funding)).posted
    return 100_000_000 - funding
