"""Every console action checks role and CSRF token on the server, refuses with 403, changes
nothing, and leaves an audit entry. New POST routes must be added to ACTIONS, or this fails."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import inspect, text

from hub.audit import service as audit
from hub.console.models import Role
from hub.db import Base

# Role checks do not depend on the database: SQLite alone keeps this matrix fast.
pytestmark = pytest.mark.parametrize("db", ["sqlite"], indirect=True)

# Route template -> (least role, a concrete path, form fields). Paths need fixtures' objects.
ACTIONS: dict[str, tuple[Role, str, dict[str, str]]] = {
    "/console/operators": (
        Role.ADMIN,
        "/console/operators",
        {"username": "mallory", "display_name": "M", "password": "long enough pw", "role": "admin"},
    ),
    "/console/operators/{username}/role": (
        Role.ADMIN,
        "/console/operators/vera/role",
        {"role": "admin"},
    ),
    "/console/operators/{username}/disable": (Role.ADMIN, "/console/operators/ada/disable", {}),
    "/console/operators/{username}/enable": (Role.ADMIN, "/console/operators/ada/enable", {}),
    "/console/logout": (Role.VIEWER, "/console/logout", {}),
    "/console/units": (
        Role.OPERATOR,
        "/console/units",
        {"institution_code": "H37010200999", "name": "Clinic", "region_code": "370102"},
    ),
    "/console/units/{unit_id}/disable": (Role.OPERATOR, "/console/units/{unit}/disable", {}),
    "/console/units/{unit_id}/enable": (Role.OPERATOR, "/console/units/{unit}/enable", {}),
    "/console/terminals": (
        Role.OPERATOR,
        "/console/terminals",
        {"unit_id": "{unit}", "serial": "CR300-0999", "model": "SSC-CR300"},
    ),
    "/console/terminals/{terminal_id}/enrollment-code": (
        Role.OPERATOR,
        "/console/terminals/{terminal}/enrollment-code",
        {},
    ),
    "/console/terminals/{terminal_id}/disable": (
        Role.OPERATOR,
        "/console/terminals/{terminal}/disable",
        {},
    ),
    "/console/terminals/{terminal_id}/enable": (
        Role.OPERATOR,
        "/console/terminals/{terminal}/enable",
        {},
    ),
    "/console/terminals/{terminal_id}/commands": (
        Role.OPERATOR,
        "/console/terminals/{terminal}/commands",
        {"kind": "reboot"},
    ),
    "/console/configs": (Role.OPERATOR, "/console/configs", {"intent": "publish", "document": "x"}),
    "/console/rollouts": (
        Role.OPERATOR,
        "/console/rollouts",
        {"name": "r", "config_id": "{config}"},
    ),
    "/console/payments/{payment_id}/refunds": (
        Role.OPERATOR,
        "/console/payments/{payment}/refunds",
        {"amount": "1.00", "refund_id": "console:0123456789"},
    ),
    "/console/disbursements/{external_id}/resend": (
        Role.OPERATOR,
        "/console/disbursements/L-0001/resend",
        {},
    ),
    "/console/disbursements/{external_id}/undo": (
        Role.ADMIN,
        "/console/disbursements/L-0001/undo",
        {"reason": "borrower cancelled"},
    ),
    "/console/rollouts/{rollout_id}/{step}": (
        Role.OPERATOR,
        "/console/rollouts/{rollout}/start",
        {},
    ),
}
# Not an action of a signed-in operator: it has its own CSRF cookie check (test_sign_in.py).
OPEN = {"/console/login"}
USER_OF = {Role.VIEWER: "vera", Role.OPERATOR: "oscar", Role.ADMIN: "ada"}
SKIP_TABLES = {"audit_entries", "console_sessions", "console_login_throttle"}


def snapshot(db) -> dict[str, list[tuple]]:
    """Every row of every domain table: an action refused must leave all of it as it was."""
    with db.engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        return {
            t.name: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t.name}"))), key=repr)
            for t in Base.metadata.sorted_tables
            if t.name in present - SKIP_TABLES
        }


def _routes(app):
    try:  # FastAPI >= 0.16x nests included routers; this walks them
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return app.routes
    return list(iter_route_contexts(app.routes))


def test_every_console_post_route_is_covered(browser):
    posts = {
        r.path
        for r in _routes(browser().app)
        if r.path.startswith("/console") and "POST" in (getattr(r, "methods", None) or ())
    }
    assert posts - OPEN == set(ACTIONS)


@pytest.fixture
def ids(fleet, payment) -> dict[str, int]:
    return {**fleet, "payment": payment}


def _concrete(template: str, ids: dict[str, int]) -> tuple[str, dict[str, str]]:
    """The sample path and form of an action, with the fixture's object ids filled in."""
    _, path, form = ACTIONS[template]
    return path.format(**ids), {k: v.format(**ids) for k, v in form.items()}


def _below(needed: Role) -> list[Role]:
    return [r for r in Role if not r.allows(needed)]


def _refusal_recorded(db, actor: str, reason: str) -> None:
    with db.session() as s:
        last = audit.recent(s, 1)[0]
    assert (last.action, last.actor) == ("console.refused", actor)
    assert reason in last.details["reason"]


@pytest.mark.parametrize("template", list(ACTIONS))
def test_action_is_refused_without_session_role_or_csrf_and_changes_nothing(
    browser, as_role, db, ids, template
):
    needed, _, _ = ACTIONS[template]
    path, form = _concrete(template, ids)
    below = [(role, *as_role(USER_OF[role])) for role in _below(needed)]
    admin, admin_csrf = as_role("ada")
    before = snapshot(db)  # after the sign-ins, which note each operator's last login
    # No session at all.
    assert browser().post(path, data={**form, "csrf_token": "x"}).status_code == 401
    # Every role below the action's, with a valid token of its own.
    for role, client, csrf in below:
        assert client.post(path, data={**form, "csrf_token": csrf}).status_code == 403
        _refusal_recorded(db, f"operator:{USER_OF[role]}", "needs role")
    # The admin, with the token missing or forged.
    assert admin.post(path, data=form).status_code == 403
    assert admin.post(path, data={**form, "csrf_token": admin_csrf[::-1]}).status_code == 403
    _refusal_recorded(db, "operator:ada", "csrf")
    assert snapshot(db) == before


def test_admin_pages_are_refused_to_an_operator(as_role, db):
    client, _ = as_role("oscar")
    answer = client.get("/console/operators")
    assert answer.status_code == 403
    assert "New operator" not in answer.text
    with db.session() as s:
        assert audit.recent(s, 1)[0].action == "console.refused"


def test_navigation_hides_what_a_role_cannot_open(as_role):
    viewer, _ = as_role("vera")
    admin, _ = as_role("ada")
    assert 'href="/console/operators"' not in viewer.get("/console/").text
    assert 'href="/console/operators"' in admin.get("/console/").text


PUBLIC_PAGES = {"/console", "/console/login", "/console/static/{name}", "/console/{missing:path}"}


def test_every_console_page_needs_a_session(browser, fleet):
    client = browser()
    pages = {
        r.path
        for r in _routes(client.app)
        if r.path.startswith("/console") and "GET" in (getattr(r, "methods", None) or ())
    }
    assert len(pages - PUBLIC_PAGES) >= 10
    for template in sorted(pages - PUBLIC_PAGES):
        path = re.sub(r"\{[^}]+\}", "1", template)
        answer = client.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/console/login?next="), path
