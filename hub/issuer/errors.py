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


# Issuer cryptography.


class IssuerKeyMissing(HubError):
    code = "issuer_key_missing"
    status = 409


class IssuerKeysExhausted(HubError):
    code = "issuer_key_versions_exhausted"
    status = 409


class IccDataInvalid(HubError):
    code = "icc_data_invalid"
    status = 422


class PinKeyInvalid(HubError):
    code = "pin_key_invalid"
    status = 422


class PinKeyUnknown(HubError):
    """The PIN block names a key version this terminal never agreed: agree a new one."""

    code = "pin_key_unknown"
    status = 409


class PinFormatInvalid(HubError):
    code = "pin_invalid"
    status = 422
