from tests.devices.emulators.sscard.virtual_card import insert_card, pcsc_stack  # noqa: F401
