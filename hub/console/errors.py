"""Console refusals, each with its HTTP status and a stable code."""

from __future__ import annotations

from hub.errors import HubError


class ConsoleError(HubError):
    code = "console_error"
    status = 400


class SignInRequired(ConsoleError):
    code = "sign_in_required"
    status = 401


class SessionExpired(ConsoleError):
    code = "session_expired"
    status = 401


class RoleRefused(ConsoleError):
    code = "role_refused"
    status = 403


class CsrfRefused(ConsoleError):
    code = "csrf_invalid"
    status = 403


class OperatorNotFound(ConsoleError):
    code = "operator_not_found"
    status = 404


class OperatorExists(ConsoleError):
    code = "operator_exists"
    status = 409


class LastAdmin(ConsoleError):
    code = "last_admin"
    status = 409


class FormInvalid(ConsoleError):
    """Bad form input: one message per field, shown next to the field."""

    code = "form_invalid"
    status = 422

    def __init__(self, fields: dict[str, str], message: str = "") -> None:
        self.fields = fields
        super().__init__(message=message or "please correct the marked fields")
