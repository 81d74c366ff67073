"""Bank operations see every unit's checkouts and can revoke one; nobody else can."""

from __future__ import annotations

from tests.hub.checkout.conftest import sqlite_only
from tests.hub.checkout.test_worked_example import settle_zhang_wei


@sqlite_only
def test_ops_list_look_at_and_revoke_a_checkout(window):
    checkout_id = settle_zhang_wei(window)["checkout_id"]
    ops = window.client
    listed = ops.get("/api/checkouts", params={"state": "completed"}).json()
    assert [c["checkout_id"] for c in listed] == [checkout_id]
    assert ops.get(f"/api/checkouts/{checkout_id}").json()["setl_id"] == listed[0]["setl_id"]
    assert ops.post(f"/api/checkouts/{checkout_id}/revoke").json()["state"] == "revoked"
    assert ops.get(f"/api/checkouts/{checkout_id}/receipt").json()["revoked"] is True
    assert window.audit_actions(checkout_id)[-2:] == ["checkout.revoking", "checkout.revoked"]


@sqlite_only
def test_the_ops_api_wants_the_ops_token(window):
    response = window.client.get("/api/checkouts", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
