"""ISO 9564-1 PIN blocks: format 0 (clear, 3DES era) and format 4 (AES, two-block with PAN)."""

import os

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devices.emv.errors import PinBlockError

_AES_BLOCK = 16


def _check_pin(pin: str) -> None:
    if not (pin.isascii() and pin.isdigit() and 4 <= len(pin) <= 12):
        raise PinBlockError("PIN must be 4 to 12 decimal digits")


def _check_pan(pan: str, shortest: int) -> None:
    if not (pan.isascii() and pan.isdigit() and shortest <= len(pan) <= 19):
        raise PinBlockError(f"PAN must be {shortest} to 19 decimal digits")


def _pin_from_field(nibbles: str, control: str, fill: str) -> str:
    """Read the PIN out of a PIN field written as hex nibbles C N P..P fill..."""
    if nibbles[0] != control:
        raise PinBlockError("PIN block has the wrong format code")
    length = int(nibbles[1], 16)
    pin = nibbles[2 : 2 + length]
    if not (4 <= length <= 12 and pin.isdigit() and set(nibbles[2 + length : 16]) <= {fill}):
        raise PinBlockError("PIN block does not hold a well-formed PIN")
    return pin


def _format0_pan_field(pan: str) -> bytes:
    # the 12 rightmost PAN digits excluding the check digit
    return bytes.fromhex("0000" + pan[-13:-1])


def encode_pinblock_iso0(pin: str, pan: str) -> bytes:
    """Clear ISO 9564 format 0 PIN block: (0 N PIN F..F) xor (0000 || 12 PAN digits)."""
    _check_pin(pin)
    _check_pan(pan, 13)
    pin_field = bytes.fromhex(f"0{len(pin):X}{pin}".ljust(16, "F"))
    return bytes(a ^ b for a, b in zip(pin_field, _format0_pan_field(pan), strict=True))


def decode_pinblock_iso0(block: bytes, pan: str) -> str:
    """Recover the PIN from a clear format 0 PIN block."""
    _check_pan(pan, 13)
    if len(block) != 8:
        raise PinBlockError("format 0 PIN block must be 8 bytes")
    pin_field = bytes(a ^ b for a, b in zip(block, _format0_pan_field(pan), strict=True))
    return _pin_from_field(pin_field.hex().upper(), "0", "F")


def _aes(key: bytes) -> Cipher[modes.ECB]:
    if len(key) not in (16, 24, 32):
        raise PinBlockError("PIN key must be an AES key of 16, 24 or 32 bytes")
    return Cipher(algorithms.AES(key), modes.ECB())


def _format4_pan_field(pan: str) -> bytes:
    """M (PAN length - 12, or 0) then the PAN, left-padded with zeros to 12 digits, then zeros."""
    _check_pan(pan, 1)
    digits = f"{max(len(pan) - 12, 0)}{pan.rjust(12, '0')}"
    return bytes.fromhex(digits.ljust(32, "0"))


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def encipher_pinblock_iso4(
    key: bytes, pin: str, pan: str, random_fill: bytes | None = None
) -> bytes:
    """Encipher a PIN as an ISO 9564 format 4 block: AES(K)[AES(K)[PIN field] xor PAN field].

    The PIN field is 4 N PIN A..A (8 bytes) then 8 random bytes; `random_fill` fixes those
    bytes for known-answer tests and must otherwise be left to the secure default.
    """
    _check_pin(pin)
    pan_field = _format4_pan_field(pan)
    fill = os.urandom(8) if random_fill is None else random_fill
    if len(fill) != 8:
        raise PinBlockError("random fill must be 8 bytes")
    pin_field = bytes.fromhex(f"4{len(pin):X}{pin}".ljust(16, "A")) + fill
    encryptor = _aes(key).encryptor()
    intermediate = encryptor.update(pin_field)
    return encryptor.update(_xor(intermediate, pan_field)) + encryptor.finalize()


def decipher_pinblock_iso4(key: bytes, block: bytes, pan: str) -> str:
    """Recover the PIN from an ISO 9564 format 4 block enciphered under `key` for `pan`."""
    pan_field = _format4_pan_field(pan)
    if len(block) != _AES_BLOCK:
        raise PinBlockError("format 4 PIN block must be 16 bytes")
    decryptor = _aes(key).decryptor()
    intermediate = _xor(decryptor.update(block), pan_field)
    pin_field = decryptor.update(intermediate) + decryptor.finalize()
    return _pin_from_field(pin_field.hex().upper(), "4", "A")
