"""Checkout fixtures: the insurance platform and the HIS simulators as real HTTP servers, the
hub wired to them, and a hospital window (a unit, its combo terminal, the demo cardholders)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from hub.config import Settings
from hub.db import Database
from integrations.medical_insurance.policy import demo_config
from tests.conftest import OPS_TOKEN
from tests.hub.checkout.window import Simulators, Window
from tests.integrations.conftest import _switchboard, serve  # noqa: F401 (its fixtures, here too)

# Variants of a rule proven on both databases run on SQLite only, to keep the suite fast.
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
INSURANCE_TIMEOUT = 0.3  # seconds the hub waits for the platform in these tests


@pytest.fixture
def simulators(serve: Callable[[FastAPI], str]) -> Iterator[Simulators]:  # noqa: F811
    made = Simulators(serve, demo_config())
    yield made
    made.control.close()


def wired_settings(db: Database, simulators: Simulators, **overrides: Any) -> Settings:
    """The hub wired to this test's simulators."""
    return Settings(
        database_url=db.url,
        ops_api_token=OPS_TOKEN,
        log_json=True,
        insurance_base_url=simulators.insurance_url,
        insurance_timeout_seconds=INSURANCE_TIMEOUT,
        his_base_url=simulators.his_url,
        checkout_call_lease_seconds=30.0,
        **overrides,
    )


@pytest.fixture
def settings(db: Database, simulators: Simulators) -> Settings:
    return wired_settings(db, simulators)


@pytest.fixture
def window(client: Any, db: Database, clock: Any, simulators: Simulators, settings) -> Window:
    return Window(client, db, clock, simulators, settings)
