from datetime import date

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from hub.issuer import service
from hub.issuer.errors import CardExists, CardExpired, CardNotActive, CardNotFound, InvalidPan
from hub.issuer.models import CardStatus
from hub.issuer.protection import (
    CardDataKeys,
    decrypt_pan,
    id_number_hash,
    luhn_valid,
    with_check_digit,
)
from hub.issuer.schemas import CardIn

PAN = "6231700000000003"
KEYS = CardDataKeys(pan_encryption=b"k" * 32, pan_hash=b"h" * 32, id_hash=b"i" * 32)


def card_in(**changes):
    fields = dict(
        card_number="K10000001",
        card_id_code="3301000000001A",
        holder_name="张伟",
        id_number=SecretStr("330102199001011234"),
        pan=SecretStr(PAN),
        expiry=date(2035, 12, 31),
    )
    return CardIn(**(fields | changes))


def test_registered_card_keeps_pan_only_encrypted_and_masked(db, clock):
    card = db.transaction(lambda s: service.register_card(s, card_in(), KEYS, clock()))
    assert card.pan_masked == "623170******0003"
    with db.session() as s:
        row = s.execute(text("SELECT * FROM issuer_cards")).mappings().one()
    assert PAN not in " ".join(str(v) for v in row.values())
    assert decrypt_pan(row["pan_encrypted"], KEYS) == PAN
    with db.session() as s:
        assert service.card_by_pan(s, PAN, KEYS).id == card.id
        account = s.execute(text("SELECT kind, owner_ref FROM ledger_accounts")).one()
    assert tuple(account) == ("card", "K10000001")


def test_check_digit_makes_a_luhn_valid_pan():
    assert with_check_digit("623170000000000") == PAN
    assert luhn_valid(PAN) and not luhn_valid("6231700000000004")


def test_identity_check_uses_the_keyed_hash(db, clock):
    card = db.transaction(lambda s: service.register_card(s, card_in(), KEYS, clock()))
    assert service.identity_matches(card, id_number_hash("330102199001011234", KEYS.id_hash))
    assert not service.identity_matches(card, id_number_hash("330102199001019999", KEYS.id_hash))


def test_second_card_with_same_pan_is_refused(db, clock):
    db.transaction(lambda s: service.register_card(s, card_in(), KEYS, clock()))
    with pytest.raises(CardExists):
        other = card_in(card_number="K10000009", card_id_code="3301000000009Z")
        db.transaction(lambda s: service.register_card(s, other, KEYS, clock()))


def test_pan_with_bad_check_digit_is_refused_without_echoing_it(db, clock):
    with pytest.raises(InvalidPan) as refused:
        db.transaction(
            lambda s: service.register_card(
                s, card_in(pan=SecretStr("6231700000000004")), KEYS, clock()
            )
        )
    assert "6231700000000004" not in str(refused.value)


def test_unusable_cards_are_refused_with_stable_codes(db, clock):
    card = db.transaction(lambda s: service.register_card(s, card_in(), KEYS, clock()))
    assert service.usable_card(card, date(2030, 1, 1)) is card
    with pytest.raises(CardExpired):
        service.usable_card(card, date(2036, 1, 1))
    blocked = db.transaction(lambda s: service.set_card_status(s, card.id, CardStatus.BLOCKED))
    with pytest.raises(CardNotActive):
        service.usable_card(blocked, date(2030, 1, 1))
    with db.session() as s, pytest.raises(CardNotFound):
        service.card_by_number(s, "K99999999")


def test_api_registers_a_card_and_never_returns_the_pan(client):
    body = {
        "card_number": "K10000001",
        "card_id_code": "3301000000001A",
        "holder_name": "张伟",
        "id_number": "330102199001011234",
        "pan": PAN,
        "expiry": "2035-12-31",
    }
    created = client.post("/api/issuer/cards", json=body)
    assert created.status_code == 201, created.text
    assert PAN not in created.text and created.json()["pan_masked"] == "623170******0003"
    again = client.post("/api/issuer/cards", json=body)
    assert again.status_code == 409 and again.json()["error"]["code"] == "card_exists"
    bad = client.post("/api/issuer/cards", json=body | {"pan": "12ab"})
    assert bad.status_code == 422 and "12ab" not in bad.text
