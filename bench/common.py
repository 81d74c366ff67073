"""Shared pieces of the benchmarks: a fresh PostgreSQL database, pgbench, percentiles."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("HUB_BENCH_PG_SERVER", "sshub:sshub@127.0.0.1:5432")
# Replaces the leading "sshub_" of every bench database, so two checkouts benchmarking side by
# side do not drop each other's databases (e.g. HUB_BENCH_DB_PREFIX=sshub_perf_).
DB_PREFIX = os.environ.get("HUB_BENCH_DB_PREFIX", "sshub_")


def database_name(name: str) -> str:
    return DB_PREFIX + name.removeprefix("sshub_")


def fresh_database(name: str) -> str:
    """Drop and create `name`; return its SQLAlchemy URL, schema made by the migrations."""
    from hub.migrations import upgrade

    name = database_name(name)
    with psycopg.connect(f"postgresql://{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://{SERVER}/{name}"
    upgrade(url)
    return url


def pgbench_tps(clients: int = 8, seconds: int = 10, scale: int = 10) -> float:
    """TPS of pgbench's built-in TPC-B-like script on the same server."""
    user_pass, host_port = SERVER.split("@")
    user, password = user_pass.split(":")
    host, port = host_port.split(":")
    env = os.environ | {"PGPASSWORD": password}
    base = ["-h", host, "-p", port, "-U", user]
    name = database_name("sshub_pgbench")
    with psycopg.connect(f"postgresql://{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    subprocess.run(
        ["pgbench", *base, "-i", "-q", "-s", str(scale), name],
        check=True,
        env=env,
        capture_output=True,
    )
    out = subprocess.run(
        ["pgbench", *base, "-c", str(clients), "-j", "2", "-T", str(seconds), name],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"tps = ([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def enrol_terminal(
    session: Any, unit_id: int, serial: str, model: str, now: datetime
) -> tuple[int, Ed25519PrivateKey]:
    """Pre-register, issue a one-time code and enrol a new key, as a technician would."""
    from devices.protocol.messages import EnrolmentRequest
    from devices.protocol.signing import public_key_text
    from hub.gateway import service as gateway
    from hub.gateway.schemas import TerminalIn

    key = Ed25519PrivateKey.generate()
    spec = TerminalIn(unit_id=unit_id, serial=serial, model=model)
    terminal = gateway.preregister_terminal(session, spec, actor="bench", now=now)
    code = gateway.create_enrollment_code(
        session, terminal.id, actor="bench", now=now, hub_url="http://127.0.0.1"
    )
    request = EnrolmentRequest(
        code=code.code,
        serial=serial,
        model=model,
        public_key=public_key_text(key.public_key()),
        firmware_version="1.0.0",
    )
    return gateway.enrol(session, request, now=now, interval=60.0).terminal_id, key


def free_port() -> int:
    """A free TCP port on loopback for a server the benchmark starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_hub(
    url: str,
    port: int,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    uvicorn_args: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """`uvicorn hub.app:create_app` on loopback with `workers` processes, its workers on, on the
    database `url`; returns once /healthz answers."""
    command = [sys.executable, "-m", "uvicorn", "hub.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--log-level", "warning", "--no-access-log", *uvicorn_args]
    environment = os.environ | {"HUB_LOG_LEVEL": "WARNING"} | (env or {})
    hub = subprocess.Popen(command, env=environment | {"HUB_DATABASE_URL": url}, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and hub.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return hub
        except httpx.HTTPError:
            time.sleep(0.1)
    hub.kill()
    raise SystemExit("the hub did not start")


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children still running (uvicorn's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(c) for c in children.read_text().split()] if children.exists() else []
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(kid) for kid in kids)


def database_cpu_seconds(name: str) -> dict[int, float]:
    """CPU time of each server process now connected to database `name`, by pid."""
    with psycopg.connect(f"postgresql://{SERVER}/postgres", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database_name(name),)
        ).fetchall()
    spent = {}
    for (pid,) in rows:
        try:
            spent[pid] = cpu_seconds(pid)
        except FileNotFoundError:  # it ended meanwhile
            continue
    return spent


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
