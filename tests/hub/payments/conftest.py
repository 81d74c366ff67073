"""Fixtures of the QR tests (payment codes, bill codes, frames); see qr_desk.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.hub.payments.qr_desk import QrDesk

VECTORS = Path(__file__).parents[3].parent / "shared" / "data" / "vectors.json"


@pytest.fixture
def desk(client: TestClient, clock: Any, db: Any) -> QrDesk:
    return QrDesk(client, clock, db)


@pytest.fixture(scope="session")
def mpm_vectors() -> dict[str, Any]:
    # a missing file must fail the run, never skip it
    with VECTORS.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)["emvco_mpm"]
    return loaded
