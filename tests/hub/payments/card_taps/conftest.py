"""Fixtures of the card-tap tests: an issuer key, a unit and one of its enrolled terminals."""

from typing import Any

import pytest

from tests.hub.payments.card_taps.world import Terminal, World


@pytest.fixture
def world(db: Any, clock: Any, client: Any) -> World:
    made = World(db, clock, client)
    made.issuer_key()
    return made


@pytest.fixture
def unit(world: World) -> tuple[int, str]:
    return world.unit()


@pytest.fixture
def terminal(world: World, unit: tuple[int, str]) -> Terminal:
    return world.terminal(unit)
