"""Find the one QR code in a camera frame (JPEG, PNG, BMP or WebP bytes) and return its text.

Frames come from terminals we do not control, so size is refused before parsing, the declared
pixel count is refused before any pixel is decoded, and every parser failure becomes a FrameError.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import zxingcpp
from PIL import Image, ImageFilter

from devices.qr.errors import (
    FrameMultipleCodes,
    FrameNoCode,
    FrameNotImage,
    FrameTooLarge,
    PayloadError,
)

ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_PIXELS = 16_000_000
# Pillow's format plugins raise any of these on truncated or malformed input.
_PARSE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
)
# The warning arrives as an exception only where warnings are errors; elsewhere _pixel_limit
# already refuses every frame Pillow would warn about.
_BOMB_ERRORS = (Image.DecompressionBombError, Image.DecompressionBombWarning)
# Retries run only when the first pass finds nothing; each must stay cheap on a 1280x720 frame.
_MIN_SIDE_TO_HALVE = 400
QR_ONLY = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)


def _pixel_limit(max_pixels: int) -> int:
    # Never allow more than Pillow's own limit, above which it warns (and at twice it refuses).
    pillow_limit = Image.MAX_IMAGE_PIXELS
    return max_pixels if pillow_limit is None else min(max_pixels, pillow_limit)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except _BOMB_ERRORS:
        raise FrameTooLarge("frame declares too many pixels") from None
    except _PARSE_ERRORS:
        raise FrameNotImage("frame is not a JPEG, PNG, BMP or WebP image") from None
    width, height = image.size
    if width * height > _pixel_limit(max_pixels):
        raise FrameTooLarge(f"frame declares {width}x{height} pixels")
    return image


def _greyscale(image: Image.Image) -> Image.Image:
    try:
        image.draft("L", image.size)  # JPEG decodes straight to luma, skipping colour conversion
        return image.convert("L")
    except _BOMB_ERRORS:
        raise FrameTooLarge("frame declares too many pixels") from None
    except _PARSE_ERRORS:
        raise FrameNotImage("frame image data is truncated or corrupt") from None


def _scan(image: Image.Image) -> set[bytes]:
    # zxing-cpp, not zbar: on the same frames (bench/qr.py) it read 90 of 90 codes, tilted ones
    # included, where zbar read 71, and about three times as fast.
    found = zxingcpp.read_barcodes(image, formats=QR_ONLY)
    return {code.bytes for code in found}


def _halved(image: Image.Image) -> Image.Image | None:
    # Averaging 2x2 blocks smooths sensor noise and JPEG ringing (and is the cheapest pass).
    return image.reduce(2) if min(image.size) >= _MIN_SIDE_TO_HALVE else None


def _sharpened(image: Image.Image) -> Image.Image:
    # An unsharp mask restores module edges of a slightly out-of-focus code.
    return image.filter(ImageFilter.UnsharpMask(radius=2, percent=150, threshold=3))


_RETRIES: tuple[Callable[[Image.Image], Image.Image | None], ...] = (_halved, _sharpened)


def _find_codes(image: Image.Image) -> set[bytes]:
    codes = _scan(image)
    for retry in _RETRIES:
        if codes:
            break
        variant = retry(image)
        if variant is not None:
            codes = _scan(variant)
    return codes


def decode_frame(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS
) -> str:
    """Return the text of the single QR code in an image frame.

    Raises FrameTooLarge (bytes or declared pixels over the limits, checked before decoding),
    FrameNotImage, FrameNoCode, FrameMultipleCodes (two or more distinct codes), or PayloadError
    when the code does not hold UTF-8 text.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameNotImage("frame must be bytes")
    if len(data) > max_bytes:
        raise FrameTooLarge(f"frame is larger than {max_bytes} bytes")
    codes = _find_codes(_greyscale(_open(bytes(data), max_pixels)))
    if not codes:
        raise FrameNoCode("no readable QR code in the frame")
    if len(codes) > 1:
        raise FrameMultipleCodes(f"{len(codes)} different QR codes in the frame")
    try:
        return codes.pop().decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("QR code does not hold UTF-8 text") from None
