"""Card key derivation, session keys, ARQC/ARPC and key check values (EMV Book 2 annex A1, PBOC).

Keys are double-length (16-byte) 3DES keys; every function takes and returns bytes.
"""

from collections.abc import Mapping

from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
from cryptography.hazmat.primitives.ciphers import Cipher, modes

from devices.emv.errors import CryptoInputError

_BLOCK = 8

# PBOC ARQC input: these terminal and card fields in this order, then the CVR from 9F10.
ARQC_FIELDS: tuple[tuple[int, int], ...] = (
    (0x9F02, 6),  # amount authorised
    (0x9F03, 6),  # amount other
    (0x9F1A, 2),  # terminal country code
    (0x95, 5),  # terminal verification results
    (0x5F2A, 2),  # transaction currency code
    (0x9A, 3),  # transaction date
    (0x9C, 1),  # transaction type
    (0x9F37, 4),  # unpredictable number
    (0x82, 2),  # application interchange profile
    (0x9F36, 2),  # application transaction counter
)


def _require(value: bytes, size: int, what: str) -> None:
    if len(value) != size:
        raise CryptoInputError(f"{what} must be {size} bytes, got {len(value)}")


def _cipher(key: bytes) -> Cipher[modes.ECB]:
    """3DES-ECB under an 8-byte (single DES) or 16-byte key, spelt as the 24-byte K1 K2 K1 form
    because `cryptography` deprecates the short forms."""
    full = key * 3 if len(key) == _BLOCK else key + key[:_BLOCK]
    return Cipher(TripleDES(full), modes.ECB())


def _des_encrypt(key: bytes, block: bytes) -> bytes:
    encryptor = _cipher(key).encryptor()
    return encryptor.update(block) + encryptor.finalize()


def _des_decrypt(key: bytes, block: bytes) -> bytes:
    decryptor = _cipher(key).decryptor()
    return decryptor.update(block) + decryptor.finalize()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _odd_parity(key: bytes) -> bytes:
    """Set the low bit of each byte so every byte has an odd number of one bits."""
    return bytes((b & 0xFE) | ((bin(b >> 1).count("1") + 1) & 1) for b in key)


def option_a_y(pan: str, psn: str) -> bytes:
    """Option A input Y: the rightmost 16 digits of PAN || PSN, left-padded with '0', as BCD.

    A card without a PAN sequence number (empty `psn`) counts as PSN 00.
    """
    psn = psn or "00"
    if not (pan.isdigit() and pan.isascii() and psn.isdigit() and psn.isascii()):
        raise CryptoInputError("PAN and PAN sequence number must be decimal digits")
    return bytes.fromhex((pan + psn)[-16:].rjust(16, "0"))


def derive_icc_master_key(issuer_master_key: bytes, pan: str, psn: str) -> bytes:
    """Derive the card's master key from the issuer master key (EMV Book 2 A1.4.1, option A):
    3DES(IMK)[Y] || 3DES(IMK)[Y xor FF..FF], odd parity set."""
    _require(issuer_master_key, 16, "issuer master key")
    y = option_a_y(pan, psn)
    left = _des_encrypt(issuer_master_key, y)
    right = _des_encrypt(issuer_master_key, _xor(y, b"\xff" * _BLOCK))
    return _odd_parity(left + right)


def pboc_session_key(icc_master_key: bytes, atc: bytes) -> bytes:
    """PBOC session key: 3DES(MK)[00..00 || ATC] || 3DES(MK)[00..00 || ATC xor FFFF].

    Parity is left as derived, as in the PBOC worked example; DES ignores parity bits anyway.
    """
    _require(icc_master_key, 16, "card master key")
    _require(atc, 2, "ATC")
    pad = bytes(6)
    return _des_encrypt(icc_master_key, pad + atc) + _des_encrypt(
        icc_master_key, pad + _xor(atc, b"\xff\xff")
    )


def emv_common_session_key(icc_master_key: bytes, r: bytes) -> bytes:
    """EMV common session key (Book 2 A1.3.1): F1 = R0 R1 F0 R3..R7, F2 = R0 R1 0F R3..R7."""
    _require(icc_master_key, 16, "card master key")
    _require(r, _BLOCK, "diversification value R")
    f1 = r[:2] + b"\xf0" + r[3:]
    f2 = r[:2] + b"\x0f" + r[3:]
    return _odd_parity(_des_encrypt(icc_master_key, f1) + _des_encrypt(icc_master_key, f2))


def _pad(data: bytes, padding: int) -> bytes:
    """ISO 9797-1 padding. Method 1: zeros up to a block boundary (none if already aligned;
    empty data becomes one zero block). Method 2: 0x80 then zeros, always added."""
    if padding == 2:
        data += b"\x80"
    elif padding != 1:
        raise CryptoInputError("padding must be ISO 9797-1 method 1 or 2")
    if not data:
        return bytes(_BLOCK)
    return data + bytes(-len(data) % _BLOCK)


def retail_mac(key: bytes, data: bytes, padding: int = 2) -> bytes:
    """ISO 9797-1 MAC algorithm 3 (retail MAC): single-DES CBC under K1, last block 3DES K1/K2."""
    _require(key, 16, "MAC key")
    k1, k2 = key[:_BLOCK], key[_BLOCK:]
    padded = _pad(data, padding)
    chain = bytes(_BLOCK)
    for start in range(0, len(padded), _BLOCK):
        chain = _des_encrypt(k1, _xor(chain, padded[start : start + _BLOCK]))
    return _des_encrypt(k1, _des_decrypt(k2, chain))


def arqc_input(fields: Mapping[int, bytes], iad: bytes) -> bytes:
    """Assemble the PBOC ARQC input: the ARQC_FIELDS values in order, then the CVR.

    `iad` is the value of 9F10 in the PBOC layout: length, DKI, CVN, CVR (4 bytes, its first
    byte being the CVR length 03), ...
    """
    parts = []
    for tag, size in ARQC_FIELDS:
        value = fields.get(tag)
        if value is None:
            raise CryptoInputError(f"ARQC input lacks tag {tag:X}")
        _require(value, size, f"tag {tag:X}")
        parts.append(value)
    if len(iad) < 7 or iad[3] != 3:
        raise CryptoInputError("issuer application data is not in the PBOC layout")
    return b"".join(parts) + iad[3:7]


def generate_arqc(session_key: bytes, data: bytes) -> bytes:
    """Application cryptogram: retail MAC with padding method 2 under the session key."""
    return retail_mac(session_key, data, padding=2)


def arpc_method1(key: bytes, arqc: bytes, arc: bytes) -> bytes:
    """ARPC method 1 (Book 2 A1.2.1): 3DES(key)[ARQC xor (ARC || 000000000000)]."""
    _require(key, 16, "ARPC key")
    _require(arqc, _BLOCK, "ARQC")
    _require(arc, 2, "authorisation response code")
    return _des_encrypt(key, _xor(arqc, arc + bytes(6)))


def key_check_value(key: bytes, length: int = 2) -> str:
    """Key check value: the first `length` bytes of 3DES(key)[00..00] as uppercase hex."""
    _require(key, 16, "key")
    if not 1 <= length <= _BLOCK:
        raise CryptoInputError("check value length must be 1 to 8 bytes")
    return _des_encrypt(key, bytes(_BLOCK))[:length].hex().upper()
