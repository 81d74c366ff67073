"""Camera frames made here with qrcode and Pillow, from clean to hostile."""

import contextlib
import io
import random
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFilter
from pyzbar.pyzbar import decode as zbar_decode

from devices.qr.errors import (
    FrameMultipleCodes,
    FrameNoCode,
    FrameNotImage,
    FrameTooLarge,
    QrError,
)
from devices.qr.frames import decode_frame
from devices.qr.render import render_png

VGA = (640, 480)
HD = (1280, 720)


def code_image(payload: str, box_size: int = 4) -> Image.Image:
    return Image.open(io.BytesIO(render_png(payload, box_size=box_size))).convert("L")


def grain(size: tuple[int, int], seed: int = 1) -> Image.Image:
    """Seeded sensor-like noise: the mean of two uniform fields is bell-shaped around grey."""
    rng = random.Random(seed)
    fields = [Image.frombytes("L", size, rng.randbytes(size[0] * size[1])) for _ in range(2)]
    return Image.blend(*fields, 0.5)


def photo_background(size: tuple[int, int]) -> Image.Image:
    """A counter-top-like backdrop: a slanted light gradient with grain."""
    gradient = Image.linear_gradient("L").resize(size).rotate(30, fillcolor=128)
    return Image.blend(gradient, grain(size, seed=2), 0.35)


def frame_of(code: Image.Image, size: tuple[int, int] = VGA, *, background: bool = False):
    scene = photo_background(size) if background else Image.new("L", size, 255)
    scene.paste(code, ((size[0] - code.width) // 2, (size[1] - code.height) // 2))
    return scene


def image_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def scaled(image: Image.Image, factor: float) -> Image.Image:
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.Resampling.BILINEAR)


def noisy(image: Image.Image, amount: float) -> Image.Image:
    return Image.blend(image, grain(image.size), amount)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height but whose pixel data is only 64 bytes."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(64)))
        + chunk(b"IEND", b"")
    )


# --- frames that must read -----------------------------------------------------------------


def test_plain_rendered_code_reads(cpm_vectors):
    sample = cpm_vectors["emvco_sample"]
    assert decode_frame(render_png(sample)) == sample


@pytest.mark.parametrize("angle", [15, 90])
def test_rotated_code_reads(cpm_vectors, angle):
    sample = cpm_vectors["emvco_sample"]
    code = code_image(sample).rotate(angle, expand=True, fillcolor=255)
    assert decode_frame(image_bytes(frame_of(code))) == sample


def test_scaled_down_code_reads(cpm_vectors):
    sample = cpm_vectors["emvco_sample"]
    code = scaled(code_image(sample), 0.5)  # two pixels per module
    assert decode_frame(image_bytes(frame_of(code))) == sample


def test_mildly_blurred_code_reads(mpm_vectors):
    sample = mpm_vectors["sample"]
    frame = frame_of(code_image(sample)).filter(ImageFilter.GaussianBlur(1.5))
    assert decode_frame(image_bytes(frame)) == sample


def test_noisy_code_reads(mpm_vectors):
    sample = mpm_vectors["sample"]
    frame = noisy(frame_of(code_image(sample)), 0.3)
    assert decode_frame(image_bytes(frame)) == sample


@pytest.mark.parametrize("size", [VGA, HD])
def test_code_on_a_photo_background_reads_from_jpeg(cpm_vectors, size):
    sample = cpm_vectors["emvco_sample"]
    code = code_image(sample).rotate(15, expand=True, fillcolor=255)
    frame = frame_of(code, size, background=True).filter(ImageFilter.GaussianBlur(0.8))
    assert decode_frame(image_bytes(frame, "JPEG")) == sample


def test_very_noisy_code_reads_on_the_retry(cpm_vectors):
    sample = cpm_vectors["emvco_sample"]
    frame = noisy(frame_of(code_image(sample, 6), HD, background=True), 0.43)
    assert not zbar_decode(frame)  # the plain pass alone misses it
    assert decode_frame(image_bytes(frame)) == sample


def test_out_of_focus_code_reads_on_the_retry(cpm_vectors):
    sample = cpm_vectors["emvco_sample"]
    frame = frame_of(code_image(sample)).filter(ImageFilter.GaussianBlur(1.8))
    assert not zbar_decode(frame)  # the plain pass alone misses it
    assert decode_frame(image_bytes(frame)) == sample


def test_the_same_code_twice_is_one_code(cpm_vectors):
    sample = cpm_vectors["emvco_sample"]
    code = code_image(sample, 3)
    frame = Image.new("L", VGA, 255)
    frame.paste(code, (10, 10))
    frame.paste(code, (330, 10))
    assert decode_frame(image_bytes(frame)) == sample


# --- frames that must be refused cleanly -------------------------------------------------------


def test_heavily_blurred_code_is_no_code(cpm_vectors):
    frame = frame_of(code_image(cpm_vectors["emvco_sample"])).filter(ImageFilter.GaussianBlur(4))
    with pytest.raises(FrameNoCode) as caught:
        decode_frame(image_bytes(frame))
    assert caught.value.code == "frame_no_code"


