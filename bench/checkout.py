"""Hospital checkouts on PostgreSQL: complete checkouts per second, p50/p99, and where the time
goes (the hub versus the insurance platform and HIS simulators).

The hub runs in its own uvicorn process with its outbox worker on; the insurance platform and
the HIS each run in their own process as real HTTP servers that add up the time they spend on
each request. This process plays the cashiers: each thread is one combo terminal signing its
requests, running whole checkouts (open the HIS bill, identify the patient by card: 1101, 2201,
2204, 2206; hold the cash part on the card and settle: 2207; ledger posted) back to back.

Run: .venv/bin/python bench/checkout.py [--cashiers 8] [--checkouts 400] [--hub-workers 1]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import common
from bench.common import cpu_seconds, enrol_terminal, free_port, fresh_database, percentile
from devices.agent.hub_client import HubClient
from hub.config import Settings
from hub.db import Database
from hub.gateway import service as gateway
from hub.gateway.schemas import UnitIn
from hub.issuer import service as issuer
from hub.issuer.protection import CardDataKeys, with_check_digit
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn
from integrations.medical_insurance.policy import InsuredPerson, PlatformConfig, demo_config

PATH = "/api/terminal/checkouts"
UNITS = 4  # hospitals; their windows share a unit settlement account
HUB_ENV = {"HUB_LOG_LEVEL": "WARNING", "HUB_INSURANCE_TIMEOUT_SECONDS": "10"}


# ---- the simulators, each in its own process, timing itself ----------------------------------


class Timed:
    """ASGI wrapper: adds each request's time in the app to a shared counter."""

    def __init__(self, app: Any, seconds: Any, requests: Any) -> None:
        self.app, self.seconds, self.requests = app, seconds, requests

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                with self.seconds.get_lock():
                    self.seconds.value += time.perf_counter() - started
                    self.requests.value += 1


def serve_insurance(port: int, config: str, seconds: Any, requests: Any) -> None:
    import uvicorn

    from integrations.medical_insurance.platform import InsurancePlatform
    from integrations.medical_insurance.simulator import create_app

    app = create_app(InsurancePlatform(PlatformConfig.model_validate_json(config)))
    uvicorn.run(Timed(app, seconds, requests), port=port, log_level="warning", access_log=False)


def serve_his(port: int, seconds: Any, requests: Any) -> None:
    import uvicorn

    from integrations.his.simulator import HisSimulator, create_app

    app = create_app(HisSimulator(seed=7))
    uvicorn.run(Timed(app, seconds, requests), port=port, log_level="warning", access_log=False)


class Simulator:
    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = mp.get_context("spawn")
        self.port = free_port()
        self.seconds, self.requests = context.Value("d", 0.0), context.Value("i", 0)
        self.process = context.Process(
            target=target, args=(self.port, *args, self.seconds, self.requests), daemon=True
        )
        self.process.start()
        self.url = f"http://127.0.0.1:{self.port}"
        wait_for(lambda: _answers(self.url))

    def reading(self) -> tuple[float, int]:
        return self.seconds.value, self.requests.value


def _answers(url: str) -> bool:
    try:
        httpx.get(url + "/", timeout=1)
        return True
    except httpx.TransportError:
        return False


def wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("timed out")
        time.sleep(0.1)


# ---- the hub and its world ---------------------------------------------------------------------


def patients(count: int) -> list[InsuredPerson]:
    """One insured patient per cashier, each with a funded card of this bank."""
    return [
        InsuredPerson(
            psn_no=f"3301{n:016d}",
            psn_name=f"患者{n}",
            certno=f"33010219800101{n:04d}",
            brdy=date(1980, 1, 1),
            insuplc_admdvs="330100",
            card_no=f"K3{n:07d}",
            card_sn=f"33010000B{n:05d}",
            account_balance_fen=100_000_000,
        )
        for n in range(count)
    ]


def setup(url: str, people: list[InsuredPerson], cashiers: int) -> list[tuple[int, Any]]:
    """Units, one enrolled combo terminal per cashier, the patients' funded cards."""
    db = Database(url)
    now = datetime.now(UTC)
    keys = CardDataKeys.from_settings(Settings())
    terminals: list[tuple[int, Any]] = []

    def world(session: Any) -> None:
        treasury = ledger.ensure_account(session, AccountIn(kind="treasury", owner_ref="bank"), now)
        for n, person in enumerate(people):
            card = issuer.register_card(
                session,
                CardIn(
                    card_number=person.card_no,
                    card_id_code=person.card_sn,
                    holder_name=person.psn_name,
                    id_number=SecretStr(person.certno),
                    pan=SecretStr(with_check_digit(f"623170{n:012d}")),
                    expiry=date(2035, 12, 31),
                ),
                keys,
                now,
            )
            funding = TransferIn(
                id=f"bench:fund:{n}",
                debit_account_id=treasury.id,
                credit_account_id=card.account_id,
                amount=1_000_000_000,
                code="deposit",
            )
            ledger.transfer(session, funding, now)
        units = [
            gateway.create_unit(
                session,
                UnitIn(institution_code=f"H3301020{u:04d}", name=f"医院{u}", region_code="330102"),
                actor="bench",
                now=now,
            )
            for u in range(UNITS)
        ]
        for n in range(cashiers):
            unit_id = units[n % UNITS].id
            terminals.append(enrol_terminal(session, unit_id, f"BENCH{n:06d}", "SSC-CT500", now))

    db.transaction(world)
    db.dispose()
    return terminals


