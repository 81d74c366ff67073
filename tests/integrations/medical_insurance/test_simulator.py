"""The simulator as the demo runs it: its own process, a config file, and both yuan styles."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import httpx
import pytest
import yaml

from integrations.medical_insurance.client import HttpMedicalInsurance, InsuranceError
from integrations.medical_insurance.envelope import CALL_PATH, format_inf_time, make_msgid
from integrations.medical_insurance.policy import load_config

from .conftest import CONSULTATION, HOSPITAL, WANG_FANG, Cashier, hospital_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url + "/admin/settlements", timeout=0.5)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("simulator process did not start")


@pytest.fixture
def config_file(tmp_path):
    config = hospital_config(deductible_fen=0, reimbursement_bp={"11": {2: 9_000}})
    path = tmp_path / "platform.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True))
    return path


def test_config_survives_a_yaml_file(config_file):
    assert load_config(config_file) == hospital_config(
        deductible_fen=0, reimbursement_bp={"11": {2: 9_000}}
    )


def settle_in_a_process(config_file, clock):
    """Start the simulator as the demo does, settle one consultation, stop it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "integrations.medical_insurance.simulator",
         "--port", str(port), "--config", str(config_file)],
    )  # fmt: skip
    try:
        wait_until_listening(url, process)
        with HttpMedicalInsurance(url, HOSPITAL, clock=clock) as insurance:
            cashier = Cashier(insurance, clock)
            request = cashier.ready_to_settle(WANG_FANG, [(CONSULTATION, 1, 1_000)])
            return insurance.settle(insurance.new_msgid(), request)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_simulator_runs_as_its_own_process_with_a_config_file(config_file, clock):
    settled = settle_in_a_process(config_file, clock)
    assert settled.fund_pay_sumamt == 900  # the file's 90%, not the default 60%


def test_a_restarted_simulator_never_issues_a_settlement_id_again(config_file, clock):
    # The demo's database keeps every setl_id: a restart that counted from zero again collided.
    first = settle_in_a_process(config_file, clock)
    again = settle_in_a_process(config_file, clock)
    assert first.setl_id != again.setl_id


def test_answers_with_yuan_as_strings_read_the_same(simulate, clock):
    numbers = Cashier(simulate().client(), clock)
    strings = Cashier(simulate(hospital_config(yuan_on_wire="string")).client(), clock)
    splits = []
    for cashier in (numbers, strings):
        request = cashier.ready_to_settle(WANG_FANG, [(CONSULTATION, 3, 1_234)])
        splits.append(cashier.insurance.pre_settle(cashier.insurance.new_msgid(), request))
    assert splits[0] == splits[1]
    assert splits[0].medfee_sumamt == 3_702


def test_a_message_that_is_not_an_envelope_is_refused(sim):
    answer = httpx.post(sim.url + CALL_PATH, content=b"{").json()
    assert (answer["infcode"], answer["err_msg"]) == (-1, "malformed message")


def test_a_business_message_without_sign_in_is_refused(sim, clock):
    envelope = {
        "infno": "1101",
        "msgid": make_msgid(HOSPITAL.fixmedins_code, clock(), 1),
        "mdtrtarea_admvs": HOSPITAL.mdtrtarea_admvs,
        "opter": "C001",
        "inf_time": format_inf_time(clock()),
        "fixmedins_code": HOSPITAL.fixmedins_code,
        "fixmedins_name": HOSPITAL.fixmedins_name,
        "sign_no": "bogus",
        "input": {"data": {"mdtrt_cert_type": "02", "mdtrt_cert_no": "330102198505052345"}},
    }
    answer = httpx.post(sim.url + CALL_PATH, json=envelope).json()
    refused = InsuranceError(answer["infcode"], answer["err_msg"])
    assert refused.infcode == -1 and refused.sign_in_required
