from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integrations.medical_insurance.amounts import fen_to_yuan, yuan_to_fen


@pytest.mark.parametrize(
    ("wire", "fen"),
    [("140.20", 14_020), (140.2, 14_020), (Decimal("0.01"), 1), (12, 1_200), ("-30.00", -3_000),
     (" 7.5 ", 750), (32.69, 3_269), ("0", 0)],
)  # fmt: skip
def test_wire_amounts_read_as_exact_fen(wire, fen):
    assert yuan_to_fen(wire) == fen


@pytest.mark.parametrize("wire", ["12.345", 0.001, "abc", "", True, None, "NaN", "Infinity", [1]])
def test_anything_but_whole_fen_is_refused(wire):
    with pytest.raises(ValueError):
        yuan_to_fen(wire)


def test_fen_are_written_with_two_decimals():
    assert [str(fen_to_yuan(f)) for f in (14_020, 1, 0, -3_000)] == [
        "140.20",
        "0.01",
        "0.00",
        "-30.00",
    ]


@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_fen_survive_the_wire_as_string_and_as_number(fen):
    yuan = fen_to_yuan(fen)
    assert yuan_to_fen(str(yuan)) == fen
    assert yuan_to_fen(float(yuan)) == fen
