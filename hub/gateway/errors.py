"""Gateway refusals, each with its HTTP status and a stable machine code."""

from __future__ import annotations

from hub.errors import HubError


class GatewayError(HubError):
    code = "gateway_error"
    status = 400


class TerminalRefused(GatewayError):
    """A terminal request refused by authentication; the code says why (written to the audit)."""

    def __init__(self, code: str, message: str, status: int = 401) -> None:
        super().__init__(code, message, status)


class UnitNotFound(GatewayError):
    code = "unit_not_found"
    status = 404


class UnitExists(GatewayError):
    code = "unit_exists"
    status = 409


class TerminalNotFound(GatewayError):
    code = "terminal_not_found"
    status = 404


class SerialTaken(GatewayError):
    code = "serial_taken"
    status = 409


class UnknownModel(GatewayError):
    code = "unknown_model"
    status = 422


class KindMismatch(GatewayError):
    code = "kind_mismatch"
    status = 422


class ModelMismatch(GatewayError):
    code = "model_mismatch"
    status = 422


class InvalidPublicKey(GatewayError):
    code = "invalid_public_key"
    status = 422


class PublicKeyInUse(GatewayError):
    code = "public_key_in_use"
    status = 409


class EnrollmentCodeInvalid(GatewayError):
    code = "enrollment_code_invalid"
    status = 401


class EnrollmentCodeExpired(GatewayError):
    code = "enrollment_code_expired"
    status = 401


class EnrollmentCodeUsed(GatewayError):
    code = "enrollment_code_used"
    status = 409


class TerminalDisabled(GatewayError):
    code = "terminal_disabled"
    status = 403


class UnitDisabled(GatewayError):
    code = "unit_disabled"
    status = 403


class CommandNotFound(GatewayError):
    code = "command_not_found"
    status = 404


class CommandClosed(GatewayError):
    """A reply for a command that already expired or failed; the terminal should drop it."""

    code = "command_closed"
    status = 409


class CommandInvalid(GatewayError):
    code = "command_invalid"
    status = 422


class ConfigInvalid(GatewayError):
    code = "config_invalid"
    status = 422


class ConfigVersionExists(GatewayError):
    code = "config_version_exists"
    status = 409


class ConfigNotFound(GatewayError):
    code = "config_not_found"
    status = 404


class NoDesiredConfig(GatewayError):
    code = "no_desired_config"
    status = 404


class RolloutNotFound(GatewayError):
    code = "rollout_not_found"
    status = 404


class RolloutStateInvalid(GatewayError):
    """The operation does not fit the rollout's status (e.g. resume a completed rollout)."""

    code = "rollout_state_invalid"
    status = 409


class RolloutInvalid(GatewayError):
    code = "rollout_invalid"
    status = 422


class ImportInvalid(GatewayError):
    code = "import_invalid"
    status = 422


class BodyTooLarge(GatewayError):
    code = "body_too_large"
    status = 413


class NonceCacheFull(GatewayError):
    code = "busy"
    status = 503
