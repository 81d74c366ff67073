"""PostgreSQL: 16 loan-system clients race to exhaust the funding account."""

import threading
from collections import defaultdict

import pytest

from hub.ledger import service as ledger
from hub.ledger.schemas import TransferIn

from .conftest import balance

pytestmark = pytest.mark.postgres

LOAN = 1_000_000
COVERED = 50  # the funding account holds exactly 50 loans
ORDERS = 80  # distinct orders; each is sent by two clients at once


@pytest.fixture
def db(pg):
    return pg


def test_sixteen_clients_never_overdraw_funding_and_credit_each_loan_once(
    db, clock, programme, api, order
):
    db.transaction(  # leave exactly COVERED loans in the funding account
        lambda s: ledger.transfer(
            s,
            TransferIn(
                id="defund",
                debit_account_id=programme.funding,
                credit_account_id=programme.treasury,
                amount=100_000_000 - COVERED * LOAN,
                code="funding",
            ),
            clock(),
        )
    )
    answers = defaultdict(list)
    lock = threading.Lock()
    start = threading.Barrier(16)

    def loan_system_client(n):
        group = n % 8  # clients n and n + 8 send the same ten orders
        start.wait()
        for k in range(10):
            external_id = f"C-{group}-{k}"
            card = ("K10000001", "K10000002", "K10000003")[k % 3]
            response = api.create(order(external_id=external_id, card_number=card, amount=LOAN))
            code = "credited" if response.status_code == 201 else response.json()["error"]["code"]
            with lock:
                answers[external_id].append(code)

    threads = [threading.Thread(target=loan_system_client, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    finals = {}
    for external_id, codes in answers.items():
        final = set(codes) - {"disbursement_in_flight"}
        assert len(final) <= 1, (external_id, codes)  # a duplicate never gets another answer
        finals[external_id] = final.pop() if final else api.get(external_id).json()["status"]
    credited = [x for x, f in finals.items() if f == "credited"]
    assert len(answers) == ORDERS
    assert len(credited) == COVERED
    assert {f for f in finals.values() if f != "credited"} == {"funding_insufficient"}
    assert balance(db, programme.funding) == 0
    assert sum(balance(db, a) for a in programme.cards.values()) == COVERED * LOAN
    with db.session() as s:
        for external_id in credited:
            (t,) = ledger.transfers_for(s, f"disbursement:{external_id}")
            assert t.amount == LOAN
        assert ledger.check_invariants(s) == []
