"""Errors raised on bad QR payloads and camera frames.

Each subclass carries a stable `code` that the hub maps onto its own error responses. Messages
never quote a payload, since a payment code can carry a full PAN.
"""


class QrError(ValueError):
    """Base of every error the QR library raises for bad input."""

    code: str = "qr_invalid"


class PayloadError(QrError):
    """An MPM or CPM payload breaks the EMVCo format."""

    code = "qr_payload_invalid"


class CrcError(PayloadError):
    """An MPM payload's CRC-16 does not match its content."""

    code = "qr_crc_mismatch"


class FrameError(QrError):
    """A camera frame cannot be turned into exactly one QR payload."""

    code = "frame_invalid"


class FrameNotImage(FrameError):
    """The frame is not an image in a format the scanner path accepts."""

    code = "frame_not_image"


class FrameTooLarge(FrameError):
    """The frame's bytes or declared pixel count exceed the limits."""

    code = "frame_too_large"


class FrameNoCode(FrameError):
    """No readable QR code was found in the frame."""

    code = "frame_no_code"


class FrameMultipleCodes(FrameError):
    """The frame holds more than one distinct QR code, so which one was meant is unknown."""

    code = "frame_multiple_codes"
