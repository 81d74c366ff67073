"""The in-memory caches behind authentication: the terminal directory is told of changes (at
once in this process, through the change feed in others), and the nonce cache is bounded."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.gateway import service
from hub.gateway.auth import NonceCache
from hub.gateway.errors import NonceCacheFull
from tests.hub.gateway.conftest import GatewayDriver, sqlite_only


def test_a_change_committed_in_this_process_drops_the_entry_at_once(gateway, unit, db, clock):
    terminal = gateway.new_terminal(unit["id"])
    terminal.heartbeat()
    assert gateway.runtime.directory.cached(terminal.id) is not None
    db.transaction(lambda s: service.disable_terminal(s, terminal.id, actor="test", now=clock()))
    assert gateway.runtime.directory.cached(terminal.id) is None


@sqlite_only
def test_a_rolled_back_change_drops_nothing(gateway, unit, db, clock):
    terminal = gateway.new_terminal(unit["id"])
    terminal.heartbeat()

    def disable_then_fail(s):
        service.disable_terminal(s, terminal.id, actor="test", now=clock())
        raise RuntimeError("the rest of the work failed")

    with pytest.raises(RuntimeError):
        db.transaction(disable_then_fail)
    assert gateway.runtime.directory.cached(terminal.id) is not None
    terminal.heartbeat()


def test_another_hub_process_learns_of_a_disable_through_the_change_feed(
    gateway, unit, settings, db, clock
):
    terminal = gateway.new_terminal(unit["id"])
    other_app = create_app(settings, database=db, clock=clock, run_workers=False)
    with TestClient(other_app) as other_client:
        other = GatewayDriver(other_client, clock)
        other.runtime.poll_changes()  # starts following the feed
        seen_by_other = other.sim(
            {"id": terminal.id, "serial": terminal.serial, "model": terminal.model}, terminal.key
        )
        seen_by_other.heartbeat()
        # Stand-in for another process: its cache must not hear of this commit directly.
        other.runtime.directory.engine = None
        gateway.ok("POST", f"/api/gateway/terminals/{terminal.id}/disable")
        assert other.runtime.directory.cached(terminal.id) is not None
        assert other.runtime.poll_changes() >= 1
        assert other.runtime.directory.cached(terminal.id) is None
        response = seen_by_other.hub.send("POST", "/api/terminal/heartbeat", b"{}")
        assert response.json()["error"]["code"] == "terminal_disabled"


def test_nonces_are_forgotten_once_their_timestamp_leaves_the_window():
    cache = NonceCache(window=300, max_entries=10)
    assert cache.remember(1, 1_000, "n" * 16, now=1_000)
    assert not cache.remember(1, 1_000, "n" * 16, now=1_100)
    assert cache.remember(2, 1_000, "n" * 16, now=1_100)  # per terminal
    assert len(cache) == 2
    cache.remember(1, 1_500, "m" * 16, now=1_500)  # 1_000's bucket is past the window now
    assert len(cache) == 1


def test_a_full_nonce_cache_refuses_rather_than_forgets():
    cache = NonceCache(window=300, max_entries=2)
    cache.remember(1, 1_000, "a" * 16, now=1_000)
    cache.remember(1, 1_000, "b" * 16, now=1_000)
    with pytest.raises(NonceCacheFull):
        cache.remember(1, 1_000, "c" * 16, now=1_000)
    assert not cache.remember(1, 1_000, "a" * 16, now=1_000)


def test_the_start_up_job_loads_every_enrolled_terminal(gateway, unit, db):
    enrolled = [gateway.new_terminal(unit["id"]) for _ in range(3)]
    gateway.register(unit["id"])  # never enrolled: nothing to cache
    runtime = gateway.runtime
    runtime.directory.forget([(None, None)])
    runtime.start_up()
    assert len(runtime.directory) == 3
    assert {runtime.directory.cached(t.id).serial for t in enrolled} == {t.serial for t in enrolled}
