"""What can go wrong at the reader, as types the agent can switch on. No PAN in any message."""


class ReaderError(Exception):
    """Base of every driver error."""


class NoReader(ReaderError):
    """No PC/SC reader is attached (or pcscd is not running)."""


class NoCard(ReaderError):
    """No card was presented before the timeout."""


class CardRemoved(ReaderError):
    """The card left the reader before the transaction finished."""


class CardBlocked(ReaderError):
    """The card's debit application is blocked (SELECT answered 6283)."""


class CardStatusError(ReaderError):
    """The card refused a command with a status word other than 9000."""

    def __init__(self, what: str, sw: int) -> None:
        self.sw = sw
        super().__init__(f"{what} refused with status {sw:04X}")


class CardDataError(ReaderError):
    """The card answered with data the driver cannot use (missing or malformed objects)."""
