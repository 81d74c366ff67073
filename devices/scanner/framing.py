"""Turn the character stream of a scan engine into whole scans.

Scan engines (serial or USB-CDC) and keyboard wedges send each decoded code as characters with an
optional configured prefix, an optional AIM symbology identifier (`]Q1` for a QR code) and a
suffix: CR, LF, CR LF, TAB, a custom string, or nothing at all (then only a pause ends a scan).
Engines drift from their configuration in practice (CR LF where CR was set, a stray LF before the
next scan), so every line ending counts as a terminator and empty lines are dropped.
"""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass

# Larger than any QR code can hold (2953 bytes in binary mode), so a longer line is garbage.
MAX_SCAN_CHARS = 4096
_LINE_ENDINGS = frozenset("\r\n")


class Suffix(enum.StrEnum):
    """What the engine is configured to send after each code."""

    CR = "cr"
    LF = "lf"
    CRLF = "crlf"
    TAB = "tab"
    NONE = "none"  # only a pause in the stream ends a scan
    CUSTOM = "custom"  # `Framing.custom_suffix`, e.g. ETX "\x03"


@dataclass(frozen=True)
class Framing:
    """A scan engine's output settings, as set in its configuration (or by programming codes)."""

    suffix: Suffix = Suffix.CR
    prefix: str = ""
    custom_suffix: str = ""
    aim_ids: bool = False  # the engine sends "]" + symbology letter + modifier before each code
    accepted_symbologies: frozenset[str] = frozenset({"Q"})  # AIM letter Q: QR code
    encoding: str = "utf-8"
    max_chars: int = MAX_SCAN_CHARS
    # With Suffix.NONE this pause ends a scan; otherwise a line left open this long is dropped
    # (a half-sent code, e.g. the cable pulled mid-scan).
    idle_seconds: float = 0.1
    stale_seconds: float = 1.0

    def __post_init__(self) -> None:
        if self.suffix is Suffix.CUSTOM and not self.custom_suffix:
            raise ValueError("a custom suffix needs custom_suffix")
        if self.max_chars < 1 or self.idle_seconds <= 0 or self.stale_seconds <= 0:
            raise ValueError("max_chars and the timeouts must be positive")
        codecs.lookup(self.encoding)  # fail at configuration time, not at the first scan


@dataclass(frozen=True)
class Scan:
    """One complete code as the engine read it, framing removed."""

    text: str
    symbology: str | None = None  # AIM identifier such as "]Q1", when the engine sends them


@dataclass(frozen=True)
class RejectedScan:
    """A line that is not a usable scan; never carries the text (it may be a payment code)."""

    reason: str  # too_long, not_text, not_qr, incomplete
    length: int


ScanResult = Scan | RejectedScan


class ScanAssembler:
    """Feed it characters (or bytes) as they arrive; it hands back whole scans.

    Time is passed in by the caller (`now`, seconds on any monotonic clock) so that the idle
    rules can be driven by a test as well as by a reader loop.
    """

    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        # Undecodable bytes become U+FFFD so the rest of the stream stays in step.
        self._decoder = codecs.getincrementaldecoder(framing.encoding)("replace")
        self._buffer: list[str] = []
        self._length = 0
        self._overflow = False
        self._last_input = 0.0

    def feed_bytes(self, data: bytes, now: float) -> list[ScanResult]:
        """Bytes from a serial line; multi-byte characters may be split across reads."""
        return self.feed_text(self._decoder.decode(data), now)

    def feed_text(self, text: str, now: float) -> list[ScanResult]:
        """Characters from a keyboard wedge (or decoded serial bytes)."""
        results = self.tick(now)
        if text:
            self._last_input = now
        for char in text:
            result = self._take(char)
            if result is not None:
                results.append(result)
        if self.framing.suffix is Suffix.CUSTOM:
            results += self._cut_custom_suffixes()
        return results

    def tick(self, now: float) -> list[ScanResult]:
        """Apply the idle rules; call it when no input arrived for a while."""
        if not self._length and not self._overflow:
            return []
        quiet = now - self._last_input
        if self.framing.suffix is Suffix.NONE and quiet >= self.framing.idle_seconds:
            result = self._end_line()
            return [] if result is None else [result]
        if quiet >= self.framing.stale_seconds:
            length = self._length
            self._reset()
            return [RejectedScan("incomplete", length)]
        return []

    def _terminators(self) -> frozenset[str]:
        match self.framing.suffix:
            case Suffix.TAB:
                return _LINE_ENDINGS | {"\t"}
            case Suffix.CR | Suffix.LF | Suffix.CRLF:
                return _LINE_ENDINGS
            case _:
                return frozenset()

    def _take(self, char: str) -> ScanResult | None:
        if char in self._terminators():
            return self._end_line()
        if self._length >= self.framing.max_chars:
            self._overflow = True
            return None
        self._buffer.append(char)
        self._length += 1
        return None

    def _cut_custom_suffixes(self) -> list[ScanResult]:
        suffix = self.framing.custom_suffix
        text = "".join(self._buffer)
        if suffix not in text:
            return []
        *lines, rest = text.split(suffix)
        results: list[ScanResult] = []
        for line in lines:
            self._buffer, self._length = list(line), len(line)
            result = self._end_line()
            if result is not None:
                results.append(result)
        self._buffer, self._length = list(rest), len(rest)
        return results

    def _end_line(self) -> ScanResult | None:
        text, overflow = "".join(self._buffer), self._overflow
        self._reset()
        if overflow:
            return RejectedScan("too_long", len(text))
        if "\ufffd" in text:
            return RejectedScan("not_text", len(text))
        if text.startswith(self.framing.prefix):
            text = text[len(self.framing.prefix) :]
        if not text:
            return None  # the second half of a CR LF, or a stray line ending
        return self._with_symbology(text)

    def _with_symbology(self, text: str) -> ScanResult:
        if not self.framing.aim_ids:
            return Scan(text)
        if len(text) < 3 or text[0] != "]":
            return RejectedScan("not_qr", len(text))
        symbology, text = text[:3], text[3:]
        if symbology[1] not in self.framing.accepted_symbologies or not text:
            return RejectedScan("not_qr", len(text))
        return Scan(text, symbology)

    def _reset(self) -> None:
        self._buffer = []
        self._length = 0
        self._overflow = False
