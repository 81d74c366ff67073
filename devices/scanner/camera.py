"""Camera frames for the hub: a still image file, or a spool folder a camera's capture software
writes into (one file per triggered frame, written under a temporary name then renamed).

Frames are checked here with the hub's own limits before any upload, so a terminal does not send
megabytes the hub would refuse; the bytes themselves are sent as captured, never re-encoded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from devices.qr.frames import DEFAULT_MAX_BYTES
from devices.scanner.errors import FrameRefused

# Leading bytes of the formats the hub decodes (devices.qr.frames.ACCEPTED_FORMATS).
_SIGNATURES = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"BM", "image/bmp"),
)
_PENDING_SUFFIXES = (".tmp", ".part")


@dataclass(frozen=True, repr=False)
class CapturedFrame:
    """One frame's encoded bytes and its media type."""

    data: bytes
    content_type: str
    name: str

    def __repr__(self) -> str:  # never dump image bytes into a log
        return f"CapturedFrame({self.name!r}, {self.content_type}, {len(self.data)} bytes)"


def content_type_of(data: bytes) -> str:
    """The media type from the file's leading bytes; FrameRefused when it is no accepted image."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for signature, content_type in _SIGNATURES:
        if data.startswith(signature):
            return content_type
    raise FrameRefused("frame is not a JPEG, PNG, BMP or WebP image")


def read_frame(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> CapturedFrame:
    """Read one image file, refusing it before reading when it is over `max_bytes`."""
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size > max_bytes:
                raise FrameRefused(f"frame is larger than {max_bytes} bytes")
            data = handle.read(max_bytes + 1)  # the file may have grown since fstat
    except OSError as exc:
        raise FrameRefused(f"cannot read frame {path.name}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise FrameRefused(f"frame is larger than {max_bytes} bytes")
    return CapturedFrame(data, content_type_of(data), path.name)


class SpoolCamera:
    """Frames dropped into a folder by the camera's capture software, oldest first.

    Each frame is removed once handed out; a refused file goes to `rejected/` so that it is kept
    for diagnosis but never offered again.
    """

    def __init__(self, folder: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.rejected = folder / "rejected"

    def _waiting(self) -> list[Path]:
        files = [
            p
            for p in self.folder.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix not in _PENDING_SUFFIXES
        ]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))

    def next_frame(self) -> CapturedFrame | None:
        """The oldest waiting frame (removed from the folder), or None when there is none."""
        for path in self._waiting():
            try:
                frame = read_frame(path, self.max_bytes)
            except FrameRefused:
                self.rejected.mkdir(exist_ok=True)
                path.replace(self.rejected / path.name)
                raise
            path.unlink()
            return frame
        return None

    def frames(
        self, *, poll_seconds: float = 0.05, stop: Callable[[], bool] = lambda: False
    ) -> Iterator[CapturedFrame | FrameRefused]:
        """Frames as they arrive (refusals included, so the caller can tell the cashier)."""
        while not stop():
            try:
                frame = self.next_frame()
            except FrameRefused as refused:
                yield refused
                continue
            if frame is None:
                time.sleep(poll_seconds)
                continue
            yield frame
