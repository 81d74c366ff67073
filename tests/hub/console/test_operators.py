"""Operator accounts: argon2 hashes, roles, the last admin, and the forms that change them."""

from __future__ import annotations

import pytest

from hub.audit import service as audit
from hub.console import service
from hub.console.errors import FormInvalid, LastAdmin, OperatorExists
from hub.console.models import Role


def _create(db, policy, clock, username="ann", role=Role.VIEWER, password="long enough pw"):
    return db.transaction(
        lambda s: service.create_operator(
            s,
            username=username,
            display_name="Ann",
            password=password,
            role=role,
            policy=policy,
            actor="system:test",
            now=clock(),
        )
    )


def test_password_is_kept_only_as_an_argon2id_hash(db, policy, clock):
    created = _create(db, policy, clock, password="s3cret-passphrase")
    assert created.password_hash.startswith("$argon2id$")
    assert "s3cret-passphrase" not in created.password_hash
    with db.session() as s:
        entry = audit.recent(s, 1)[0]
    assert entry.action == "operator.created" and "s3cret" not in str(entry.details)


def test_bad_fields_are_named(db, policy, clock):
    with pytest.raises(FormInvalid) as refused:
        _create(db, policy, clock, username="A B", password="short")
    assert set(refused.value.fields) == {"username", "password"}


def test_user_name_is_unique_whatever_the_case(db, policy, clock):
    _create(db, policy, clock, username="ann")
    with pytest.raises(OperatorExists):
        _create(db, policy, clock, username="ANN")


def test_last_active_admin_cannot_be_demoted_or_disabled(db, policy, clock):
    _create(db, policy, clock, username="boss", role=Role.ADMIN)
    with pytest.raises(LastAdmin):
        db.transaction(lambda s: service.set_role(s, "boss", Role.VIEWER, actor="x", now=clock()))
    with pytest.raises(LastAdmin):
        db.transaction(lambda s: service.set_disabled(s, "boss", True, actor="x", now=clock()))
    _create(db, policy, clock, username="deputy", role=Role.ADMIN)
    db.transaction(lambda s: service.set_role(s, "boss", Role.VIEWER, actor="x", now=clock()))


def test_role_change_is_audited_with_before_and_after(as_role, db):
    admin, csrf = as_role("ada")
    answer = admin.post(
        "/console/operators/vera/role", data={"role": "operator", "csrf_token": csrf}
    )
    assert answer.status_code == 303
    with db.session() as s:
        entry = audit.recent(s, 1)[0]
    assert (entry.action, entry.actor, entry.subject) == (
        "operator.role_changed",
        "operator:ada",
        "operator:vera",
    )
    assert entry.details == {"from": "viewer", "to": "operator"}


def test_promoted_viewer_may_act_at_once(as_role):
    vera, _ = as_role("vera")
    admin, csrf = as_role("ada")
    assert vera.get("/console/operators").status_code == 403
    admin.post("/console/operators/vera/role", data={"role": "admin", "csrf_token": csrf})
    assert vera.get("/console/operators").status_code == 200


def test_create_form_shows_field_errors_and_keeps_input(as_role):
    admin, csrf = as_role("ada")
    answer = admin.post(
        "/console/operators",
        data={
            "username": "Bad Name",
            "display_name": "Bad",
            "password": "x",
            "role": "viewer",
            "csrf_token": csrf,
        },
    )
    assert answer.status_code == 422
    assert 'aria-invalid="true"' in answer.text
    assert "at least 10 characters" in answer.text
    assert 'value="Bad"' in answer.text


def test_forged_role_value_is_refused(as_role, db):
    admin, csrf = as_role("ada")
    answer = admin.post("/console/operators/vera/role", data={"role": "root", "csrf_token": csrf})
    assert answer.status_code == 422
    with db.session() as s:
        assert service.get_operator(s, "vera").role == "viewer"


def test_admin_creates_an_operator_who_can_sign_in(as_role, browser):
    from tests.hub.console.conftest import sign_in

    admin, csrf = as_role("ada")
    answer = admin.post(
        "/console/operators",
        data={
            "username": "li.na",
            "display_name": "Li Na",
            "password": "a fine passphrase",
            "role": "operator",
            "csrf_token": csrf,
        },
    )
    assert answer.status_code == 303
    assert "Li Na" in admin.get("/console/operators").text
    assert sign_in(browser(), "li.na", "a fine passphrase")
