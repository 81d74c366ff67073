"""Money on the platform's wire: yuan with at most two decimals, as numbers or strings.

Inside SSC Hub money is an integer number of fen; these two functions are the only crossing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

_FEN_PER_YUAN = 100


def yuan_to_fen(value: object) -> int:
    """Read a wire amount ("12.34", 12.34, Decimal("12.3"), 12) as integer fen.

    Refuses anything that is not a whole number of fen, so no rounding ever hides a difference.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"not an amount: {value!r}")
    try:
        # str() of a float is its shortest round-tripping form, so 12.34 reads as 12.34 exactly
        yuan = Decimal(value.strip()) if isinstance(value, str) else Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not an amount: {value!r}") from exc
    fen = yuan * _FEN_PER_YUAN
    if not fen.is_finite() or fen != fen.to_integral_value():
        raise ValueError(f"amount {value!r} is not a whole number of fen")
    return int(fen)


def fen_to_yuan(fen: int) -> Decimal:
    """Write integer fen as yuan with exactly two decimals (12345 -> Decimal("123.45"))."""
    return (Decimal(fen) / _FEN_PER_YUAN).quantize(Decimal("0.01"))
