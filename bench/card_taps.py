"""Card taps: (a) tap-to-approval latency through pcscd and the hub, p50/p95; (b) authorise +
capture per second and p99 through the signed API on PostgreSQL with real ARQCs, beside
pgbench's TPC-B TPS on the same server.

(a) A virtual card sits in vpcd's first reader; the agent's card-tap flow waits for it, reads
both applications over pyscard/pcscd, authorises with the hub (uvicorn, PostgreSQL) and
completes the card with the ARPC. The EMV contactless budget (500 ms) is for the card in the
field; the figures split the card's share from the hub's round trip.
(b) Client processes, one terminal each, send pre-generated taps (ARQCs computed as the card
computes them, each card's ATC rising in order) and capture every approval.

Run: .venv/bin/python bench/card_taps.py [--taps 40] [--seconds 15] [--clients 8] [--workers 2]
(--taps 0 skips (a) and leaves the vpcd reader alone; --no-pgbench skips the pgbench figure.)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from pydantic import SecretStr

from bench.common import (
    cpu_seconds,
    database_cpu_seconds,
    enrol_terminal,
    free_port,
    fresh_database,
    percentile,
    pgbench_tps,
    start_hub,
)
from devices.agent.card_tap import CardTapFlow
from devices.agent.hub_client import HubClient, HubRefused
from devices.agent.outbox import Outbox, connect
from devices.emulators.sscard.card import SocialSecurityCard
from devices.emulators.sscard.profile import CardProfile
from devices.emulators.sscard.vpcd import VpcdLink
from devices.emv.crypto import arqc_input, derive_icc_master_key, generate_arqc, pboc_session_key
from devices.pcsc.models import Cryptogram, TerminalData
from devices.pcsc.reader import list_readers, wait_for_card, wait_for_removal
from devices.protocol.card_payments import CARD_PAYMENTS_PATH, capture_path
from hub.config import Settings
from hub.db import Database
from hub.gateway import service as gateway
from hub.gateway.schemas import UnitIn
from hub.issuer import service as issuer
from hub.issuer.keys import IssuerSecrets
from hub.issuer.protection import with_check_digit
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn

IMK = bytes.fromhex("F0C34A8124CEE0A91A0B034AA97D6EAC")  # the PBOC worked example's key
AIP = bytes.fromhex("7C00")
IAD = bytes([0x07, 0x01, 0x01, 0x03, 0xA0, 0x00, 0x00, 0x00])
CARDS_PER_CLIENT = 25
AMOUNT = 1_234  # below the default PIN threshold
DATABASE = "sshub_bench_card_taps"


@dataclass(frozen=True)
class BenchTerminal:
    terminal_id: int
    key_pem: bytes


def card_pan(n: int) -> str:
    return with_check_digit(f"623170{n:012d}")


def setup(url: str, clients: int) -> tuple[list[BenchTerminal], int]:
    """An issuer key, two units, a terminal per client (+1 for the taps), funded cards."""
    db = Database(url)
    now = datetime.now(UTC)
    settings = Settings(database_url=url)
    secrets = IssuerSecrets.from_settings(settings)
    db.transaction(lambda s: issuer.create_issuer_key(s, secrets, now, key=IMK))
    units = [
        db.transaction(
            lambda s, c=code: (
                gateway.create_unit(
                    s,
                    UnitIn(institution_code=c, name=c, region_code="330102"),
                    actor="bench",
                    now=now,
                ).id
            )
        )
        for code in ("H33010200001", "H33010200002")
    ]
    terminals = [_enrol(db, units[i % 2], f"BT{i:08d}", now) for i in range(clients + 1)]
    cards = clients * CARDS_PER_CLIENT + 1
    for start in range(0, cards, 200):
        db.transaction(lambda s, a=start: _cards(s, secrets, a, min(cards, a + 200), now))
    db.dispose()
    return terminals, cards


def _enrol(db: Database, unit_id: int, serial: str, now: datetime) -> BenchTerminal:
    terminal_id, key = db.transaction(
        lambda s: enrol_terminal(s, unit_id, serial, "SSC-CR300", now)
    )
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return BenchTerminal(terminal_id, pem)


def _cards(s: Any, secrets: IssuerSecrets, first: int, last: int, now: datetime) -> None:
    treasury = ledger.ensure_account(s, AccountIn(kind="treasury", owner_ref="bank"), now)
    for n in range(first, last):
        spec = CardIn(
            card_number=f"B{n:08d}",
            card_id_code=f"330100D15600000500{n:014d}",
            holder_name="张秀英",
            id_number=SecretStr(f"3301021958{n:08d}"),
            pan=SecretStr(card_pan(n)),
            expiry=date(2034, 1, 31),
        )
        card = issuer.register_card(s, spec, secrets.card_data, now)
        transfer = TransferIn(
            id=f"bench:fund:{n}",
            debit_account_id=treasury.id,
            credit_account_id=card.account_id,
            amount=10**10,
            code="deposit",
        )
        ledger.transfer(s, transfer, now)


class CardChip:
    """What card `n` computes for a first GENERATE AC, keyed once (as its chip is)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.pan = card_pan(n)
        self.key = derive_icc_master_key(IMK, self.pan, "01")

    def tap_body(self, atc: int, transaction_id: str) -> dict[str, Any]:
        """The request the agent sends for this card's tap number `atc`."""
        terminal = TerminalData(amount=AMOUNT)
        values = {**terminal.values(), 0x82: AIP, 0x9F36: atc.to_bytes(2, "big")}
        session_key = pboc_session_key(self.key, values[0x9F36])
        arqc = generate_arqc(session_key, arqc_input(values, IAD))
        cryptogram = Cryptogram(0x80, atc, arqc, IAD, terminal, AIP)
        return {
            "transaction_id": transaction_id,
            "amount": AMOUNT,
            "card": {"pan": self.pan, "psn": "01", "card_number": f"B{self.n:08d}"},
            "icc_data": cryptogram.icc_data().hex().upper(),
        }


