"""Signed heartbeats per second and their latency, from 1,000 and from 10,000 simulated
terminals, against the hub served by uvicorn on PostgreSQL (loopback only).

Goal: >= 3,000 heartbeats/s on a 2-core machine (180,000 terminals at a 60 s interval).

- Terminals and their Ed25519 keys are written straight into a fresh database (setup, not
  measured). Every heartbeat is signed before the clock starts, in worker processes, and sent
  as raw HTTP/1.1 bytes over keep-alive connections by an asyncio client, so the client costs
  little next to the hub. Each request carries its own timestamp and nonce, as a terminal's.
- Round 1 is each terminal's first heartbeat since the hub started (its cache is loaded in bulk
  at start-up); later rounds are the steady state. Both are printed, with the hub's CPU time per
  heartbeat, which says more than the rate when other work shares the machine.
- The presence flush (every 2 s) and the sweeper run as in production during the measurement.

Run: .venv/bin/python bench/heartbeats.py [--terminals 1000 10000] [--requests 30000]
     [--seconds 20] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, insert, select

from bench import common
from bench.common import cpu_seconds, free_port, fresh_database, percentile
from devices.protocol.messages import HEARTBEAT_PATH
from devices.protocol.signing import key_fingerprint, public_key_text, sign_request
from hub.db import Database
from hub.gateway.models import Presence, Terminal, TerminalKey, Unit

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PORT = 0  # a free port, picked at start
TERMINALS_PER_UNIT = 100
INTERVAL = 60


def seed(url: str, count: int) -> list[tuple[int, bytes]]:
    """Units, enrolled terminals and their keys; returns (terminal id, raw private key)."""
    db = Database(url)
    now = datetime.now(UTC)
    keys = [Ed25519PrivateKey.generate() for _ in range(count)]
    units = [
        {
            "institution_code": f"H{u:011d}",
            "name": f"Unit {u}",
            "region_code": "110105",
            "status": "active",
            "created_at": now,
        }
        for u in range(count // TERMINALS_PER_UNIT + 1)
    ]
    with db.engine.begin() as conn:
        conn.execute(insert(Unit.__table__), units)
        unit_ids = [row.id for row in conn.execute(select(Unit.id).order_by(Unit.id))]
        rows = [
            {
                "serial": f"BENCH{n:08d}",
                "kind": "card_reader",
                "model": "SSC-CR300",
                "unit_id": unit_ids[n // TERMINALS_PER_UNIT],
                "status": "active",
                "created_at": now,
                "enrolled_at": now,
                "presence": Presence.ONLINE,
                "heartbeat_interval": INTERVAL,
                "peripherals": {},
            }
            for n in range(count)
        ]
        conn.execute(insert(Terminal.__table__), rows)
        ids = [row.id for row in conn.execute(select(Terminal.id).order_by(Terminal.id))]
        conn.execute(
            insert(TerminalKey.__table__),
            [
                {
                    "terminal_id": tid,
                    "public_key": public_key_text(key.public_key()),
                    "fingerprint": key_fingerprint(key.public_key()),
                    "status": "active",
                    "created_at": now,
                }
                for tid, key in zip(ids, keys, strict=True)
            ],
        )
    db.dispose()
    raw = [k.private_bytes_raw() for k in keys]
    return list(zip(ids, raw, strict=True))


def _sign_chunk(args: tuple[list[tuple[int, bytes]], int, int]) -> list[bytes]:
    """Raw HTTP requests for one chunk of terminals, `beats` each, beat after beat."""
    terminals, first_beat, beats = args
    requests = []
    for beat in range(first_beat, first_beat + beats):
        for terminal_id, raw_key in terminals:
            key = Ed25519PrivateKey.from_private_bytes(raw_key)
            body = json.dumps(
                {
                    "sequence": beat,
                    "firmware_version": "1.0.0",
                    "config_hash": None,
                    "heartbeat_interval_seconds": INTERVAL,
                    "peripherals": {"card_reader": "ready"},
                    "outbox_depth": 0,
                    "uptime_seconds": beat * INTERVAL,
                },
                separators=(",", ":"),
            ).encode()
            headers = sign_request(key, terminal_id, "POST", HEARTBEAT_PATH, body)
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            requests.append(
                (
                    f"POST {HEARTBEAT_PATH} HTTP/1.1\r\nHost: {HOST}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                    f"{head}\r\n"
                ).encode()
                + body
            )
    return requests


def presign(terminals: list[tuple[int, bytes]], first_beat: int, beats: int) -> list[bytes]:
    """Sign in worker processes, then interleave so each round covers every terminal once."""
    workers = os.cpu_count() or 2
    size = -(-len(terminals) // workers)
    chunks = [(terminals[i : i + size], first_beat, beats) for i in range(0, len(terminals), size)]
    with mp.Pool(workers) as pool:
        parts = pool.map(_sign_chunk, chunks)
    per_round = [
        [r for part, chunk in zip(parts, chunks, strict=True)
         for r in part[b * len(chunk[0]) : (b + 1) * len(chunk[0])]]
        for b in range(beats)
    ]  # fmt: skip
    return [request for round_ in per_round for request in round_]


async def _connection(queue: list[bytes], latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(HOST, PORT)
    try:
        while queue:
            request = queue.pop()
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 200"):
                errors.append(int(head[9:12]))
    finally:
        writer.close()


def send(requests: list[bytes], connections: int, seconds: float) -> dict[str, float]:
    """Send everything over `connections` keep-alive connections (stops after `seconds`)."""
    queue = list(reversed(requests))
    latencies: list[float] = []
    errors: list[int] = []

    async def run() -> None:
        tasks = [_connection(queue, latencies, errors) for _ in range(connections)]
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds)

    started = time.perf_counter()
    with contextlib.suppress(TimeoutError):  # the phase's time cap
        asyncio.run(run())
    elapsed = time.perf_counter() - started
    return {
        "sent": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "errors": len(errors),
        "seconds": elapsed,
    }


def start_hub(url: str, workers: int) -> subprocess.Popen[bytes]:
    global PORT
    PORT = free_port()
    return common.start_hub(
        url,
        PORT,
        workers=workers,
        env={"HUB_GATEWAY_PRESENCE_FLUSH_SECONDS": "2"},
        uvicorn_args=("--loop", "uvloop", "--http", "httptools"),
    )


def flushed(url: str) -> int:
    """Terminals whose last heartbeat reached the database (after the flush)."""
    db = Database(url)
    with db.session() as session:
        count = session.scalar(select(func.count()).where(Terminal.last_sequence.is_not(None)))
    db.dispose()
    return count or 0


def measure(hub: subprocess.Popen[bytes], requests: list[bytes], args: argparse.Namespace) -> dict:
    before = cpu_seconds(hub.pid)
    result = send(requests, args.connections, args.seconds)
    result["cpu_us"] = (cpu_seconds(hub.pid) - before) / max(result["sent"], 1) * 1e6
    return result


def run_one(count: int, args: argparse.Namespace) -> None:
    url = fresh_database("sshub_bench_heartbeats")
    terminals = seed(url, count)
    beats = 1 + -(-args.requests // count)
    started = time.perf_counter()
    requests = presign(terminals, 1, beats)
    signing = time.perf_counter() - started
    hub = start_hub(url, args.workers)
    try:
        time.sleep(3)  # the start-up job loads the terminal cache
        first = measure(hub, requests[:count], args)
        steady = measure(hub, requests[count:], args)
        time.sleep(2.5)  # one flush interval
        seen = flushed(url)
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    workers = f"{args.workers} uvicorn worker{'s' if args.workers > 1 else ''}"
    print(f"\n{count:,} terminals, {args.connections} connections, {workers}, PostgreSQL")
    print(f"  pre-signed {len(requests):,} heartbeats in {signing:.1f} s (not measured)")
    for name, r in (("first beat", first), ("steady state", steady)):
        print(
            f"  {name:<13} {r['per_second']:>7,.0f} heartbeats/s  p50 {r['p50_ms']:6.1f} ms"
            f"  p99 {r['p99_ms']:6.1f} ms  max {r['max_ms']:6.1f} ms"
            f"  hub CPU {r['cpu_us']:5.0f} us/heartbeat"
            f"  ({r['sent']:,} in {r['seconds']:.1f} s, {r['errors']} errors)"
        )
    print(f"  terminals whose last-seen reached the database: {seen:,} of {count:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--requests", type=int, default=30_000, help="steady-state heartbeats")
    parser.add_argument("--seconds", type=float, default=20, help="cap per phase")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    print(f"heartbeats bench on {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for count in args.terminals:
        run_one(count, args)
        print(f"  (load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
