"""`sshub keys` and `sshub issuer`: keys shown by check value only; a personalised card works."""

import stat
from datetime import UTC, date, datetime

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from devices.emulators.sscard.profile import load_profile
from devices.emv.crypto import derive_icc_master_key
from hub.cli import app
from hub.config import Settings
from hub.issuer import service
from hub.issuer.protection import CardDataKeys
from hub.issuer.schemas import CardIn

KEY = "F0C34A8124CEE0A91A0B034AA97D6EAC"
PAN = "6231700000000007516"
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)


@pytest.fixture
def sshub(db, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", db.url)
    runner = CliRunner()

    def run(*args: str, **env: str):
        result = runner.invoke(app, list(args), env=env)
        assert KEY not in result.output.upper()
        return result

    return run


@sqlite_only
def test_keys_are_created_imported_rotated_and_listed_by_check_value(sshub, tmp_path):
    key_file = tmp_path / "imk.hex"
    key_file.write_text(KEY)
    created = sshub("keys", "create", "--import-file", str(key_file))
    assert created.exit_code == 0 and "key v1" in created.output and "kcv" in created.output
    assert "key v2" in sshub("keys", "rotate").output
    listed = sshub("keys", "list").output
    assert "v1  retired" in listed and "v2  active" in listed


@sqlite_only
def test_a_card_gets_a_pin_and_a_profile_the_virtual_card_can_run(sshub, db, tmp_path):
    key_file = tmp_path / "imk.hex"
    key_file.write_text(KEY)
    sshub("keys", "create", "--import-file", str(key_file))
    spec = CardIn(
        card_number="K10000001",
        card_id_code="330100D156000005000123456789ABCD",
        holder_name="张秀英",
        id_number=SecretStr("330102195803120028"),
        pan=SecretStr(PAN),
        expiry=date(2034, 1, 31),
    )
    keys = CardDataKeys.from_settings(Settings())
    db.transaction(lambda s: service.register_card(s, spec, keys, datetime.now(UTC)))
    assert sshub("issuer", "set-pin", "K10000001", SSHUB_PIN="246810").exit_code == 0
    out = tmp_path / "card.json"
    done = sshub(
        "issuer", "personalise", "K10000001", "--out", str(out), "--id-number", "330102195803120028"
    )
    assert done.exit_code == 0, done.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    profile = load_profile(out)
    assert profile.master_key == derive_icc_master_key(bytes.fromhex(KEY), PAN, "01")
    assert (profile.key_index, profile.card_number) == (1, "K10000001")


@sqlite_only
def test_a_refusal_is_a_clean_message(sshub):
    result = sshub("keys", "rotate")
    assert result.exit_code == 1 and "issuer_key_missing" in result.output
