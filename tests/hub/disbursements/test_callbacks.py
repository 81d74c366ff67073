"""Callbacks through the outbox to the loan system simulator, which is down, then up."""

import pytest
from typer.testing import CliRunner

from hub import cli
from hub.app import outbox_worker
from hub.disbursements import clients, service
from hub.outbox import service as outbox
from integrations.loans.simulator import CallbackInbox, CallbackServer

from .conftest import free_port


@pytest.fixture
def port():
    return free_port()


@pytest.fixture
def issued(db, clock, rules, port):
    """The loan client, with callbacks to a port where the loan system is not (yet) running."""
    url = f"http://127.0.0.1:{port}/callbacks"
    return db.transaction(
        lambda s: clients.create_client(s, "micro-loans", url, rules, clock(), actor="op:test")
    )


@pytest.fixture
def inbox(issued, clock):
    return CallbackInbox({issued.key_id: issued.secret}, clock=lambda: clock().timestamp())


def callback_states(db):
    with db.session() as s:
        return {m.event_id: m.state for m in outbox.messages(s, topic=service.CALLBACK_TOPIC)}


def test_loan_system_down_for_an_hour_gets_every_callback_once_it_is_back(
    db, clock, settings, programme, api, order, inbox, port
):
    for n in range(3):
        api.create(order(external_id=f"L-{n}"))
    api.create(order(external_id="L-bad", card_number="K99999999"))
    api.undo("L-0")
    worker = outbox_worker(settings, db, clock)
    for _ in range(12):  # an hour of failed attempts, polled every five minutes
        worker.drain()
        clock.advance(300)
    assert set(callback_states(db).values()) == {"pending"}  # none lost, none dead
    with CallbackServer(inbox, port=port):
        clock.advance(settings.outbox_backoff_cap_seconds * 1.2)
        worker.drain()
        assert set(inbox.events) == {
            "disb.credited.L-0",
            "disb.credited.L-1",
            "disb.credited.L-2",
            "disb.rejected.L-bad",
            "disb.undone.L-0",
        }
        assert inbox.duplicates == 0 and inbox.refused == 0
        assert inbox.events["disb.rejected.L-bad"]["disbursement"]["reason"] == "card_not_found"
        # A manual re-send arrives again and the loan system ignores it: nothing twice in effect.
        db.transaction(lambda s: service.resend_callbacks(s, "L-1", clock(), actor="op:test"))
        worker.drain()
    assert inbox.duplicates == 1 and len(inbox.events) == 5
    assert set(callback_states(db).values()) == {"delivered"}


def test_callback_refused_by_the_loan_system_is_dead_at_once(
    db, clock, settings, programme, api, order, port
):
    api.create(order())
    wrong_secret = CallbackInbox({"lk_other": "x"}, clock=lambda: clock().timestamp())
    with CallbackServer(wrong_secret, port=port):
        outbox_worker(settings, db, clock).drain()
    assert wrong_secret.refused == 1 and wrong_secret.events == {}
    assert callback_states(db) == {"disb.credited.L-0001": "dead"}


def test_dead_callbacks_are_listed_and_sent_again_from_the_cli(
    db, clock, settings, programme, api, order, inbox, port
):
    settings.outbox_max_attempts = 2
    api.create(order())
    worker = outbox_worker(settings, db, clock)
    worker.drain()
    clock.advance(10)
    worker.drain()
    assert callback_states(db) == {"disb.credited.L-0001": "dead"}
    runner, env = CliRunner(), {"HUB_DATABASE_URL": db.url}
    listed = runner.invoke(cli.app, ["disbursements", "callbacks"], env=env)
    assert "disb.credited.L-0001" in listed.output and "unreachable" in listed.output
    resent = runner.invoke(cli.app, ["disbursements", "resend", "--dead"], env=env)
    assert "1 callback(s) queued again" in resent.output
    clock.advance(2 * 24 * 3600)  # the CLI queued it at the real time; catch the test clock up
    with CallbackServer(inbox, port=port):
        worker.drain()
    assert list(inbox.events) == ["disb.credited.L-0001"]
    assert callback_states(db) == {"disb.credited.L-0001": "delivered"}
