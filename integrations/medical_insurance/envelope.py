"""The national platform's message envelope, transaction codes, msgid and times.

Every call is one POST of a request envelope to one path; the transaction is named by `infno`
and its data sits in `input`. The answer's `infcode` is 0 on success, and `output` carries the
data. Times are China Standard Time, written without a zone.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

CALL_PATH = "/fsi/api/rsfComIfsService/callService"
CHINA_TZ = timezone(timedelta(hours=8), "CST")
INF_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_MSGID_TIME_FORMAT = "%Y%m%d%H%M%S"
_MSGID_SEQ_DIGITS = 4
INFCODE_SUCCESS = 0
INFCODE_FAILURE = -1


class Infno(StrEnum):
    """The transactions SSC Hub speaks, by their national numbers."""

    SIGN_IN = "9001"
    PERSON_INFO = "1101"
    REGISTER_VISIT = "2201"
    UPLOAD_FEES = "2204"
    PRE_SETTLE = "2206"
    SETTLE = "2207"
    REVOKE_SETTLEMENT = "2208"
    RECONCILIATION_TOTALS = "3201"


class RequestEnvelope(BaseModel):
    """What the medical institution sends; `input` holds the transaction's own data."""

    model_config = ConfigDict(extra="ignore")

    infno: str
    msgid: str
    mdtrtarea_admvs: str
    insuplc_admdvs: str = ""
    recer_sys_code: str = "FSI"
    infver: str = "V1.0"
    opter_type: str = "1"
    opter: str
    opter_name: str = ""
    inf_time: str
    fixmedins_code: str
    fixmedins_name: str
    sign_no: str = ""
    input: dict[str, Any]


class ResponseEnvelope(BaseModel):
    """What the platform answers; `output` is empty when `infcode` is not 0."""

    model_config = ConfigDict(extra="ignore")

    infcode: int
    inf_refmsgid: str = ""
    refmsg_time: str = ""
    respond_time: str = ""
    err_msg: str = ""
    warn_msg: str = ""
    output: dict[str, Any] = {}


def china_time(at: datetime) -> datetime:
    """`at` in China Standard Time; a naive datetime is taken to be China time already."""
    return at.replace(tzinfo=CHINA_TZ) if at.tzinfo is None else at.astimezone(CHINA_TZ)


def format_inf_time(at: datetime) -> str:
    """Write a transaction time the platform's way: "2026-11-29 16:00:00" in China time."""
    return china_time(at).strftime(INF_TIME_FORMAT)


def parse_inf_time(text: str) -> datetime:
    """Read a transaction time written by `format_inf_time`; raises ValueError."""
    return datetime.strptime(text, INF_TIME_FORMAT).replace(tzinfo=CHINA_TZ)


def make_msgid(fixmedins_code: str, at: datetime, seq: int) -> str:
    """Institution code + yyyyMMddHHmmss (China time) + 4-digit sequence.

    The caller picks `seq` (0-9999); two messages of one institution in one second need two
    sequences. Persist the msgid before sending so a retry reuses it.
    """
    if not 0 <= seq < 10**_MSGID_SEQ_DIGITS:
        raise ValueError("msgid sequence must have at most four digits")
    stamp = china_time(at).strftime(_MSGID_TIME_FORMAT)
    return f"{fixmedins_code}{stamp}{seq:0{_MSGID_SEQ_DIGITS}d}"


def parse_msgid(msgid: str, fixmedins_code: str) -> tuple[datetime, int]:
    """Split a msgid of `fixmedins_code` into its time and sequence; raises ValueError."""
    if not msgid.startswith(fixmedins_code):
        raise ValueError("msgid does not start with the institution code")
    rest = msgid[len(fixmedins_code) :]
    stamp, seq = rest[:-_MSGID_SEQ_DIGITS], rest[-_MSGID_SEQ_DIGITS:]
    if len(rest) != 14 + _MSGID_SEQ_DIGITS or not rest.isdigit():
        raise ValueError("msgid must end with yyyyMMddHHmmss and a 4-digit sequence")
    at = datetime.strptime(stamp, _MSGID_TIME_FORMAT).replace(tzinfo=CHINA_TZ)
    return at, int(seq)


class _Sequence:
    """A msgid sequence, by default starting at a random point.

    One is shared by every MsgidSource, so two clients (or a client made again after a simulated
    crash) never hand out the same msgid, even under a frozen test clock; the random start
    makes a clash with the process before a restart unlikely.
    """

    def __init__(self, start: int | None = None) -> None:
        limit = 10**_MSGID_SEQ_DIGITS
        self._next = random.randrange(limit) if start is None else start % limit
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            seq, self._next = self._next, (self._next + 1) % 10**_MSGID_SEQ_DIGITS
        return seq


_PROCESS_SEQUENCE = _Sequence()


class MsgidSource:
    """Hands out msgids for one institution, stamped with the clock's time.

    The sequence is shared process-wide unless `start` gives this source its own (for tests).
    """

    def __init__(
        self,
        fixmedins_code: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        start: int | None = None,
    ) -> None:
        self._code = fixmedins_code
        self._clock = clock
        self._sequence = _PROCESS_SEQUENCE if start is None else _Sequence(start)

    def next(self) -> str:
        """A fresh msgid stamped with the clock's current time."""
        return make_msgid(self._code, self._clock(), self._sequence.take())
