"""Card registry refusals."""

from __future__ import annotations

from hub.errors import HubError


class CardNotFound(HubError):
    code = "card_not_found"
    status = 404


class CardExists(HubError):
    code = "card_exists"
    status = 409


class CardNotActive(HubError):
    code = "card_blocked"
    status = 403


class CardExpired(HubError):
    code = "card_expired"
    status = 403


class InvalidPan(HubError):
    code = "pan_invalid"
    status = 422
