"""Presence from heartbeats, on a clock the test moves: online, stale at 1.5x the interval,
offline at 3x, back online; heartbeats are kept in memory and written in batches."""

from __future__ import annotations

from hub.gateway import presence, service
from hub.gateway.models import PresenceEvent, Terminal
from tests.hub.gateway.conftest import sqlite_only


def _sweep(gateway, db, clock):
    """What the sweeper job does: flush the board, then move terminals past their deadlines."""
    gateway.runtime.flush_presence()
    return db.transaction(lambda s: presence.sweep(s, clock()))


def _presence(gateway, terminal_id):
    return gateway.terminal(terminal_id)["terminal"]["presence"]


def _events(db, terminal_id):
    with db.session() as s:
        rows = s.query(PresenceEvent).filter_by(terminal_id=terminal_id).order_by(PresenceEvent.id)
        return [(e.from_presence, e.to_presence) for e in rows]


def test_presence_goes_stale_then_offline_then_online_again(gateway, unit, db, clock):
    terminal = gateway.new_terminal(unit["id"])
    terminal.heartbeat()
    clock.advance(89)  # interval 60: stale after 90 s
    _sweep(gateway, db, clock)
    assert _presence(gateway, terminal.id) == "online"
    clock.advance(2)
    _sweep(gateway, db, clock)
    assert _presence(gateway, terminal.id) == "stale"
    clock.advance(90)  # offline after 180 s
    assert gateway.runtime.sweep() == 1  # the periodic job itself
    assert _presence(gateway, terminal.id) == "offline"
    terminal.heartbeat()
    _sweep(gateway, db, clock)
    assert _presence(gateway, terminal.id) == "online"
    assert _events(db, terminal.id) == [
        ("offline", "online"),  # enrollment
        ("online", "stale"),
        ("stale", "offline"),
        ("offline", "online"),
    ]


@sqlite_only
def test_steady_heartbeats_keep_a_terminal_online_without_events(gateway, unit, db, clock):
    terminal = gateway.new_terminal(unit["id"])
    for _ in range(5):
        clock.advance(60)
        terminal.heartbeat()
        _sweep(gateway, db, clock)
    assert _presence(gateway, terminal.id) == "online"
    assert _events(db, terminal.id) == [("offline", "online")]


def test_a_terminal_never_heard_after_enrolling_goes_stale_and_offline(gateway, unit, db, clock):
    silent = gateway.new_terminal(unit["id"])  # enrolled, never beats
    never_enrolled = gateway.register(unit["id"])
    clock.advance(181)
    moved = _sweep(gateway, db, clock)
    assert moved == [(silent.id, "online", "offline")]
    assert _presence(gateway, silent.id) == "offline"
    assert _presence(gateway, never_enrolled["id"]) == "offline"
    assert _events(db, never_enrolled["id"]) == []


@sqlite_only
def test_the_interval_is_the_terminals_own(gateway, unit, db, clock):
    terminal = gateway.new_terminal(unit["id"])
    terminal.heartbeat(heartbeat_interval_seconds=10)
    clock.advance(16)
    _sweep(gateway, db, clock)
    assert _presence(gateway, terminal.id) == "stale"


def test_a_heartbeat_writes_no_row_until_the_flush(gateway, unit, db, clock):
    terminal = gateway.new_terminal(unit["id"])
    enrolled_at = gateway.terminal(terminal.id)["terminal"]["last_seen_at"]
    clock.advance(30)
    terminal.heartbeat(uptime_seconds=30, outbox_depth=2, peripherals={"card_reader": "ready"})
    terminal.heartbeat(uptime_seconds=31, outbox_depth=0)
    assert len(gateway.runtime.presence) == 1  # the latest sighting only
    assert gateway.terminal(terminal.id)["terminal"]["last_seen_at"] == enrolled_at
    assert gateway.runtime.flush_presence() == 1
    row = gateway.terminal(terminal.id)["terminal"]
    assert row["last_seen_at"] == "2026-11-29T08:00:30Z"
    assert (row["last_sequence"], row["uptime_seconds"], row["outbox_depth"]) == (2, 31, 0)
    assert gateway.runtime.flush_presence() == 0


@sqlite_only
def test_an_older_sighting_never_moves_last_seen_back(db, gateway, unit, clock):
    terminal = gateway.new_terminal(unit["id"])
    board = presence.PresenceBoard()
    newer = presence.Sighting(at=clock.advance(10), interval=60, sequence=2, firmware_version="1")
    older = presence.Sighting(at=clock.now.replace(second=5), interval=60, sequence=1,
                              firmware_version="1")  # fmt: skip
    board.record(terminal.id, newer)
    presence.flush(db, board)
    board.record(terminal.id, older)
    presence.flush(db, board)
    with db.session() as s:
        assert s.get(Terminal, terminal.id).last_sequence == 2


@sqlite_only
def test_next_interval_is_jittered_around_the_terminals_interval(gateway, unit):
    terminal = gateway.new_terminal(unit["id"])
    intervals = {terminal.heartbeat()["next_interval_seconds"] for _ in range(20)}
    assert all(54 <= i <= 66 for i in intervals)
    assert len(intervals) > 1


def test_units_count_their_terminals_by_presence(gateway, unit, db, clock):
    beating = gateway.new_terminal(unit["id"])
    gateway.new_terminal(unit["id"])  # quiet since enrolling
    gateway.register(unit["id"])  # never enrolled
    clock.advance(100)
    beating.heartbeat()
    gateway.new_terminal(unit["id"])  # enrolled just now
    _sweep(gateway, db, clock)
    with db.session() as s:
        (summary,) = service.list_units(s)
    counts = (summary.terminals, summary.online, summary.stale, summary.not_enrolled)
    assert counts == (4, 2, 1, 1)