# --- the hub ---------------------------------------------------------------------------------


# --- (a) tap-to-approval through pcscd ---------------------------------------------------------


def tap_latency(hub_url: str, terminal: BenchTerminal, card: int, taps: int) -> None:
    if not any(r.startswith("Virtual PCD") for r in list_readers()):
        print("(a) skipped: pcscd with the vpcd driver is not running (scripts/setup.sh)")
        return
    pan = card_pan(card)
    profile = CardProfile(
        card_number=f"B{card:08d}",
        card_id_code=f"330100D15600000500{card:014d}",
        holder_name="张秀英",
        id_number=f"3301021958{card:08d}",
        pan=pan,
        icc_master_key=derive_icc_master_key(IMK, pan, "01").hex(),
    )
    key = load_pem_private_key(terminal.key_pem, None)
    client = HubClient(hub_url, terminal.terminal_id, key)  # type: ignore[arg-type]
    hub_ms: list[float] = []
    post = client.post

    def timed_post(path: str, body: Any) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            return post(path, body)
        finally:
            hub_ms.append((time.perf_counter() - started) * 1000)

    client.post = timed_post  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as state:
        flow = CardTapFlow(
            client, Outbox(connect(Path(state) / "a.db")), Path(state), pin_threshold_fen=10**9
        )
        detect = _detection(profile)
        link = VpcdLink(SocialSecurityCard(profile))
        link.insert()
        wait_for_card(timeout=5).close()
        totals = []
        for _ in range(taps):
            started = time.perf_counter()
            result = flow.pay(AMOUNT)
            totals.append((time.perf_counter() - started) * 1000)
            assert result.approved, result
        link.remove()
    card_ms = [t - h for t, h in zip(totals, hub_ms, strict=True)]
    print(
        f"\n(a) tap to approval through pcscd and the hub, {taps} taps, card already in the field"
    )
    print(f"    {'':24}{'p50 ms':>8} {'p95 ms':>8}")
    for name, values in (
        ("tap to approval", totals),
        ("  card (APDUs)", card_ms),
        ("  hub round trip", hub_ms),
    ):
        print(f"    {name:<24}{percentile(values, 50):>8.1f} {percentile(values, 95):>8.1f}")
    seen = percentile(detect, 50)
    print(f"    card insertion seen by pcscd (vpcd polls every 400 ms): p50 {seen:.0f} ms")


def _detection(profile: CardProfile, rounds: int = 5) -> list[float]:
    seen = []
    for _ in range(rounds):
        link = VpcdLink(SocialSecurityCard(profile))
        started = time.perf_counter()
        link.insert()
        channel = wait_for_card(timeout=5)
        seen.append((time.perf_counter() - started) * 1000)
        channel.close()
        link.remove()
        wait_for_removal(channel.reader, 5)
    return seen


# --- (b) authorise + capture throughput --------------------------------------------------------


