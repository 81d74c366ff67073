"""What the fuzz tests share: hypothesis settings (derandomized when CI is set, so CI always runs
the same examples), and the checkout's simulators, as real HTTP servers, for the terminal door."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tests.hub.checkout.conftest import simulators  # noqa: F401 (fixtures)
from tests.integrations.conftest import _switchboard, serve  # noqa: F401 (fixtures)

IN_CI = bool(os.environ.get("CI"))


def fuzz_settings(max_examples: int) -> Any:
    return hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=IN_CI,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
