"""Terminals racing on one payment code on PostgreSQL: exactly one of them is paid."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from hub.config import Settings
from hub.demo.seed import seed
from hub.errors import HubError
from hub.gateway import service as gateway
from hub.gateway.schemas import TerminalIn, UnitIn
from hub.issuer import service as issuer
from hub.issuer.protection import CardDataKeys
from hub.ledger import service as ledger
from hub.payments import codes

RACERS = 8
INSTITUTION = "H33010200001"


def _unit_with_terminals(pg, clock) -> tuple[int, list[int]]:
    def work(s):
        unit = gateway.create_unit(
            s,
            UnitIn(institution_code=INSTITUTION, name="H", region_code="330102"),
            actor="test",
            now=clock(),
        )
        terminals = [
            gateway.preregister_terminal(
                s,
                TerminalIn(unit_id=unit.id, serial=f"RACE{n:04d}", model="SSC-QS210"),
                actor="test",
                now=clock(),
            ).id
            for n in range(RACERS)
        ]
        return unit.id, terminals

    return pg.transaction(work)


def test_one_code_submitted_by_many_terminals_at_once_pays_once(pg, clock):
    settings = Settings()
    key, policy = codes.PaymentCodeKey.from_settings(settings), codes.CodePolicy()
    pg.transaction(lambda s: seed(s, CardDataKeys.from_settings(settings), clock()))
    unit_id, terminals = _unit_with_terminals(pg, clock)
    card_id = pg.transaction(lambda s: issuer.card_by_number(s, "K10000002").id)
    issued = pg.transaction(lambda s: codes.issue_code(s, card_id, key, policy, clock()))

    def submit(terminal: int) -> str:
        request = codes.CodePaymentRequest(
            terminal, unit_id, INSTITUTION, "race", 700, issued.payload
        )
        try:
            pg.transaction(lambda s: codes.pay_with_code(s, request, key, policy, clock()))
        except HubError as exc:
            return exc.code
        return "paid"

    with ThreadPoolExecutor(RACERS) as pool:
        outcomes = sorted(pool.map(submit, terminals))
    assert outcomes == ["paid"] + ["payment_code_used"] * (RACERS - 1)
    with pg.session() as s:
        account = ledger.find_account(s, "card", "K10000002")
        assert ledger.balance(account).posted == 120_000 - 700
        assert ledger.check_invariants(s) == []
