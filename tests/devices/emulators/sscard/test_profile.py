"""Profiles personalise the card from a file and keep its ATC across runs."""

import json

import pytest

from devices.emulators.sscard.profile import (
    ProfileError,
    load_profile,
    profile_from_dict,
    save_profile,
)
from tests.devices.emulators.sscard.virtual_card import make_profile


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_saved_profile_loads_back_with_its_atc(tmp_path, suffix):
    profile = make_profile(atc=41)
    path = tmp_path / f"card{suffix}"
    save_profile(profile, path)
    assert load_profile(path) == profile


def test_unknown_fields_are_refused(tmp_path):
    path = tmp_path / "card.json"
    path.write_text(json.dumps({"card_number": "K1", "balance": 100}))
    with pytest.raises(ProfileError, match="balance"):
        load_profile(path)


@pytest.mark.parametrize(
    "change",
    [{"icc_master_key": "00"}, {"icc_master_key": "zz"}, {"pan": "12"}, {"psn": "1"}],
)
def test_a_card_that_cannot_exist_is_refused(change):
    with pytest.raises(ProfileError):
        make_profile(**change)


def test_a_missing_field_is_refused():
    with pytest.raises(ProfileError, match="incomplete"):
        profile_from_dict({"card_number": "K10000001"})


def test_repr_keeps_the_pan_and_key_out():
    profile = make_profile()
    assert profile.pan not in repr(profile) and profile.icc_master_key not in repr(profile)
