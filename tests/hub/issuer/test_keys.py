"""Issuer master keys: wrapped under the KEK, versioned, rotated, never shown."""

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from devices.emv.crypto import key_check_value
from hub.config import Settings
from hub.issuer import keys
from hub.issuer.errors import IssuerKeyMissing
from hub.issuer.keys import IssuerSecrets
from hub.issuer.models import IssuerKey

KEY = bytes.fromhex("F0C34A8124CEE0A91A0B034AA97D6EAC")


@pytest.fixture
def secrets():
    return IssuerSecrets.from_settings(Settings(key_encryption_key=SecretStr("k" * 40)))


def test_a_created_key_is_stored_wrapped_and_shown_by_check_value_only(db, clock, secrets):
    info = db.transaction(lambda s: keys.create_key(s, secrets, clock(), key=KEY))
    assert (info.version, info.status, info.kcv) == (1, "active", key_check_value(KEY, 3))
    with db.session() as s:
        (row,) = s.scalars(select(IssuerKey)).all()
        assert KEY.hex() not in row.key_wrapped.lower() and KEY not in row.key_wrapped.encode()
        assert keys.master_key(s, secrets, 1) == KEY
        assert KEY.hex().upper() not in repr(keys.list_keys(s))


def test_rotation_adds_a_version_and_retires_but_keeps_the_old_one(db, clock, secrets):
    db.transaction(lambda s: keys.create_key(s, secrets, clock(), key=KEY))
    new = db.transaction(lambda s: keys.rotate_key(s, secrets, clock()))
    assert new.version == 2
    with db.session() as s:
        assert [(k.version, k.status) for k in keys.list_keys(s)] == [
            (1, "retired"),
            (2, "active"),
        ]
        assert keys.master_key(s, secrets, 1) == KEY
        assert keys.master_key(s, secrets, 2) not in (None, KEY)
        assert keys.active_version(s) == 2
        assert keys.master_key(s, secrets, 3) is None


def test_nothing_to_rotate_is_refused(db, clock, secrets):
    with pytest.raises(IssuerKeyMissing):
        db.transaction(lambda s: keys.rotate_key(s, secrets, clock()))


def test_a_key_does_not_open_under_another_kek(db, clock, secrets):
    db.transaction(lambda s: keys.create_key(s, secrets, clock(), key=KEY))
    other = IssuerSecrets.from_settings(Settings(key_encryption_key=SecretStr("x" * 40)))
    with db.session() as s, pytest.raises(IssuerKeyMissing) as caught:
        keys.master_key(s, other, 1)
    assert KEY.hex() not in str(caught.value).lower()


def test_secrets_keep_out_of_reprs(secrets):
    assert "key_wrapping" not in repr(secrets) and secrets.key_wrapping.hex() not in repr(secrets)