def test_tiny_code_is_no_code(cpm_vectors):
    code = scaled(code_image(cpm_vectors["emvco_sample"]), 0.15)
    with pytest.raises(FrameNoCode):
        decode_frame(image_bytes(frame_of(code, background=True)))


def test_blank_frame_is_no_code():
    with pytest.raises(FrameNoCode):
        decode_frame(image_bytes(photo_background(VGA), "JPEG"))


def test_two_different_codes_are_refused(cpm_vectors, mpm_vectors):
    frame = Image.new("L", HD, 255)
    frame.paste(code_image(cpm_vectors["emvco_sample"]), (40, 40))
    frame.paste(code_image(mpm_vectors["sample"]), (640, 40))
    with pytest.raises(FrameMultipleCodes) as caught:
        decode_frame(image_bytes(frame))
    assert caught.value.code == "frame_multiple_codes"


def test_png_declaring_20000_by_20000_is_too_large():
    data = png_declaring(20_000, 20_000)
    assert len(data) < 200
    with pytest.raises(FrameTooLarge):
        decode_frame(data)


def test_pixel_limit_is_checked_before_pixels_are_decoded():
    # 20 MP is over our 16 MP limit but under Pillow's own; its pixel data is far too short,
    # so decoding it would have failed as "not an image" instead.
    with pytest.raises(FrameTooLarge):
        decode_frame(png_declaring(5000, 4000))
    with pytest.raises(FrameNotImage):
        decode_frame(png_declaring(5000, 4000), max_pixels=25_000_000)


def test_pixel_limit_is_the_callers(cpm_vectors):
    data = image_bytes(frame_of(code_image(cpm_vectors["emvco_sample"])))
    with pytest.raises(FrameTooLarge):
        decode_frame(data, max_pixels=640 * 480 - 1)


def test_more_than_2_mib_is_too_large_before_parsing(cpm_vectors):
    real = image_bytes(frame_of(code_image(cpm_vectors["emvco_sample"])))
    with pytest.raises(FrameTooLarge) as caught:
        decode_frame(real + bytes(2 * 1024 * 1024))
    assert caught.value.code == "frame_too_large"
    with pytest.raises(FrameTooLarge):
        decode_frame(real, max_bytes=len(real) - 1)


def test_random_bytes_are_not_an_image():
    with pytest.raises(FrameNotImage) as caught:
        decode_frame(random.Random(7).randbytes(5000))
    assert caught.value.code == "frame_not_image"


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_formats_outside_the_scanner_path_are_not_images(cpm_vectors, fmt):
    frame = frame_of(code_image(cpm_vectors["emvco_sample"]))
    with pytest.raises(FrameNotImage):
        decode_frame(image_bytes(frame, fmt))


@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_qr_errors(data):
    with contextlib.suppress(QrError):
        decode_frame(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP"])
def test_corrupted_images_raise_only_qr_errors(cpm_vectors, fmt):
    good = image_bytes(frame_of(scaled(code_image(cpm_vectors["emvco_sample"], 2), 1)), fmt)
    rng = random.Random(fmt)
    for _ in range(60):
        damaged = bytearray(good[: rng.randrange(len(good))] if rng.random() < 0.3 else good)
        for _ in range(rng.randint(1, 12)):
            damaged[rng.randrange(min(len(damaged), 300))] = rng.randrange(256)
        with contextlib.suppress(QrError):
            decode_frame(bytes(damaged))


# --- other symbologies ------------------------------------------------------------------------

_EAN_L = ["0001101", "0011001", "0010011", "0111101", "0100011",
          "0110001", "0101111", "0111011", "0110111", "0001011"]  # fmt: skip
_EAN_PARITY = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG",
               "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL"]  # fmt: skip


def ean13_modules(digits: str) -> str:
    right = ["".join("1" if bit == "0" else "0" for bit in code) for code in _EAN_L]
    left_g = [code[::-1] for code in right]
    parity = _EAN_PARITY[int(digits[0])]
    left = "".join(
        (_EAN_L if side == "L" else left_g)[int(d)]
        for side, d in zip(parity, digits[1:7], strict=True)
    )
    return "101" + left + "01010" + "".join(right[int(d)] for d in digits[7:]) + "101"


def test_an_ean13_barcode_is_not_a_qr_code():
    modules = ean13_modules("4006381333931")
    frame = Image.new("L", VGA, 255)
    draw = ImageDraw.Draw(frame)
    for i, bit in enumerate(modules):
        if bit == "1":
            draw.rectangle((100 + i * 4, 140, 103 + i * 4, 340), fill=0)
    data = image_bytes(frame)
    read = zbar_decode(Image.open(io.BytesIO(data)))
    assert [(s.type, s.data) for s in read] == [("EAN13", b"4006381333931")]
    with pytest.raises(FrameNoCode):
        decode_frame(data)
