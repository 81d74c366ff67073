"""A simulated HIS per test, reached only through the real HTTP client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI

from integrations.his.client import HttpHospitalInformationSystem
from integrations.his.simulator import HisControl, HisSimulator, create_app


@pytest.fixture
def start_his(serve: Callable[[FastAPI], str]) -> Iterator[Callable[..., str]]:
    def start(seed: int | None = 7) -> str:
        return serve(create_app(HisSimulator(seed=seed)))

    yield start


@pytest.fixture
def his_url(start_his) -> str:
    return start_his()


@pytest.fixture
def his(his_url) -> Iterator[HttpHospitalInformationSystem]:
    with HttpHospitalInformationSystem(his_url) as client:
        yield client


@pytest.fixture
def his_control(his_url) -> Iterator[HisControl]:
    control = HisControl(his_url)
    yield control
    control.close()
