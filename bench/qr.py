"""QR benchmarks: (a) camera-frame decoding, the hub's decode_frame (zxing-cpp) beside plain
pyzbar on camera-like frames; (b) payment-code submissions per second through the
signed terminal API on PostgreSQL.

Run: .venv/bin/python bench/qr.py [--frames-only | --codes-only] [--seconds 10] [--clients 8]

Frames are made here, deterministically: payment codes (CPM) and bill codes (MPM) shown at
640x480 and 1280x720 on a photo-like backdrop, clean, rotated, tilted, blurred, noisy, small,
and frames with no code at all, saved as JPEG as a camera scanner would send them. Prints
frames per second and accuracy side by side; asserts nothing.

(b) A hub (uvicorn, 2 workers) on a fresh PostgreSQL database; one enrolled scanning terminal
per client process, each with its own cardholders; payment codes issued beforehand (they are
not what is measured). Each client submits scanned codes with new transaction ids as fast as
the hub answers: decode, MAC, the code's row lock, card checks, a hold and its capture in the
ledger, the payment records and their audit entries, one transaction per submission.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from PIL import Image, ImageFilter
from pydantic import SecretStr
from pyzbar.pyzbar import ZBarSymbol
from pyzbar.pyzbar import decode as zbar_decode

from bench.common import enrol_terminal, free_port, fresh_database, percentile, start_hub
from devices.agent.hub_client import HubClient, HubRefused, HubUnavailable
from devices.emv.tlv import Tlv, encode
from devices.qr.cpm import ConsumerPayload, encode_cpm
from devices.qr.errors import QrError
from devices.qr.frames import decode_frame
from devices.qr.mpm import MpmField, encode_mpm
from devices.qr.render import render_png
from hub.config import Settings
from hub.db import Database
from hub.gateway import service as gateway
from hub.gateway.schemas import UnitIn
from hub.issuer import service as issuer
from hub.issuer.protection import CardDataKeys, with_check_digit
from hub.issuer.schemas import CardIn
from hub.ledger import service as ledger
from hub.ledger.schemas import AccountIn, TransferIn
from hub.payments import codes

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


def with_zxing(jpeg: bytes) -> str | None:
    """The hub's own decoder: devices.qr.frames.decode_frame (zxing-cpp, with its retries)."""
    try:
        return decode_frame(jpeg)
    except QrError:
        return None


def with_pyzbar(jpeg: bytes) -> str | None:
    """zbar through pyzbar, the decoder the hub used before, on the same greyscale frame."""
    image = Image.open(io.BytesIO(jpeg))
    image.draft("L", image.size)
    found = zbar_decode(image.convert("L"), symbols=[ZBarSymbol.QRCODE])
    texts = {symbol.data.decode() for symbol in found}
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


def frame_decoding() -> None:
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
    print("\nframes/s include JPEG decoding; zxing-cpp's include decode_frame's retries on misses.")
    print(f"(total run {time.perf_counter() - started:.1f} s)")


# --- (b) payment-code submissions through the API on PostgreSQL ------------------------------

CARDS_PER_CLIENT = 20
CODE_AMOUNT = 100  # fen
# Codes issued per client per timed second: a client that runs out stops early, and the rate
# is taken over the time the clients actually ran.
CODES_PER_CLIENT_SECOND = 60
INSTITUTION = "H33010200001"


@dataclass(frozen=True)
class BenchTerminal:
    terminal_id: int
    key_pem: bytes
    payloads: list[str]


def _cards(session: Any, first: int, last: int, now: datetime) -> list[int]:
    keys = CardDataKeys.from_settings(_settings())
    treasury = ledger.ensure_account(session, AccountIn(kind="treasury", owner_ref="bank"), now)
    ids = []
    for n in range(first, last):
        spec = CardIn(
            card_number=f"Q{n:08d}",
            card_id_code=f"330100D15600000600{n:014d}",
            holder_name="王秀兰",
            id_number=SecretStr(f"3301021961{n:08d}"),
            pan=SecretStr(with_check_digit(f"623170{n:012d}")),
            expiry=date(2034, 1, 31),
        )
        card = issuer.register_card(session, spec, keys, now)
        fund = TransferIn(
            id=f"bench:qr:fund:{n}",
            debit_account_id=treasury.id,
            credit_account_id=card.account_id,
            amount=10**10,
            code="deposit",
        )
        ledger.transfer(session, fund, now)
        ids.append(card.id)
    return ids


