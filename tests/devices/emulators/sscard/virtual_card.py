"""Virtual cards for tests: profiles personalised under a test issuer master key, and the real
PC/SC stack (pcscd + vpcd) they are inserted into. Conftests re-export the fixtures."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devices.emulators.sscard.card import SocialSecurityCard
from devices.emulators.sscard.profile import CardProfile
from devices.emulators.sscard.vpcd import VPCD_PORT, VpcdLink
from devices.emv.crypto import derive_icc_master_key

# The PBOC worked example's issuer master key: tests may hold it, nothing else does.
TEST_IMK = bytes.fromhex("F0C34A8124CEE0A91A0B034AA97D6EAC")
TEST_PAN = "6231700000000007516"
READER_PORTS = (VPCD_PORT, VPCD_PORT + 1)
REPO = Path(__file__).parents[4]


def make_profile(imk: bytes = TEST_IMK, **overrides: Any) -> CardProfile:
    """A personalised card; its key is derived from `imk` as the issuer's perso would."""
    fields: dict[str, Any] = {
        "card_number": "K10000001",
        "card_id_code": "330100D156000005000123456789ABCD",
        "holder_name": "张秀英",
        "id_number": "330102195803120028",
        "pan": TEST_PAN,
        "psn": "01",
    }
    fields.update(overrides)
    key = derive_icc_master_key(imk, fields["pan"], fields["psn"])
    fields.setdefault("icc_master_key", key.hex().upper())
    return CardProfile(**fields)


def _vpcd_listening() -> bool:
    from devices.pcsc.reader import list_readers

    return any(name.startswith("Virtual PCD") for name in list_readers())


def ensure_pcscd() -> None:
    """Start pcscd with the vpcd driver (installing the packages first if need be)."""
    if _vpcd_listening():
        return
    if shutil.which("pcscd") is None:
        subprocess.run(["bash", str(REPO / "scripts" / "setup.sh")], check=True)
    else:
        subprocess.run(["pcscd"], check=True)
    for _ in range(50):
        if _vpcd_listening():
            return
        time.sleep(0.1)
    pytest.fail("pcscd with the vpcd driver does not listen on 127.0.0.1:35963")


@pytest.fixture(scope="session")
def pcsc_stack() -> None:
    ensure_pcscd()


InsertCard = Callable[..., tuple[SocialSecurityCard, VpcdLink]]


class CardSlots:
    """Cards put into the virtual readers by a test; `remove_all` takes them out again."""

    def __init__(self) -> None:
        self.links: list[VpcdLink] = []

    def insert(self, profile: CardProfile, reader: int = 0) -> tuple[SocialSecurityCard, VpcdLink]:
        card = SocialSecurityCard(profile)
        link = VpcdLink(card, port=READER_PORTS[reader])
        link.insert()
        self.links.append(link)
        return card, link

    def remove_all(self) -> None:
        for link in self.links:
            link.remove()
        _settle(any(link.pulled for link in self.links))
        self.links.clear()


@pytest.fixture
def insert_card(pcsc_stack: None) -> Iterator[InsertCard]:
    """insert_card(profile, reader=0): the card goes into a virtual reader until the test ends."""
    slots = CardSlots()
    yield slots.insert
    slots.remove_all()


def _settle(pulled: bool) -> None:
    """Let pcscd see every reader empty before the next test inserts a card. A card pulled
    mid-command is ejected inside vpcd's transmit, so pcscd would take a card inserted before
    its next presence poll (every 400 ms) for the old one: wait that poll out."""
    from devices.pcsc.reader import list_readers, wait_for_removal

    if pulled:
        time.sleep(0.5)
    for reader in list_readers():
        wait_for_removal(reader, timeout=3)


class DirectLink:
    """The card wired straight to the driver's channel, with no reader in between: for hub tests
    that need real cryptograms by the hundred without going through pcscd."""

    def __init__(self, card: SocialSecurityCard) -> None:
        self.card = card
        card.power_on()

    def transmit(self, command: list[int]) -> tuple[list[int], int, int]:
        response = self.card.transmit(bytes(command))
        return list(response[:-2]), response[-2], response[-1]

    def getATR(self) -> list[int]:  # pyscard's name
        return list(self.card.atr)

    def disconnect(self) -> None:
        self.card.power_off()
