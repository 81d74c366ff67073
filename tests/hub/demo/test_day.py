"""The seeded district day (`sshub simulate day`): seeded days keep the books the model keeps,
a day replays exactly from its seed (on PostgreSQL as on SQLite), and a difference from the
model stops the day at its step."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hub.cli import app
from hub.db import Database
from hub.demo.day import DayOptions, run_day

# Days that must keep passing. A seed that ever finds a mismatch is added here and stays here
# for good, so the day that found it runs again on every test run.
SEEDS = [1, 2, 3]
EVENTS = 40  # per day here; `sshub simulate day` runs 300 by default


@pytest.mark.parametrize("seed", SEEDS)
def test_a_seeded_day_keeps_the_books_the_model_keeps(seed: int) -> None:
    report = run_day(DayOptions(seed=seed, events=EVENTS))
    assert report.failure is None, "\n".join(report.summary())
    assert report.checks["ledger comparisons"] == EVENTS + 1  # each step, and the closing
    assert report.checks["outcomes"] > EVENTS  # each answer was held against the model


def test_the_same_seed_replays_the_same_day() -> None:
    first = run_day(DayOptions(seed=11, events=EVENTS))
    again = run_day(DayOptions(seed=11, events=EVENTS))
    assert first.failure is None and again.failure is None
    assert sum(first.faults.values()) > 0  # a day with faults in it, not a quiet one
    assert again.log == first.log
    assert again.digest == first.digest
    other = run_day(DayOptions(seed=12, events=EVENTS))
    assert other.digest != first.digest


def test_a_difference_from_the_model_stops_the_day_at_its_step() -> None:
    report = run_day(DayOptions(seed=5, events=20, plant_mismatch_at=9))
    assert report.failure is not None
    assert report.failure.step == 9
    assert "card:K10000001 credits_posted" in report.failure.problem
    assert "(-1)" in report.failure.problem  # the ledger has 1 fen less than the planted model
    assert len(report.log) == 8  # the steps that passed, and nothing after the failing one
    summary = "\n".join(report.summary())
    assert "MISMATCH seed 5, step 9:" in summary


@pytest.mark.postgres
def test_a_day_on_postgresql_is_the_same_day_as_on_sqlite(pg: Database) -> None:
    on_postgres = run_day(DayOptions(seed=7, events=EVENTS, database_url=pg.url))
    assert on_postgres.failure is None, "\n".join(on_postgres.summary())
    assert on_postgres.database == "postgresql"
    on_sqlite = run_day(DayOptions(seed=7, events=EVENTS))
    assert on_postgres.digest == on_sqlite.digest


def test_sshub_simulate_day_prints_the_report_and_exits_1_on_a_mismatch() -> None:
    runner = CliRunner()
    passed = runner.invoke(app, ["simulate", "day", "--seed", "3", "--events", "6", "--log"])
    assert passed.exit_code == 0, passed.output
    assert "0006 " in passed.output and "every check held" in passed.output
    assert "digest   " in passed.output
    failed = runner.invoke(
        app, ["simulate", "day", "--seed", "3", "--events", "6", "--plant-mismatch-at", "4"]
    )
    assert failed.exit_code == 1
    assert "MISMATCH seed 3, step 4" in failed.output
