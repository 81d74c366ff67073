"""Paths of the card-tap API between a terminal and the hub (bodies: hub/payments/schemas.py
on the hub side, plain JSON built by devices/agent/card_tap.py on the terminal side)."""

from __future__ import annotations

CARD_PAYMENTS_PATH = "/api/terminal/card-payments"
REVERSALS_PATH = f"{CARD_PAYMENTS_PATH}/reversals"


def payment_path(payment_id: int) -> str:
    return f"{CARD_PAYMENTS_PATH}/{payment_id}"


def capture_path(payment_id: int) -> str:
    return f"{payment_path(payment_id)}/capture"


def void_path(payment_id: int) -> str:
    return f"{payment_path(payment_id)}/void"


def refunds_path(payment_id: int) -> str:
    return f"{payment_path(payment_id)}/refunds"
