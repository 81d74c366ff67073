"""Outbox refusals."""

from __future__ import annotations

from hub.errors import HubError


class MessageNotFound(HubError):
    code = "outbox_message_not_found"
    status = 404
