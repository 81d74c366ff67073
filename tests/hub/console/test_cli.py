"""`sshub operators create|set-role|disable|enable` against a real database."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hub.audit import service as audit
from hub.cli import app
from hub.console import service


@pytest.fixture
def sshub(db, monkeypatch):
    monkeypatch.setenv("HUB_DATABASE_URL", db.url)
    monkeypatch.setenv("HUB_CONSOLE_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("HUB_CONSOLE_ARGON2_MEMORY_KIB", "64")
    runner = CliRunner()
    return lambda *args, **kw: runner.invoke(app, ["operators", *args], **kw)


def test_create_set_role_disable(sshub, db):
    made = sshub(
        "create",
        "ming",
        "--role",
        "operator",
        "--name",
        "Ming Zhou",
        env={"SSHUB_PASSWORD": "a long passphrase"},
    )
    assert made.exit_code == 0, made.output
    assert sshub("set-role", "ming", "viewer").exit_code == 0
    assert sshub("disable", "ming").exit_code == 0
    with db.session() as s:
        ming = service.get_operator(s, "ming")
        actions = [e.action for e in audit.recent(s, 10)]
    assert (ming.role, ming.disabled, ming.display_name) == ("viewer", True, "Ming Zhou")
    assert actions[:3] == ["operator.disabled", "operator.role_changed", "operator.created"]


def test_refusals_exit_non_zero_with_the_reason(sshub):
    short = sshub("create", "ming", env={"SSHUB_PASSWORD": "short"})
    assert short.exit_code == 1 and "password" in short.output
    assert sshub("set-role", "nobody", "admin").exit_code == 1
    assert sshub("set-role", "ming", "root").exit_code != 0
