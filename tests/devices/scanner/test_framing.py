"""Scan-engine framing: suffixes, prefixes, AIM identifiers, split reads, pauses, garbage."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.scanner.framing import Framing, RejectedScan, Scan, ScanAssembler, Suffix

CODE = "hQVDUFYwMWETTwegAAAAVVVVUAhQcm9kdWN0MQ=="
BILL = "00020101021226300013CN.COM.SSCHUB0109H3301020064120002ZH0102北京6304ABCD"


def texts(results):
    return [r.text for r in results if isinstance(r, Scan)]


@pytest.mark.parametrize(
    ("suffix", "ending"),
    [
        (Suffix.CR, "\r"),
        (Suffix.LF, "\n"),
        (Suffix.CRLF, "\r\n"),
        (Suffix.TAB, "\t"),
    ],
)
def test_each_configured_suffix_ends_a_scan(suffix, ending):
    assembler = ScanAssembler(Framing(suffix=suffix))
    assert texts(assembler.feed_text(CODE + ending + BILL + ending, now=0.0)) == [CODE, BILL]


def test_an_engine_sending_crlf_where_cr_was_set_gives_no_empty_scans():
    assembler = ScanAssembler(Framing(suffix=Suffix.CR))
    results = assembler.feed_text(f"{CODE}\r\n\n{BILL}\r\n", now=0.0)
    assert results == [Scan(CODE), Scan(BILL)]


def test_a_scan_split_across_reads_is_joined():
    assembler = ScanAssembler(Framing())
    assert assembler.feed_text(CODE[:10], now=0.0) == []
    assert texts(assembler.feed_text(CODE[10:] + "\r", now=0.01)) == [CODE]


def test_a_multibyte_character_split_across_serial_reads_is_kept_whole():
    data = (BILL + "\r").encode()
    cut = data.index("北".encode()) + 1  # inside the three bytes of 北
    assembler = ScanAssembler(Framing())
    assert assembler.feed_bytes(data[:cut], now=0.0) == []
    assert texts(assembler.feed_bytes(data[cut:], now=0.0)) == [BILL]


def test_a_custom_prefix_and_suffix_are_removed():
    assembler = ScanAssembler(Framing(suffix=Suffix.CUSTOM, prefix="\x02", custom_suffix="\x03"))
    assert texts(assembler.feed_text(f"\x02{CODE}\x03\x02{BILL}\x03", now=0.0)) == [CODE, BILL]


def test_without_a_suffix_a_pause_ends_the_scan():
    assembler = ScanAssembler(Framing(suffix=Suffix.NONE, idle_seconds=0.1))
    assert assembler.feed_text(CODE, now=0.0) == []
    assert assembler.tick(now=0.05) == []
    assert assembler.tick(now=0.2) == [Scan(CODE)]


def test_a_line_left_open_is_dropped_as_incomplete():
    assembler = ScanAssembler(Framing(stale_seconds=1.0))
    assembler.feed_text(CODE[:20], now=0.0)
    results = assembler.feed_text(BILL + "\r", now=5.0)
    assert results == [RejectedScan("incomplete", 20), Scan(BILL)]


def test_aim_identifiers_are_read_and_other_symbologies_refused():
    assembler = ScanAssembler(Framing(aim_ids=True))
    results = assembler.feed_text(f"]Q1{CODE}\r]C012345\r", now=0.0)
    assert results == [Scan(CODE, "]Q1"), RejectedScan("not_qr", 5)]


def test_an_overlong_line_is_refused_without_keeping_it():
    assembler = ScanAssembler(Framing(max_chars=64))
    results = assembler.feed_text("A" * 500 + "\r" + CODE + "\r", now=0.0)
    assert results == [RejectedScan("too_long", 64), Scan(CODE)]


def test_bytes_that_are_not_utf8_are_refused_and_the_next_scan_still_reads():
    assembler = ScanAssembler(Framing())
    results = assembler.feed_bytes(b"\xff\xfe\xfa garbage\r" + CODE.encode() + b"\r", now=0.0)
    assert results[0].reason == "not_text"
    assert results[1] == Scan(CODE)


def test_a_rejected_scan_never_holds_the_text():
    assert "text" not in RejectedScan.__dataclass_fields__


def test_a_bad_configuration_fails_at_once():
    with pytest.raises(ValueError):
        Framing(suffix=Suffix.CUSTOM)
    with pytest.raises(LookupError):
        Framing(encoding="no-such-encoding")


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=50))
def test_any_bytes_in_any_chunks_never_crash_and_respect_the_length_limit(data, chunk):
    assembler = ScanAssembler(Framing(max_chars=100))
    results = []
    for start in range(0, len(data), chunk):
        results += assembler.feed_bytes(data[start : start + chunk], now=start / 1000)
    results += assembler.tick(now=100.0)
    assert all(len(r.text) <= 100 for r in results if isinstance(r, Scan))
    assert all("\r" not in r.text and "\n" not in r.text for r in results if isinstance(r, Scan))


LINE_CHARACTERS = st.characters(
    blacklist_categories=("Cs",),  # surrogates cannot travel as UTF-8
    blacklist_characters="\r\n\ufffd",
)


@given(st.lists(st.text(alphabet=LINE_CHARACTERS, min_size=1)))
def test_scans_written_with_crlf_come_back_as_written(lines):
    assembler = ScanAssembler(Framing(suffix=Suffix.CRLF))
    stream = "".join(f"{line}\r\n" for line in lines).encode()
    assert texts(assembler.feed_bytes(stream, now=0.0)) == lines