def _settings() -> Settings:
    return Settings()


def _terminal(db: Any, unit_id: int, index: int, codes_each: int, now: datetime) -> BenchTerminal:
    serial = f"QB{index:08d}"
    terminal_id, key = db.transaction(
        lambda s: enrol_terminal(s, unit_id, serial, "SSC-QS210", now)
    )
    cards = db.transaction(
        lambda s: _cards(s, index * CARDS_PER_CLIENT, (index + 1) * CARDS_PER_CLIENT, now)
    )
    code_key = codes.PaymentCodeKey.from_settings(_settings())
    policy = codes.CodePolicy(validity_seconds=3600)  # issued before the timed run starts
    payloads = db.transaction(
        lambda s: [
            codes.issue_code(s, cards[n % len(cards)], code_key, policy, now).payload
            for n in range(codes_each)
        ]
    )
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    return BenchTerminal(terminal_id, pem, payloads)


def _set_up(url: str, clients: int, codes_each: int) -> list[BenchTerminal]:
    db = Database(url)
    now = datetime.now(UTC)
    unit = UnitIn(institution_code=INSTITUTION, name="Bench Hospital", region_code="330102")
    unit_id = db.transaction(lambda s: gateway.create_unit(s, unit, actor="bench", now=now).id)
    terminals = [_terminal(db, unit_id, i, codes_each, now) for i in range(clients)]
    db.dispose()
    return terminals


def _code_client(
    args: tuple[str, BenchTerminal, int, float, float],
) -> tuple[int, int, list[float]]:
    hub_url, terminal, worker, start_at, seconds = args
    key = load_pem_private_key(terminal.key_pem, None)
    http = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=1))
    hub = HubClient(hub_url, terminal.terminal_id, key, http=http)  # type: ignore[arg-type]
    time.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    deadline = began + seconds
    latencies: list[float] = []
    paid = 0
    for n, payload in enumerate(terminal.payloads):
        if time.perf_counter() >= deadline:
            break
        body = {"transaction_id": f"b{worker}-{n}", "amount_fen": CODE_AMOUNT, "payload": payload}
        started = time.perf_counter()
        try:
            hub.post("/api/terminal/payment-codes/payments", body)
            paid += 1
        except (HubRefused, HubUnavailable):  # counted as not paid; the figure says how many
            pass
        latencies.append((time.perf_counter() - started) * 1000)
    return len(latencies), paid, latencies, time.perf_counter() - began


def payment_code_submissions(clients: int, seconds: float, workers: int) -> None:

    codes_each = int(seconds * CODES_PER_CLIENT_SECOND)
    print(f"\n(b) payment-code submissions: {clients} terminals, {clients * codes_each} codes ...")
    url = fresh_database("sshub_bench_qr")
    terminals = _set_up(url, clients, codes_each)
    port = free_port()
    hub = start_hub(url, port, workers=workers)
    try:
        start_at = time.time() + 3 + 0.2 * clients
        jobs = [
            (f"http://127.0.0.1:{port}", terminal, w, start_at, seconds)
            for w, terminal in enumerate(terminals)
        ]
        with mp.get_context("spawn").Pool(clients) as pool:
            results = pool.map(_code_client, jobs)
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    done, paid = sum(r[0] for r in results), sum(r[1] for r in results)
    latencies = [lat for r in results for lat in r[2]]
    elapsed = max(r[3] for r in results)
    print(
        f"    signed API, PostgreSQL, {workers} hub workers, {clients} client processes, "
        f"{elapsed:.1f} s"
    )
    print(f"    submissions/s {done / elapsed:,.0f}  (paid {paid}/{done})")
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    print(f"    per submission: p50 {p50:.1f} ms, p99 {p99:.1f} ms  ({os.cpu_count()} cores here)")
    with Database(url).session() as s:
        problems = ledger.check_invariants(s)
    print("    ledger invariants after the run:", "hold" if not problems else problems[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames-only", action="store_true")
    parser.add_argument("--codes-only", action="store_true")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not args.codes_only:
        frame_decoding()
    if not args.frames_only:
        payment_code_submissions(args.clients, args.seconds, args.workers)


if __name__ == "__main__":
    main()