def start_hub(
    url: str, insurance: str, his: str, workers: int
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = HUB_ENV | {"HUB_INSURANCE_BASE_URL": insurance, "HUB_HIS_BASE_URL": his}
    return common.start_hub(url, port, workers=workers, env=env), f"http://127.0.0.1:{port}"


# ---- the cashiers ------------------------------------------------------------------------------


class Cashier:
    """One combo terminal running whole checkouts for its patient."""

    def __init__(self, base: str, terminal: tuple[int, Any], person: InsuredPerson, n: int) -> None:
        http = httpx.Client(timeout=60)
        self.hub = HubClient(base, terminal[0], terminal[1], http=http)
        self.card = {"card_number": person.card_no, "card_id_code": person.card_sn}
        self.n = n
        self.bills = 0

    def checkout(self) -> float:
        self.bills += 1
        bill_no = f"MZ{self.n:03d}{self.bills:05d}"
        started = time.perf_counter()
        checkout_id = self.hub.post(PATH, {"bill_no": bill_no})["checkout_id"]
        split = self.hub.post(f"{PATH}/{checkout_id}/identify", {"card": self.card})
        assert split["state"] == "pre_settled", split
        done = self.hub.post(f"{PATH}/{checkout_id}/self-pay", {"method": "card"})
        while done["in_flight"]:  # an answer the hub is still waiting for
            time.sleep(0.05)
            done = self.hub.get(f"{PATH}/{checkout_id}")
        assert done["state"] == "completed", done
        return (time.perf_counter() - started) * 1000


def run(cashiers: int, checkouts: int, hub_workers: int) -> None:
    url = fresh_database("sshub_bench_checkout")
    people = patients(cashiers)
    config = demo_config().model_copy(update={"persons": people})
    insurance = Simulator(serve_insurance, config.model_dump_json())
    his = Simulator(serve_his)
    print(f"setting up {UNITS} hospitals, {cashiers} combo terminals and funded cards ...")
    terminals = setup(url, people, cashiers)
    hub, base = start_hub(url, insurance.url, his.url, hub_workers)
    try:
        desks = [Cashier(base, terminals[n], people[n], n) for n in range(cashiers)]
        for desk in desks:  # warm up: sign-ins, connections, the terminal cache
            desk.checkout()
        rounds = max(1, checkouts // cashiers)
        sims_before = [s.reading() for s in (insurance, his)]
        cpu_before = (cpu_seconds(hub.pid), cpu_seconds(insurance.process.pid or 0))
        started = time.perf_counter()
        with ThreadPoolExecutor(cashiers) as pool:
            per_desk = list(pool.map(lambda d: [d.checkout() for _ in range(rounds)], desks))
        elapsed = time.perf_counter() - started
        cpu = (
            cpu_seconds(hub.pid) - cpu_before[0],
            cpu_seconds(insurance.process.pid or 0) - cpu_before[1],
        )
        sims = [
            (after[0] - before[0], after[1] - before[1])
            for before, after in zip(sims_before, (insurance.reading(), his.reading()), strict=True)
        ]
        report([lat for desk in per_desk for lat in desk], elapsed, sims, cpu, cashiers)
        check(url)
    finally:
        hub.terminate()
        hub.wait(timeout=10)
        for sim in (insurance, his):
            sim.process.terminate()


def report(
    latencies: list[float],
    elapsed: float,
    sims: list[tuple[float, int]],
    cpu: tuple[float, float],
    cashiers: int,
) -> None:
    done = len(latencies)
    (platform_s, platform_n), (his_s, his_n) = sims
    per_checkout = sum(latencies) / done
    in_sims = (platform_s + his_s) * 1000 / done
    print(f"\n{done} complete checkouts by {cashiers} cashiers in {elapsed:.1f} s")
    print(f"  throughput          {done / elapsed:8.1f} checkouts/s")
    print(
        f"  latency p50         {percentile(latencies, 50):8.1f} ms  (open + identify + self-pay)"
    )
    print(f"  latency p99         {percentile(latencies, 99):8.1f} ms")
    print(f"  per checkout        {per_checkout:8.1f} ms wall, of which")
    print(
        f"    in the simulators {in_sims:8.1f} ms  ({platform_n / done:.1f} platform messages at "
        f"{platform_s * 1000 / max(platform_n, 1):.1f} ms, {his_n / done:.1f} HIS bills at "
        f"{his_s * 1000 / max(his_n, 1):.1f} ms)"
    )
    print(
        f"    in the hub        {per_checkout - in_sims:8.1f} ms  (API, auth, database, "
        "ledger, outbox, HTTP hops)"
    )
    print(
        f"  CPU seconds         hub {cpu[0]:.1f}, insurance simulator {cpu[1]:.1f} "
        f"({cpu[0] / done * 1000:.1f} / {cpu[1] / done * 1000:.1f} ms per checkout)"
    )


def check(url: str) -> None:
    db = Database(url)
    with db.session() as s:
        problems = ledger.check_invariants(s)
    db.dispose()
    print("  ledger invariants after the run:", "hold" if not problems else problems[:3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cashiers", type=int, default=8)
    parser.add_argument("--checkouts", type=int, default=400)
    parser.add_argument("--hub-workers", type=int, default=1)
    args = parser.parse_args()
    run(args.cashiers, args.checkouts, args.hub_workers)


if __name__ == "__main__":
    main()
