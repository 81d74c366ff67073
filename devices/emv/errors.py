"""Errors raised on malformed EMV input; messages never carry PINs, PANs or keys."""


class EmvError(ValueError):
    """Base of every error the EMV library raises for bad input."""


class TlvError(EmvError):
    """A BER-TLV stream is truncated, overlong or uses an unsupported form."""


class DolError(EmvError):
    """A data object list cannot be parsed or filled."""


class PinBlockError(EmvError):
    """A PIN, PAN or PIN block does not fit the ISO 9564 format."""


class CryptoInputError(EmvError):
    """A key, ATC, cryptogram or input field has the wrong shape."""
