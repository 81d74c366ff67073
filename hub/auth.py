"""Bearer-token access to the bank-ops REST API (the console has its own operator sessions)."""

from __future__ import annotations

import hmac

from fastapi import Request

from hub.errors import HubError


class Unauthorized(HubError):
    code = "unauthorized"
    status = 401


def require_ops(request: Request) -> None:
    expected = request.app.state.settings.ops_api_token.get_secret_value()
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized(message="a valid ops API token is required")
