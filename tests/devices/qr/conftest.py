import json
from pathlib import Path
from typing import Any

import pytest

# the shared folder is a sibling of the repository root
VECTORS = Path(__file__).parents[3].parent / "shared" / "data" / "vectors.json"


def _load() -> dict[str, Any]:
    # a missing file must fail the run, never skip it
    with VECTORS.open(encoding="utf-8") as handle:
        loaded: dict[str, Any] = json.load(handle)
    return loaded


@pytest.fixture(scope="session")
def mpm_vectors() -> dict[str, Any]:
    return _load()["emvco_mpm"]


@pytest.fixture(scope="session")
def cpm_vectors() -> dict[str, Any]:
    return _load()["emvco_cpm"]
