"""Simulators run as real HTTP servers on a free loopback port.

One uvicorn server runs for the whole session (starting one per test would cost more than the
tests); each test mounts fresh simulator apps on it under their own path prefix, so no state
is shared between tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import pytest
from fastapi import FastAPI

from hub.demo.day.outside import serving


class Switchboard:
    """An ASGI app that passes `/<prefix>/rest` to the app mounted at that prefix."""

    def __init__(self) -> None:
        self.apps: dict[str, FastAPI] = {}
        self._numbers = count(1)

    def mount(self, app: FastAPI) -> str:
        prefix = f"sim{next(self._numbers)}"
        self.apps[prefix] = app
        return prefix

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        prefix, _, rest = scope["path"].lstrip("/").partition("/")
        app = self.apps.get(prefix)
        if app is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        path = "/" + rest
        await app({**scope, "path": path, "raw_path": path.encode()}, receive, send)


@pytest.fixture(scope="session")
def _switchboard() -> Iterator[tuple[Switchboard, str]]:
    board = Switchboard()
    with serving(board) as url:
        yield board, url


@pytest.fixture
def serve(_switchboard: tuple[Switchboard, str]) -> Iterator[Callable[[FastAPI], str]]:
    """Serve any number of apps for this test; each gets its own base URL."""
    board, url = _switchboard
    mounted: list[str] = []

    def start(app: FastAPI) -> str:
        mounted.append(board.mount(app))
        return f"{url}/{mounted[-1]}"

    yield start
    for prefix in mounted:
        del board.apps[prefix]
