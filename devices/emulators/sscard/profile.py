"""Personalisation of a virtual card: who holds it, what the chip carries, how it misbehaves."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


class ProfileError(ValueError):
    """A profile file is missing a field or holds a value the card cannot carry."""


@dataclass
class CardProfile:
    """What the card issuer writes onto the chip; the balance lives at the bank, not here.

    `icc_master_key` is the card's own application cryptogram key (derived by the issuer from its
    master key at personalisation), hex. `repr=False` keeps it and the PAN out of logs.
    """

    card_number: str
    card_id_code: str
    holder_name: str
    id_number: str = field(repr=False)
    pan: str = field(repr=False)
    icc_master_key: str = field(repr=False)
    psn: str = "01"
    pan_expiry: str = "2034-01-31"
    issue_date: str = "2024-01-05"
    expiry_date: str = "2034-01-05"
    sex: str = "1"
    nation: str = "01"
    birth_date: str = "1958-03-12"
    region_code: str = "330100"
    key_index: int = 1  # DKI: which issuer master key version the card key came from
    atc: int = 0
    # Misbehaviour for tests and demos.
    blocked: bool = False
    pull_after_apdus: int | None = None  # the card leaves the field after this many APDUs
    t0_get_response: bool = False  # answer case-4 commands with 61xx, like T=0 cards
    strict_le: bool = False  # refuse Le=00 on READ RECORD with 6Cxx, like some cards

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> None:
        if not (self.pan.isdigit() and 13 <= len(self.pan) <= 19):
            raise ProfileError("pan must be 13 to 19 digits")
        if not (self.psn.isdigit() and len(self.psn) == 2):
            raise ProfileError("psn must be two digits")
        try:
            key = bytes.fromhex(self.icc_master_key)
        except ValueError:
            raise ProfileError("icc_master_key must be hex") from None
        if len(key) != 16:
            raise ProfileError("icc_master_key must be 16 bytes")
        if not 0 <= self.atc <= 0xFFFF:
            raise ProfileError("atc must fit in two bytes")
        if len(self.card_number) != 9 or len(self.id_number) != 18:
            raise ProfileError("card_number must be 9 characters and id_number 18")

    @property
    def master_key(self) -> bytes:
        return bytes.fromhex(self.icc_master_key)


def load_profile(path: Path) -> CardProfile:
    """Read a profile from a JSON or YAML file."""
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return profile_from_dict(data)


def profile_from_dict(data: Any) -> CardProfile:
    if not isinstance(data, dict):
        raise ProfileError("a profile is a mapping of field names to values")
    known = {f.name for f in fields(CardProfile)}
    unknown = set(data) - known
    if unknown:
        raise ProfileError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    try:
        return CardProfile(**data)
    except TypeError as exc:
        raise ProfileError(f"incomplete profile: {exc}") from None


def save_profile(profile: CardProfile, path: Path) -> None:
    """Write the profile back, e.g. to keep the card's ATC across runs, as its EEPROM would."""
    data = asdict(profile)
    text = (
        json.dumps(data, ensure_ascii=False, indent=2)
        if path.suffix == ".json"
        else yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    )
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
