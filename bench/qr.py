"""Compare pyzbar (through devices.qr.frames.decode_frame) with zxing-cpp on camera-like frames.

Run: .venv/bin/python bench/qr.py

Frames are made here, deterministically: payment codes (CPM) and bill codes (MPM) shown at
640x480 and 1280x720 on a photo-like backdrop, clean, rotated, tilted, blurred, noisy, small,
and frames with no code at all, saved as JPEG as a camera scanner would send them. Prints
frames per second and accuracy side by side; asserts nothing.
"""

from __future__ import annotations

import io
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import zxingcpp
from PIL import Image, ImageFilter

from devices.emv.tlv import Tlv, encode
from devices.qr.cpm import ConsumerPayload, encode_cpm
from devices.qr.errors import QrError
from devices.qr.frames import decode_frame
from devices.qr.mpm import MpmField, encode_mpm
from devices.qr.render import render_png

RESOLUTIONS = [(640, 480), (1280, 720)]
TIMED_PASSES = 2
JPEG_QUALITY = 85

Decoder = Callable[[bytes], str | None]


def payment_code(atc: int, rng: random.Random) -> str:
    """A realistic one-time payment code: debit AID, masked-length PAN, cryptogram data."""
    application = (
        Tlv(0x4F, bytes.fromhex("A000000333010101")),
        Tlv(0x50, b"SSC DEBIT"),
        Tlv(0x9F08, b"\x00\x30"),
    )
    cryptogram = encode(
        [
            Tlv(0x9F10, bytes.fromhex("07010103A00000010A0100000000001234567890")),
            Tlv(0x9F26, rng.randbytes(8)),
            Tlv(0x9F27, b"\x80"),
            Tlv(0x9F36, atc.to_bytes(2, "big")),
            Tlv(0x9F37, rng.randbytes(4)),
        ]
    )
    common = (
        Tlv(0x5A, bytes.fromhex("6231700000007515")),
        Tlv(0x5F20, b"ZHANG/SAN"),
        Tlv(0x9F19, rng.randbytes(6)),
        Tlv(0x64, cryptogram),
    )
    return encode_cpm(ConsumerPayload((application,), common))


def bill_code(bill: int, amount: str) -> str:
    """A dynamic hospital bill code with an amount, a bill number and a Chinese merchant name."""
    return encode_mpm(
        [
            MpmField("00", "01"),
            MpmField("01", "12"),
            MpmField("29", (MpmField("00", "D156000000000"), MpmField("01", "110105000123"))),
            MpmField("52", "8062"),
            MpmField("53", "156"),
            MpmField("54", amount),
            MpmField("58", "CN"),
            MpmField("59", "PEKING CITY HOSPITAL"),
            MpmField("60", "BEIJING"),
            MpmField("62", (MpmField("01", f"HIS{bill:012d}"), MpmField("07", "T0042"))),
            MpmField("64", (MpmField("00", "ZH"), MpmField("01", "北京市第一医院"))),
        ]
    )


def grain(size: tuple[int, int], rng: random.Random) -> Image.Image:
    fields = [Image.frombytes("L", size, rng.randbytes(size[0] * size[1])) for _ in range(2)]
    return Image.blend(*fields, 0.5)


def backdrop(size: tuple[int, int], rng: random.Random) -> Image.Image:
    gradient = Image.linear_gradient("L").resize(size).rotate(rng.uniform(0, 360), fillcolor=140)
    return Image.blend(gradient, grain(size, rng), 0.3)


def solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Gauss-Jordan elimination with partial pivoting (8 unknowns; no numpy here)."""
    rows = [[*row, value] for row, value in zip(matrix, rhs, strict=True)]
    n = len(rows)
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(rows[r][col]))
        rows[col], rows[pivot] = rows[pivot], rows[col]
        for r in range(n):
            if r != col:
                factor = rows[r][col] / rows[col][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[col], strict=True)]
    return [rows[i][n] / rows[i][i] for i in range(n)]


def tilt(code: Image.Image, rng: random.Random) -> Image.Image:
    """View the code from an angle: a true perspective warp that narrows one side."""
    w, h = code.size
    squeeze = rng.uniform(0.04, 0.14) * h  # a hand-held phone tipped by roughly 10 to 30 degrees
    lean = rng.uniform(-0.05, 0.05) * w
    seen = [(lean, squeeze), (w, 0), (w, h), (lean, h - squeeze)]  # in the frame
    corners = [(0, 0), (w, 0), (w, h), (0, h)]  # on the phone screen
    matrix, rhs = [], []
    for (x, y), (u, v) in zip(seen, corners, strict=True):
        matrix.append([x, y, 1, 0, 0, 0, -x * u, -y * u])
        matrix.append([0, 0, 0, x, y, 1, -x * v, -y * v])
        rhs += [u, v]
    coefficients = solve(matrix, rhs)
    return code.transform(
        code.size,
        Image.Transform.PERSPECTIVE,
        coefficients,
        Image.Resampling.BICUBIC,
        fillcolor=255,
    )


@dataclass(frozen=True)
class Condition:
    name: str
    code: Callable[[Image.Image, random.Random], Image.Image] = lambda c, r: c
    scene: Callable[[Image.Image, random.Random], Image.Image] = lambda s, r: s
    shows_code: bool = True


CONDITIONS = [
    Condition("clean"),
    Condition("rotated 15", code=lambda c, r: c.rotate(15, expand=True, fillcolor=255)),
    Condition("rotated 90", code=lambda c, r: c.rotate(90, expand=True, fillcolor=255)),
    Condition("tilted", code=tilt),
    Condition("small", code=lambda c, r: c.resize((c.width * 9 // 20, c.height * 9 // 20))),
    Condition("blurred", scene=lambda s, r: s.filter(ImageFilter.GaussianBlur(1.6))),
    Condition("noisy", scene=lambda s, r: Image.blend(s, grain(s.size, r), 0.4)),
    Condition(
        "tilt+blur+noise",
        code=tilt,
        scene=lambda s, r: Image.blend(
            s.filter(ImageFilter.GaussianBlur(1)), grain(s.size, r), 0.3
        ),
    ),
    Condition("no code", shows_code=False),
]


@dataclass(frozen=True)
class Frame:
    condition: str
    resolution: tuple[int, int]
    jpeg: bytes
    expected: str | None


def make_frame(payload: str, condition: Condition, size: tuple[int, int], seed: int) -> Frame:
    rng = random.Random(seed)
    scene = backdrop(size, rng)
    box_size = 4 if size[1] <= 480 else 6  # a phone screen fills about half the frame height
    code = Image.open(io.BytesIO(render_png(payload, box_size=box_size))).convert("L")
    code = condition.code(code, rng)
    if condition.shows_code:
        x = rng.randrange(0, size[0] - code.width)
        y = rng.randrange(0, size[1] - code.height)
        scene.paste(code, (x, y))
    scene = condition.scene(scene, rng)
    out = io.BytesIO()
    scene.save(out, format="JPEG", quality=JPEG_QUALITY)
    expected = payload if condition.shows_code else None
    return Frame(condition.name, size, out.getvalue(), expected)


def make_frames() -> list[Frame]:
    rng = random.Random(2024)
    payloads = [payment_code(atc, rng) for atc in (1, 2, 3)]
    payloads += [bill_code(bill, amount) for bill, amount in ((1, "23.72"), (2, "1088.50"))]
    frames = []
    for size in RESOLUTIONS:
        for condition in CONDITIONS:
            for payload in payloads:
                frames.append(make_frame(payload, condition, size, seed=len(frames)))
    return frames


def with_pyzbar(jpeg: bytes) -> str | None:
    try:
        return decode_frame(jpeg)
    except QrError:
        return None


def with_zxing(jpeg: bytes) -> str | None:
    image = Image.open(io.BytesIO(jpeg))
    image.draft("L", image.size)
    found = zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    texts = {barcode.text for barcode in found}
    return texts.pop() if len(texts) == 1 else None


@dataclass
class Score:
    right: int = 0
    missed: int = 0
    wrong: int = 0

    def add(self, expected: str | None, got: str | None) -> None:
        if got == expected:
            self.right += 1
        elif got is None:
            self.missed += 1
        else:
            self.wrong += 1

    @property
    def total(self) -> int:
        return self.right + self.missed + self.wrong

    def __str__(self) -> str:
        return f"{self.right}/{self.total}"


def frames_per_second(decoder: Decoder, frames: list[Frame]) -> float:
    start = time.perf_counter()
    for _ in range(TIMED_PASSES):
        for frame in frames:
            decoder(frame.jpeg)
    return TIMED_PASSES * len(frames) / (time.perf_counter() - start)


def main() -> None:
    started = time.perf_counter()
    frames = make_frames()
    decoders: dict[str, Decoder] = {"pyzbar": with_pyzbar, "zxing-cpp": with_zxing}
    by_condition = {(c.name, d): Score() for c in CONDITIONS for d in decoders}
    print(
        f"{len(frames)} JPEG frames (q{JPEG_QUALITY}): {len(CONDITIONS)} conditions x "
        f"5 payloads x {len(RESOLUTIONS)} resolutions; {TIMED_PASSES} timed passes"
    )
    print(
        f"\n{'resolution':<11}{'decoder':<11}{'frames/s':>9}{'right':>8}{'missed':>8}{'wrong':>7}"
    )
    for size in RESOLUTIONS:
        subset = [f for f in frames if f.resolution == size]
        for name, decoder in decoders.items():
            score = Score()
            for frame in subset:
                got = decoder(frame.jpeg)
                score.add(frame.expected, got)
                by_condition[(frame.condition, name)].add(frame.expected, got)
            fps = frames_per_second(decoder, subset)
            label = f"{size[0]}x{size[1]}"
            print(f"{label:<11}{name:<11}{fps:>9.1f}{score!s:>8}{score.missed:>8}{score.wrong:>7}")
    print(f"\n{'condition':<17}" + "".join(f"{name:>11}" for name in decoders))
    for condition in CONDITIONS:
        cells = "".join(f"{by_condition[(condition.name, d)]!s:>11}" for d in decoders)
        print(f"{condition.name:<17}{cells}")
    print("\nframes/s include JPEG decoding; pyzbar's include decode_frame's retries on misses.")
    print(f"(total run {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
