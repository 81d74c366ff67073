"""Loan clients: signed requests, keys stored only as hashes, rotation, disabling."""

import hashlib
import re
from datetime import UTC, datetime

from sqlalchemy import text
from typer.testing import CliRunner

from hub import cli
from hub.disbursements import clients
from integrations.loans.client import ClientKey, DisbursementApi, canonical_json, signed_headers

from .conftest import balance, error_code

PATH = "/api/loans/disbursements"


def send(client, headers, body):
    return client.post(PATH, content=body, headers=headers | {"Content-Type": "application/json"})


def test_key_secret_is_not_stored_only_its_hash(db, issued):
    with db.session() as s:
        row = s.execute(text("SELECT * FROM loan_client_keys")).mappings().one()
    assert issued.secret not in " ".join(str(v) for v in row.values())
    assert row["secret_hash"] == hashlib.sha256(issued.secret.encode()).hexdigest()


TAMPERING = [
    (lambda h, b: (h | {"X-SSC-Signature": "ab" * 32}, b), "signature_invalid"),
    (lambda h, b: (h, b.replace(b"1000000", b"9000000")), "signature_invalid"),
    (lambda h, b: (h | {"X-SSC-Key-Id": "lk_unknown"}, b), "key_unknown"),
    (lambda h, b: ({k: v for k, v in h.items() if k != "X-SSC-Signature"}, b), "signature_missing"),
    (lambda h, b: (h | {"X-SSC-Timestamp": "yesterday"}, b), "timestamp_stale"),
]


def test_badly_signed_order_is_refused_and_moves_no_money(
    db, clock, programme, client, issued, order
):
    key = ClientKey(issued.key_id, issued.secret)
    for tamper, code in TAMPERING:
        body = canonical_json(order())
        headers = signed_headers(key, "POST", PATH, body, clock().timestamp())
        response = send(client, *tamper(headers, body))
        assert (response.status_code, error_code(response)) == (401, code)
    assert balance(db, programme.cards["K10000001"]) == 0


def test_stale_timestamp_is_refused(db, clock, programme, client, issued, order):
    body = canonical_json(order())
    key = ClientKey(issued.key_id, issued.secret)
    old = signed_headers(key, "POST", PATH, body, clock().timestamp() - 301)
    assert error_code(send(client, old, body)) == "timestamp_stale"
    fresh = signed_headers(key, "POST", PATH, body, clock().timestamp() - 299)
    assert send(client, fresh, body).status_code == 201


def test_rotated_key_works_through_the_grace_period_then_stops(
    db, clock, programme, client, issued, rules, order
):
    old = DisbursementApi(
        client, ClientKey(issued.key_id, issued.secret), clock=lambda: clock().timestamp()
    )
    new_key = db.transaction(
        lambda s: clients.rotate_key(s, "micro-loans", rules, clock(), actor="operator:test")
    )
    new = DisbursementApi(client, ClientKey(new_key.key_id, new_key.secret), clock=old.clock)
    assert old.create(order(external_id="R-1")).status_code == 201
    assert new.create(order(external_id="R-2")).status_code == 201
    with db.session() as s:
        client_id = clients.get_client(s, "micro-loans").id
        _, signing_key = clients.callback_target(s, client_id, rules)
    assert signing_key.key_id == new_key.key_id  # callbacks are signed with the newest key
    clock.advance(rules.key_grace_seconds + 1)
    refused = old.get("R-1")
    assert (refused.status_code, error_code(refused)) == (401, "key_expired")
    assert new.get("R-1").status_code == 200


def test_disabled_client_is_refused_whatever_it_signs(db, clock, programme, api, order):
    db.transaction(
        lambda s: clients.set_client_active(s, "micro-loans", False, clock(), actor="op:t")
    )
    refused = api.create(order())
    assert (refused.status_code, error_code(refused)) == (403, "client_disabled")
    db.transaction(lambda s: clients.set_client_active(s, "micro-loans", True, clock(), actor="t"))
    assert api.create(order()).status_code == 201


def test_secret_derivation_depends_on_the_root_key(issued, rules):
    assert clients.client_secret(rules.key_root, issued.key_id) == issued.secret
    assert clients.client_secret(b"another root", issued.key_id) != issued.secret


def test_keys_made_and_rotated_on_the_command_line_sign_requests(db, client, clock):
    runner, env = CliRunner(), {"HUB_DATABASE_URL": db.url}
    created = runner.invoke(
        cli.app,
        ["disbursements", "client", "create", "rural-loans", "--callback-url", "http://x/cb"],
        env=env,
    )
    rotated = runner.invoke(cli.app, ["disbursements", "client", "rotate", "rural-loans"], env=env)
    for result in (created, rotated):
        assert result.exit_code == 0, result.output
        key_id = re.search(r"key id\s+(\S+)", result.output).group(1)
        key = ClientKey(key_id, re.search(r"secret\s+(\S+)", result.output).group(1))
        # The CLI runs on the real clock; sign with it too.
        clock.now = datetime.now(UTC)
        response = DisbursementApi(client, key).list()
        assert response.status_code == 200, response.text