def client(
    args: tuple[str, BenchTerminal, int, int, int, float, float],
) -> tuple[int, int, list[float], float, float, list[str]]:
    hub_url, terminal, worker, first_card, count, start_at, seconds = args
    chips = [CardChip(n) for n in range(first_card, first_card + CARDS_PER_CLIENT)]
    # Pre-generated, each card's ATC rising in the order they are sent.
    bodies = [
        chips[i % len(chips)].tap_body(1 + i // len(chips), f"w{worker}-{i}") for i in range(count)
    ]
    key = load_pem_private_key(terminal.key_pem, None)
    http = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=1))
    hub = HubClient(hub_url, terminal.terminal_id, key, http=http)  # type: ignore[arg-type]
    time.sleep(max(0.0, start_at - time.time()))
    began = time.time()
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    refused: list[str] = []  # "status code": a refusal is counted, the client goes on
    approved = 0
    for body in bodies:
        if time.perf_counter() >= deadline:
            break
        started = time.perf_counter()
        try:
            answer = hub.post(CARD_PAYMENTS_PATH, body)
            if answer["approved"]:
                hub.post(capture_path(answer["payment_id"]), {})
                approved += 1
        except HubRefused as exc:
            refused.append(f"{exc.status} {exc.code}")
        latencies.append((time.perf_counter() - started) * 1000)
    return len(latencies), approved, latencies, began, time.time(), refused


def throughput(
    hub_url: str,
    hub_pid: int,
    terminals: list[BenchTerminal],
    clients: int,
    seconds: float,
    per_client: int,
) -> float:
    start_at = time.time() + 10  # after every client made its requests
    jobs = [
        (hub_url, terminals[w + 1], w, 1 + w * CARDS_PER_CLIENT, per_client, start_at, seconds)
        for w in range(clients)
    ]
    with mp.get_context("spawn").Pool(clients) as pool:
        pending = pool.map_async(client, jobs)
        time.sleep(max(0.0, start_at - time.time()))
        hub_cpu, db_cpu = cpu_seconds(hub_pid), database_cpu_seconds(DATABASE)
        results = pending.get()
        hub_cpu = cpu_seconds(hub_pid) - hub_cpu
        db_cpu = sum(t - db_cpu.get(pid, 0.0) for pid, t in database_cpu_seconds(DATABASE).items())
    done = sum(r[0] for r in results)
    approved = sum(r[1] for r in results)
    latencies = [lat for r in results for lat in r[2]]
    window = max(r[4] for r in results) - min(r[3] for r in results)
    rate = done / window
    print(f"\n(b) authorise + capture, signed API, PostgreSQL, {clients} client processes")
    requests = 2 * approved / window
    print(f"    payments/s {rate:,.0f}  (requests/s {requests:,.0f}, approved {approved}/{done})")
    refusals = Counter(code for r in results for code in r[5])
    if refusals:
        print(f"    refused: {dict(refusals)}")
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"    per payment (authorise + capture): p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    print(
        f"    CPU per payment: hub {hub_cpu / done * 1000:.1f} ms, "
        f"PostgreSQL {db_cpu / done * 1000:.1f} ms (the clients sign and send the rest)"
    )
    if any(len(r[2]) == per_client for r in results):
        print("    (a client sent every pre-generated tap: raise --per-client)")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--taps", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--per-client", type=int, default=3000, help="taps made per client")
    parser.add_argument("--no-pgbench", action="store_true", help="skip the pgbench figure")
    args = parser.parse_args()
    url = fresh_database(DATABASE)
    cards = args.clients * CARDS_PER_CLIENT + 1
    print(f"setting up {args.clients + 1} terminals and {cards} cards ...", flush=True)
    terminals, _ = setup(url, args.clients)
    port = free_port()
    hub = start_hub(url, port, workers=args.workers)
    try:
        hub_url = f"http://127.0.0.1:{port}"
        if args.taps:  # --taps 0 leaves vpcd's reader alone
            tap_latency(hub_url, terminals[0], 0, args.taps)
        rate = throughput(hub_url, hub.pid, terminals, args.clients, args.seconds, args.per_client)
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    if not args.no_pgbench:
        tpcb = pgbench_tps()
        print(f"\npgbench TPC-B-like, 8 clients, same server: {tpcb:,.0f} TPS")
        print(f"payments/s / pgbench TPS = {rate / tpcb:.2f}  ({os.cpu_count()} cores here)")
    with Database(url).session() as s:
        problems = ledger.check_invariants(s)
    print("ledger invariants after the run:", "hold" if not problems else problems[:3])


if __name__ == "__main__":
    main()
