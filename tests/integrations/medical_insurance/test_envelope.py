from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integrations.medical_insurance.envelope import (
    MsgidSource,
    format_inf_time,
    make_msgid,
    parse_inf_time,
    parse_msgid,
)

CODE = "H33010200001"
AT = datetime(2026, 11, 29, 8, 0, 5, tzinfo=UTC)  # 16:00:05 in China


def test_msgid_is_institution_code_china_time_and_four_digit_sequence():
    msgid = make_msgid(CODE, AT, 7)
    assert msgid == "H33010200001" + "20261129160005" + "0007"
    assert len(msgid) == 30
    assert parse_msgid(msgid, CODE) == (parse_inf_time("2026-11-29 16:00:05"), 7)


@pytest.mark.parametrize(
    "msgid",
    [
        "H33010200002" + "20261129160005" + "0007",  # another institution
        CODE + "2026112916000" + "0007",  # time one digit short
        CODE + "20261399160005" + "0007",  # no 13th month
        CODE + "20261129160005" + "007",  # sequence one digit short
        CODE + "2026112916000x" + "0007",
    ],
)
def test_msgid_of_another_shape_is_refused(msgid):
    with pytest.raises(ValueError):
        parse_msgid(msgid, CODE)


def test_sequence_has_four_digits_at_most():
    with pytest.raises(ValueError):
        make_msgid(CODE, AT, 10_000)


def test_msgid_source_never_repeats_within_a_frozen_second():
    source = MsgidSource(CODE, lambda: AT, start=9_990)
    ids = [source.next() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert ids[0].endswith("9990") and ids[10].endswith("0000")


def test_sources_made_one_after_another_share_the_sequence():
    # A client made again after a simulated crash must not reuse the first one's msgids.
    ids = [MsgidSource(CODE, lambda: AT).next() for _ in range(1_000)]
    assert len(set(ids)) == 1_000


def test_inf_time_is_written_in_china_time_without_a_zone():
    assert format_inf_time(AT) == "2026-11-29 16:00:05"
    assert parse_inf_time("2026-11-29 16:00:05") == AT
