"""Draw payloads as QR codes (error correction M) for screens, receipts and enrolment sheets."""

from __future__ import annotations

import io

import qrcode  # type: ignore[import-untyped]
import qrcode.image.svg  # type: ignore[import-untyped]
from qrcode.exceptions import DataOverflowError  # type: ignore[import-untyped]

from devices.qr.errors import PayloadError


def _code(payload: str, box_size: int, border: int) -> qrcode.QRCode:
    if box_size < 1 or border < 0:
        raise ValueError("box_size must be at least 1 and border at least 0")
    code = qrcode.QRCode(
        error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=box_size, border=border
    )
    try:
        code.add_data(payload)
        code.make(fit=True)
    except UnicodeEncodeError:  # lone surrogates cannot be put into a QR code
        raise PayloadError("payload is not encodable as UTF-8") from None
    except (DataOverflowError, ValueError):  # fitting past version 40 raises ValueError
        raise PayloadError("payload is too long for a QR code") from None
    return code


def render_png(payload: str, *, box_size: int = 8, border: int = 4) -> bytes:
    """Return a black-on-white PNG of `payload`; `border` is the quiet zone in modules."""
    image = _code(payload, box_size, border).make_image(fill_color="black", back_color="white")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def render_svg(payload: str) -> str:
    """Return a standalone SVG document of `payload`, sized in mm, with a 4-module quiet zone."""
    image = _code(payload, box_size=10, border=4).make_image(
        image_factory=qrcode.image.svg.SvgPathImage
    )
    svg: bytes = image.to_string(encoding="utf-8", xml_declaration=True)
    return svg.decode("utf-8")
