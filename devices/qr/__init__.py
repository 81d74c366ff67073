"""EMVCo QR payloads: merchant-presented bill codes (MPM), consumer-presented payment codes (CPM),
QR rendering (`devices.qr.render`) and camera-frame decoding (`devices.qr.frames`).

The codecs are pure; render and frames are imported on their own so that code needing only the
codecs does not load qrcode, Pillow or zxing-cpp.
"""

from devices.qr.cpm import ConsumerPayload, decode_cpm, encode_cpm
from devices.qr.errors import (
    CrcError,
    FrameError,
    FrameMultipleCodes,
    FrameNoCode,
    FrameNotImage,
    FrameTooLarge,
    PayloadError,
    QrError,
)
from devices.qr.mpm import (
    MpmField,
    crc16_ccitt_false,
    decode_mpm,
    encode_mpm,
    field,
    subfield,
    template,
)

__all__ = [
    "ConsumerPayload",
    "CrcError",
    "FrameError",
    "FrameMultipleCodes",
    "FrameNoCode",
    "FrameNotImage",
    "FrameTooLarge",
    "MpmField",
    "PayloadError",
    "QrError",
    "crc16_ccitt_false",
    "decode_cpm",
    "decode_mpm",
    "encode_cpm",
    "encode_mpm",
    "field",
    "subfield",
    "template",
]
