"""Signing in and out: cookies, throttling, idle timeout, and the audit entries they leave."""

from __future__ import annotations

import pytest

from hub.audit import service as audit
from tests.hub.console.conftest import PASSWORD, csrf_of, sign_in


def _login(client, username, password):
    token = csrf_of(client.get("/console/login").text)
    return client.post(
        "/console/login", data={"username": username, "password": password, "csrf_token": token}
    )


def _actions(db) -> list[str]:
    with db.session() as s:
        return [e.action for e in reversed(audit.recent(s, 200))]


def test_sign_in_sets_a_locked_down_cookie_and_opens_the_dashboard(browser, operators, db):
    client = browser()
    answer = _login(client, "oscar", PASSWORD)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert "sshub_session=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # plain http here; see the TLS test below
    page = client.get("/console/")
    assert page.status_code == 200
    assert "Oscar" in page.text and "operator" in page.text
    assert "operator.login" in _actions(db)


def test_cookie_is_secure_behind_tls(settings, db, clock, operators):
    from fastapi.testclient import TestClient

    from hub.app import create_app

    app = create_app(settings, database=db, clock=clock, run_workers=False)
    with TestClient(app, base_url="https://hub.bank.test", follow_redirects=False) as client:
        answer = _login(client, "oscar", PASSWORD)
    assert answer.status_code == 303
    assert "Secure" in answer.headers["set-cookie"]


def test_pages_need_a_session(browser):
    client = browser()
    answer = client.get("/console/audit")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/login?next=/console/audit")


def test_wrong_password_is_refused_and_audited(browser, operators, db):
    client = browser()
    answer = _login(client, "oscar", "not the password")
    assert answer.status_code == 401
    assert "not right" in answer.text
    assert "sshub_session" not in answer.headers.get("set-cookie", "")
    assert _actions(db)[-1] == "operator.login_failed"


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(browser, operators):
    client = browser()
    unknown = _login(client, "mallory", "whatever-it-is")
    wrong = _login(client, "oscar", "whatever-it-is")
    assert unknown.status_code == wrong.status_code == 401


def test_repeated_failures_lock_the_user_even_with_the_right_password(
    browser, operators, db, settings, clock
):
    client = browser()
    for _ in range(settings.console_login_max_failures):
        assert _login(client, "oscar", "guess-guess-guess").status_code == 401
    locked = _login(client, "oscar", PASSWORD)
    assert locked.status_code == 429
    assert "sshub_session" not in locked.headers.get("set-cookie", "")
    with db.session() as s:
        last = audit.recent(s, 1)[0]
    assert last.action == "operator.login_failed" and last.details["reason"] == "throttled"
    clock.advance(settings.console_login_lock_seconds + 1)
    assert _login(client, "oscar", PASSWORD).status_code == 303


def test_disabled_operator_cannot_sign_in(as_role, browser, operators):
    admin, csrf = as_role("ada")
    assert (
        admin.post("/console/operators/oscar/disable", data={"csrf_token": csrf}).status_code == 303
    )
    assert _login(browser(), "oscar", PASSWORD).status_code == 401


def test_disabling_an_operator_ends_their_open_session(as_role):
    oscar, _ = as_role("oscar")
    admin, csrf = as_role("ada")
    admin.post("/console/operators/oscar/disable", data={"csrf_token": csrf})
    assert oscar.get("/console/").status_code == 303


def test_idle_session_expires(as_role, clock, settings):
    client, _ = as_role("vera")
    clock.advance(settings.console_idle_timeout_seconds - 5)
    assert client.get("/console/").status_code == 200  # activity keeps it alive
    clock.advance(settings.console_idle_timeout_seconds - 5)
    assert client.get("/console/").status_code == 200
    clock.advance(settings.console_idle_timeout_seconds + 1)
    answer = client.get("/console/")
    assert answer.status_code == 303
    assert "expired=1" in answer.headers["location"]


def test_expired_session_cannot_post(as_role, clock, settings):
    client, csrf = as_role("ada")
    clock.advance(settings.console_idle_timeout_seconds + 1)
    answer = client.post("/console/operators/vera/disable", data={"csrf_token": csrf})
    assert answer.status_code == 401


def test_sign_out_ends_the_session(as_role, db):
    client, csrf = as_role("vera")
    assert client.post("/console/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/console/").status_code == 303
    assert "operator.logout" in _actions(db)


def test_login_form_needs_its_csrf_token(browser, operators):
    client = browser()
    client.get("/console/login")
    answer = client.post(
        "/console/login", data={"username": "oscar", "password": PASSWORD, "csrf_token": "x"}
    )
    assert answer.status_code == 403


def test_next_never_leaves_the_console(browser, operators):
    client = browser()
    token = csrf_of(client.get("/console/login").text)
    answer = client.post(
        "/console/login",
        data={
            "username": "vera",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/phish",
        },
    )
    assert answer.headers["location"] == "/console"


def test_sign_in_helper_works(browser, operators):
    assert sign_in(browser(), "ada")


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_one_address_guessing_many_user_names_is_locked(browser, operators, settings):
    client = browser()
    for i in range(settings.console_login_max_failures * 4):
        assert _login(client, f"guess{i}", "whatever-it-is").status_code == 401
    assert _login(client, "oscar", PASSWORD).status_code == 429


def test_idle_sessions_are_swept(as_role, db, clock, settings):
    from sqlalchemy import text

    from hub.console import service

    as_role("vera")
    clock.advance(settings.console_idle_timeout_seconds + 1)
    swept = db.transaction(
        lambda s: service.sweep_sessions(s, settings.console_idle_timeout_seconds, clock())
    )
    assert swept == 1
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM console_sessions")).scalar_one() == 0
