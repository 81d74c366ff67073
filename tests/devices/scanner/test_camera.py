"""Camera frames from a file or a capture spool folder, checked before upload."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from devices.qr.frames import decode_frame
from devices.qr.render import render_png
from devices.scanner.camera import SpoolCamera, content_type_of, read_frame
from devices.scanner.errors import FrameRefused


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(render_png("BILL-1"))).convert("L").save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("BMP", "image/bmp"), ("WEBP", "image/webp")],
)
def test_each_accepted_format_is_recognised_by_its_leading_bytes(fmt, content_type):
    assert content_type_of(_image(fmt)) == content_type


@pytest.mark.parametrize("data", [b"GIF89a....", b"", b"%PDF-1.7", b"RIFF\x00\x00\x00\x00WAVE"])
def test_anything_else_is_refused(data):
    with pytest.raises(FrameRefused):
        content_type_of(data)


def test_a_frame_file_reads_as_captured(tmp_path):
    path = tmp_path / "frame.jpg"
    path.write_bytes(_image("JPEG"))
    frame = read_frame(path)
    assert frame.content_type == "image/jpeg"
    assert decode_frame(frame.data) == "BILL-1"
    assert "bytes" in repr(frame) and str(len(frame.data)) in repr(frame)


def test_a_file_over_the_limit_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "huge.jpg"
    with path.open("wb") as handle:
        handle.write(b"\xff\xd8\xff")
        handle.truncate(3 * 1024 * 1024)  # sparse: nothing of it would ever be read
    with pytest.raises(FrameRefused, match="larger than"):
        read_frame(path, max_bytes=2 * 1024 * 1024)


def test_the_spool_hands_out_frames_oldest_first_and_skips_unfinished_files(tmp_path):
    for n, name in enumerate(["b.png", "a.png", "c.png.tmp", ".hidden.png"]):
        path = tmp_path / name
        path.write_bytes(_image("PNG"))
        os.utime(path, ns=(n * 10**9, n * 10**9))
    camera = SpoolCamera(tmp_path)
    assert [camera.next_frame().name, camera.next_frame().name] == ["b.png", "a.png"]
    assert camera.next_frame() is None
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden.png", "c.png.tmp"]


def test_a_refused_file_is_set_aside_and_reported_once(tmp_path):
    (tmp_path / "note.txt").write_bytes(b"not a frame")
    camera = SpoolCamera(tmp_path)
    stop_after = iter([False, True])
    results = list(camera.frames(stop=lambda: next(stop_after)))
    assert len(results) == 1 and isinstance(results[0], FrameRefused)
    assert (tmp_path / "rejected" / "note.txt").exists()
    assert camera.next_frame() is None
