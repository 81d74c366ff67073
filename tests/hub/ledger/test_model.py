"""Stateful property test: random sequences against the ledger and a plain in-memory model.

The model is deliberately naive (dicts and ifs); the ledger must agree with it on every result
code and every counter, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from hub.ledger import service
from hub.ledger.schemas import AccountIn, TransferIn
from tests.conftest import ManualClock, _empty_tables

NAMES = ["bank", "card1", "card2", "unit"]
LIMITED = {"card1", "card2"}  # debits must not exceed credits


@dataclass
class Model:
    counters: dict[str, list[int]] = field(default_factory=lambda: {n: [0, 0, 0, 0] for n in NAMES})
    transfers: dict[str, tuple] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    holds: dict[str, dict] = field(
        default_factory=dict
    )  # id -> debit, credit, amount, state, expires

    def expire(self, now) -> None:
        for hold in self.holds.values():
            if hold["state"] == "pending" and hold["expires"] and hold["expires"] <= now:
                self._release(hold)
                hold["state"] = "expired"

    def _release(self, hold) -> None:
        self.counters[hold["debit"]][2] -= hold["amount"]
        self.counters[hold["credit"]][3] -= hold["amount"]

    def apply(self, tid, debit, credit, amount, kind, pending_id, timeout, now) -> str:
        key = (debit, credit, kind, pending_id, timeout)
        if tid in self.failed:
            return self.failed[tid]
        if timeout and kind != "pending":
            return "timeout_reserved_for_pending_transfer"
        if kind in ("single", "pending") and debit == credit:
            return "accounts_must_be_different"
        if tid in self.transfers:
            stored_key, stored_amount = self.transfers[tid]
            # Like the ledger, an omitted amount matches; a given one must equal what was moved.
            same = stored_key == key and amount in (None, stored_amount)
            return "exists" if same else "exists_with_different_fields"
        code = self._apply(tid, debit, credit, amount, kind, pending_id, timeout, now)
        if code == "ok":
            self.transfers[tid] = (key, self.moved)
        elif (
            code in ("exceeds_credits", "pending_transfer_not_found", "pending_transfer_expired")
            or code.startswith("pending_transfer_already")
            or code
            in (
                "exceeds_pending_transfer_amount",
                "pending_transfer_not_pending",
                "pending_transfer_has_different_amount",
            )
        ):
            self.failed[tid] = code
        return code

    def _apply(self, tid, debit, credit, amount, kind, pending_id, timeout, now) -> str:
        if kind in ("post", "void"):
            hold = self.holds.get(pending_id)
            if hold is None:
                return (
                    "pending_transfer_not_pending"
                    if pending_id in self.transfers
                    else "pending_transfer_not_found"
                )
            if hold["state"] != "pending":
                state = hold["state"]
                return (
                    "pending_transfer_expired"
                    if state == "expired"
                    else f"pending_transfer_already_{state}"
                )
            if hold["expires"] and hold["expires"] <= now:
                self._release(hold)
                hold["state"] = "expired"
                return "pending_transfer_expired"
            take = hold["amount"] if amount is None else amount
            if kind == "void" and take != hold["amount"]:
                return "pending_transfer_has_different_amount"
            if take > hold["amount"]:
                return "exceeds_pending_transfer_amount"
            self._release(hold)
            self.moved = take
            if kind == "post":
                self.counters[hold["debit"]][0] += take
                self.counters[hold["credit"]][1] += take
            hold["state"] = "posted" if kind == "post" else "voided"
            return "ok"
        d = self.counters[debit]
        self.moved = amount
        if debit in LIMITED and d[0] + d[2] + amount > d[1]:
            return "exceeds_credits"
        if kind == "pending":
            d[2] += amount
            self.counters[credit][3] += amount
            expires = now + timedelta(seconds=timeout) if timeout else None
            self.holds[tid] = {
                "debit": debit,
                "credit": credit,
                "amount": amount,
                "state": "pending",
                "expires": expires,
            }
        else:
            d[0] += amount
            self.counters[credit][1] += amount
        return "ok"


def machine_for(db):
    class LedgerMachine(RuleBasedStateMachine):
        @initialize()
        def open_books(self):
            _empty_tables(db)
            self.clock = ManualClock()
            self.model = Model()
            self.used: list[str] = []
            specs = {
                n: AccountIn(
                    kind="card" if n in LIMITED else n,
                    owner_ref=n,
                    debits_must_not_exceed_credits=n in LIMITED,
                )
                for n in NAMES
            }
            self.ids = db.transaction(
                lambda s: {
                    n: service.create_account(s, spec, self.clock()).id for n, spec in specs.items()
                }
            )
            for card in sorted(LIMITED):  # opening deposits, so card payments mostly succeed
                self.submit_both(f"open:{card}", "bank", card, 2_000, "single", None, 0)

        def transfer_id(self, data) -> str:
            """Mostly a new id; sometimes one already used, to exercise idempotency."""
            if self.used and data.draw(st.integers(0, 3)) == 0:
                return data.draw(st.sampled_from(self.used))
            self.used.append(f"t{len(self.used)}")
            return self.used[-1]

        def submit_both(self, tid, debit, credit, amount, kind, pending_id, timeout) -> None:
            expected = self.model.apply(
                tid, debit, credit, amount, kind, pending_id, timeout, self.clock()
            )
            spec = TransferIn(
                id=tid,
                debit_account_id=self.ids[debit] if debit else None,
                credit_account_id=self.ids[credit] if credit else None,
                amount=amount,
                pending_id=pending_id,
                code="test",
                pending=kind == "pending",
                post_pending=kind == "post",
                void_pending=kind == "void",
                timeout=timeout,
            )
            (result,) = db.transaction(lambda s: service.create_transfers(s, [spec], self.clock()))
            assert result.result == expected, (spec, result.result, expected)

        @rule(
            data=st.data(),
            debit=st.sampled_from(NAMES),
            credit=st.sampled_from(NAMES),
            amount=st.sampled_from([1, 50, 100, 700]),
            pending=st.booleans(),
            timeout=st.sampled_from([0, 0, 30]),
        )
        def single_or_hold(self, data, debit, credit, amount, pending, timeout):
            kind = "pending" if pending else "single"
            self.submit_both(self.transfer_id(data), debit, credit, amount, kind, None, timeout)

        @precondition(lambda self: self.model.holds)
        @rule(
            data=st.data(),
            post=st.booleans(),
            amount=st.sampled_from([None, None, 1, 50, 100]),
        )
        def resolve(self, data, post, amount):
            # Mostly aim at holds that exist, sometimes at any id.
            targets = sorted(self.model.holds) if data.draw(st.integers(0, 4)) else self.used
            pending_id = data.draw(st.sampled_from(targets))
            kind = "post" if post else "void"
            self.submit_both(self.transfer_id(data), None, None, amount, kind, pending_id, 0)

        @rule(seconds=st.sampled_from([1, 20, 40]))
        def time_passes(self, seconds):
            self.clock.advance(seconds)

        @rule()
        def sweep(self):
            db.transaction(lambda s: service.expire_holds(s, self.clock()))
            self.model.expire(self.clock())

        @invariant()
        def books_agree(self):
            if not hasattr(self, "ids"):
                return
            with db.session() as s:
                for name, account_id in self.ids.items():
                    a = service.get_account(s, account_id)
                    got = [a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending]
                    assert got == self.model.counters[name], name
                assert service.check_invariants(s) == []

    return LedgerMachine


def test_ledger_agrees_with_the_model(db):
    run_state_machine_as_test(
        machine_for(db),
        settings=settings(
            max_examples=30,
            stateful_step_count=35,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
