"""The living demo district on a fresh SQLite database: it starts, money moves through every
door (taps, codes, checkouts, loans), the books balance, and it stops with nothing left running."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from hub.config import Settings
from hub.demo.district import District, DistrictOptions, free_port
from hub.demo.seed import DEMO_OPERATOR_PASSWORD, unit_code
from hub.ledger import service as ledger

MONEY_KINDS = ("tap:captured", "code:paid", "bill:paid", "checkout:completed")


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_the_district_moves_money_and_stops_cleanly(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'hub.db'}", log_level="WARNING")
    options = DistrictOptions(
        units=2,
        rate=8.0,
        state_dir=tmp_path / "demo",
        hub_port=free_port(),
        insurance_port=free_port(),
        his_port=free_port(),
        loans_port=free_port(),
        heartbeat_seconds=1.0,
        seed=7,
    )
    lines: list[str] = []
    district = District(settings, options, say=lines.append)
    threads_before = set(threading.enumerate())
    district.start()
    try:
        assert any(DEMO_OPERATOR_PASSWORD in line for line in lines)
        assert district.traffic is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            outcomes = district.traffic.outcomes()
            if outcomes.get("loan:credited") and sum(outcomes.get(k, 0) for k in MONEY_KINDS) > 3:
                break
            time.sleep(0.5)
    finally:
        district.stop()

    outcomes = district.traffic.outcomes()
    assert outcomes.get("loan:credited", 0) >= 1, outcomes
    assert sum(outcomes.get(kind, 0) for kind in MONEY_KINDS) >= 3, outcomes
    with district.db.session() as session:
        assert ledger.check_invariants(session) == []
        funding = ledger.find_account(session, "loan_funding", "programme")
        assert funding is not None and funding.debits_posted > 0  # loans went out to cards
        hospitals = [ledger.find_account(session, "unit_settlement", unit_code(n)) for n in (1, 2)]
        assert sum(a.credits_posted for a in hospitals if a is not None) > 0  # and patients paid
    # Stopped: every simulator process ended, the hub's port is closed, no thread lingers.
    assert all(child.process.returncode is not None for child in district.children)
    assert not _answers(options.hub_port)
    lingering = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    assert [t.name for t in lingering if not t.daemon] == []
    assert lines[-1].startswith("stopped:")
