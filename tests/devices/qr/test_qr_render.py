import io
import re
import xml.etree.ElementTree as ET

import pytest
from PIL import Image, ImageDraw

from devices.qr.errors import PayloadError
from devices.qr.frames import decode_frame
from devices.qr.render import render_png, render_svg

SVG_NS = "{http://www.w3.org/2000/svg}"


def test_png_of_a_bill_code_reads_back_with_its_chinese_text(mpm_vectors):
    sample = mpm_vectors["sample"]
    assert decode_frame(render_png(sample)) == sample


def test_png_of_a_payment_code_reads_back(cpm_vectors):
    sample = cpm_vectors["emvco_sample"]
    assert decode_frame(render_png(sample, box_size=3)) == sample


def test_png_size_follows_box_size_and_quiet_zone():
    bare = Image.open(io.BytesIO(render_png("SSC", box_size=1, border=0)))
    framed = Image.open(io.BytesIO(render_png("SSC", box_size=5, border=4)))
    modules = bare.width
    assert modules == 21  # version 1
    assert framed.size == ((modules + 8) * 5, (modules + 8) * 5)
    assert framed.format == "PNG"


def _rasterise(svg: str, scale: int = 6) -> bytes:
    """Draw the SVG's module squares ourselves, to prove the vector drawing is the same code."""
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG_NS}svg"
    _, _, width, height = (int(v) for v in root.attrib["viewBox"].split())
    image = Image.new("L", (width * scale, height * scale), 255)
    draw = ImageDraw.Draw(image)
    path = root.find(f"{SVG_NS}path")
    assert path is not None
    squares = re.findall(r"M(\d+),(\d+)H(\d+)V(\d+)H\d+z", path.attrib["d"])
    assert squares
    for x0, y0, x1, y1 in squares:
        box = (int(x0) * scale, int(y0) * scale, int(x1) * scale - 1, int(y1) * scale - 1)
        draw.rectangle(box, fill=0)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_svg_is_a_standalone_document_of_the_same_code(mpm_vectors):
    sample = mpm_vectors["sample"]
    svg = render_svg(sample)
    assert svg.startswith("<?xml")
    assert decode_frame(_rasterise(svg)) == sample


@pytest.mark.parametrize("render", [render_png, render_svg])
def test_payload_too_long_for_a_qr_code_is_a_payload_error(render):
    with pytest.raises(PayloadError):
        render("9" * 8000)


def test_text_with_lone_surrogates_is_a_payload_error():
    with pytest.raises(PayloadError):
        render_png("bill \ud800")
