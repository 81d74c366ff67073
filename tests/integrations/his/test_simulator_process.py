from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx

from integrations.his.client import HttpHospitalInformationSystem
from integrations.his.simulator import generate_bill


def test_his_simulator_runs_as_its_own_process():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "integrations.his.simulator", "--port", str(port), "--seed", "3"]
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(url + "/bills/none", timeout=0.5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        with HttpHospitalInformationSystem(url) as his:
            assert his.bill("MZ000007") == generate_bill(3, "MZ000007")
    finally:
        process.terminate()
        process.wait(timeout=10)
