"""`python -m devices.emulators.sscard insert` (also `sshub card insert`) puts a card from a
profile file into a virtual reader, and writes its ATC back as the chip's memory would."""

import subprocess
import sys

import pytest

from devices.emulators.sscard.profile import load_profile, save_profile
from devices.pcsc.models import TerminalData
from devices.pcsc.reader import wait_for_card, wait_for_removal
from devices.pcsc.tap import read_card
from tests.devices.emulators.sscard.virtual_card import make_profile


@pytest.mark.pcsc
def test_insert_serves_the_profile_and_keeps_the_atc(pcsc_stack, tmp_path):
    path = tmp_path / "card.yaml"
    save_profile(make_profile(atc=41), path)
    command = [sys.executable, "-m", "devices.emulators.sscard", "insert", "--profile", str(path)]
    process = subprocess.Popen([*command, "--seconds", "20"], stdout=subprocess.PIPE, text=True)
    try:
        channel = wait_for_card(timeout=10)
        read = read_card(channel, TerminalData(amount=100))
        channel.close()
        assert read.arqc.atc == 42 and read.social_security.card_number == "K10000001"
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0 and "card removed" in output
    assert wait_for_removal(channel.reader, timeout=5)
    assert load_profile(path).atc == 42


def test_a_bad_profile_is_refused_before_any_reader_is_touched(tmp_path):
    path = tmp_path / "card.json"
    path.write_text('{"card_number": "K1"}')
    command = [sys.executable, "-m", "devices.emulators.sscard", "insert", "--profile", str(path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0 and "incomplete profile" in result.stderr
