"""The two ways a platform call can fail, which the caller must treat differently."""

from __future__ import annotations

DUPLICATE_MSGID = "duplicate msgid"
SIGN_IN_REQUIRED = "sign_no invalid"


class InsuranceError(Exception):
    """The platform answered and refused (infcode is not 0): this message did nothing.

    Retrying the same message will not help; something must change first.
    """

    def __init__(self, infcode: int, err_msg: str, *, infno: str = "", msgid: str = "") -> None:
        super().__init__(f"insurance platform refused {infno} {msgid}: [{infcode}] {err_msg}")
        self.infcode = infcode
        self.err_msg = err_msg
        self.infno = infno
        self.msgid = msgid

    @property
    def duplicate_msgid(self) -> bool:
        """The platform says it has seen this msgid before (with other content, or it thinks so)."""
        return DUPLICATE_MSGID in self.err_msg

    @property
    def sign_in_required(self) -> bool:
        """The sign-in number was refused; sign in again and resend the same message."""
        return SIGN_IN_REQUIRED in self.err_msg


class InsuranceTimeout(Exception):
    """No usable answer came (timeout, lost connection, gateway error, unreadable answer).

    The outcome is unknown: the platform may have done the work. Resend the same msgid; the
    platform answers a repeated msgid with its first answer.
    """

    def __init__(self, reason: str, *, infno: str = "", msgid: str = "") -> None:
        super().__init__(f"no answer from the insurance platform to {infno} {msgid}: {reason}")
        self.reason = reason
        self.infno = infno
        self.msgid = msgid
