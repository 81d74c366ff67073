"""Online PIN: the salted verifier, the tries counter and the terminal's agreed PIN key."""

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import SecretStr

from devices.emv.pinblock import encipher_pinblock_iso4
from devices.protocol import pin_key
from hub.config import Settings
from hub.issuer import pin
from hub.issuer.errors import PinFormatInvalid, PinKeyInvalid
from hub.issuer.keys import IssuerSecrets
from hub.issuer.models import CardSecurity

NOW = datetime(2026, 11, 29, 8, tzinfo=UTC)
PAN = "6231700000000007516"
SECRETS = IssuerSecrets.from_settings(Settings(key_encryption_key=SecretStr("k" * 40)))
PIN_KEY = bytes(range(16))


def state_with_pin(card_id: int = 1, value: str = "246810") -> CardSecurity:
    salt = bytes([card_id]) * 16
    return CardSecurity(
        card_id=card_id,
        pin_salt=salt.hex(),
        pin_verifier=pin.pin_verifier(SECRETS, salt, card_id, value),
        pin_tries=0,
        updated_at=NOW,
    )


def block(value: str) -> bytes:
    return encipher_pinblock_iso4(PIN_KEY, value, PAN)


def test_the_verifier_is_salted_keyed_and_holds_no_pin():
    one = pin.pin_verifier(SECRETS, bytes(16), 1, "246810")
    assert one != pin.pin_verifier(SECRETS, bytes(16), 2, "246810")
    assert one != pin.pin_verifier(SECRETS, b"\x01" * 16, 1, "246810")
    other = IssuerSecrets.from_settings(Settings(key_encryption_key=SecretStr("z" * 40)))
    assert one != pin.pin_verifier(other, bytes(16), 1, "246810")
    assert "246810" not in one


def test_the_right_pin_passes_and_resets_the_tries():
    state = state_with_pin()
    state.pin_tries = 2
    assert pin.check_pin_block(state, block("246810"), PAN, PIN_KEY, SECRETS, NOW) is None
    assert state.pin_tries == 0


def test_three_wrong_pins_exhaust_the_tries_and_then_even_the_right_one_fails():
    state = state_with_pin()
    results = [
        pin.check_pin_block(state, block("111111"), PAN, PIN_KEY, SECRETS, NOW) for _ in "abc"
    ]
    assert results == ["pin_incorrect", "pin_incorrect", "pin_tries_exceeded"]
    assert pin.check_pin_block(state, block("246810"), PAN, PIN_KEY, SECRETS, NOW) == (
        "pin_tries_exceeded"
    )


def test_a_block_under_another_key_or_for_another_pan_counts_as_wrong():
    state = state_with_pin()
    wrong_key = encipher_pinblock_iso4(bytes(16), "246810", PAN)
    assert pin.check_pin_block(state, wrong_key, PAN, PIN_KEY, SECRETS, NOW) == "pin_incorrect"
    other_pan = encipher_pinblock_iso4(PIN_KEY, "246810", "6231700000000007524")
    assert pin.check_pin_block(state, other_pan, PAN, PIN_KEY, SECRETS, NOW) == "pin_incorrect"
    assert state.pin_tries == 2


def test_a_card_without_a_pin_cannot_pass():
    state = CardSecurity(card_id=1, pin_tries=0, updated_at=NOW)
    assert pin.check_pin_block(state, block("246810"), PAN, PIN_KEY, SECRETS, NOW) == "pin_not_set"


@pytest.mark.parametrize("value", ["123", "12345678901234", "12a4", "１２３４"])
def test_a_pin_that_is_not_4_to_12_digits_is_refused(value):
    with pytest.raises(PinFormatInvalid):
        pin.set_pin(None, 1, value, SECRETS, NOW)  # type: ignore[arg-type]


def test_both_sides_derive_the_same_pin_key_and_versions_count_up(db, clock):
    terminal_id = _a_terminal(db, clock)
    own = X25519PrivateKey.generate()
    text = pin_key.public_key_text(own)
    first = db.transaction(lambda s: pin.agree_pin_key(s, terminal_id, text, SECRETS, clock()))
    second = db.transaction(lambda s: pin.agree_pin_key(s, terminal_id, text, SECRETS, clock()))
    assert (first.version, second.version) == (1, 2)
    mine = pin_key.derive_pin_key(
        own, pin_key.load_public_key(second.hub_public_key), terminal_id, 2
    )
    with db.session() as s:
        assert pin.terminal_pin_key(s, terminal_id, 2, SECRETS) == mine


# 32 zero bytes: the all-zero point, whose shared secret is zero whatever the other side does.
@pytest.mark.parametrize("text", ["not base64!", "AAAA", "A" * 43 + "="])
def test_a_malformed_or_weak_public_key_is_refused(db, clock, text):
    terminal_id = _a_terminal(db, clock)
    with pytest.raises(PinKeyInvalid):
        db.transaction(lambda s: pin.agree_pin_key(s, terminal_id, text, SECRETS, clock()))


def _a_terminal(db, clock) -> int:
    from hub.gateway import service as gateway
    from hub.gateway.schemas import TerminalIn, UnitIn

    def work(s):
        unit = gateway.create_unit(
            s,
            UnitIn(institution_code="H33010209999", name="H", region_code="330102"),
            actor="t",
            now=clock(),
        )
        spec = TerminalIn(unit_id=unit.id, serial="PK00000001", model="SSC-CR300")
        return gateway.preregister_terminal(s, spec, actor="t", now=clock()).id

    return db.transaction(work)
