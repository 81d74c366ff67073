"""Errors of the scanner driver; each has a stable `code` the agent reports."""


class ScannerError(Exception):
    """Base of the scanner driver's errors."""

    code: str = "scanner_error"


class ScannerUnavailable(ScannerError):
    """The scan engine or camera cannot be opened or stopped answering."""

    code = "scanner_unavailable"


class FrameRefused(ScannerError):
    """A captured frame is not one the hub would take (too large, not an image file)."""

    code = "frame_refused"
