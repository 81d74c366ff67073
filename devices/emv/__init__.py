"""EMV/PBOC primitives: BER-TLV, tags and DOLs, card cryptograms and ISO 9564 PIN blocks.

Pure library (stdlib and `cryptography` only), shared by the card emulator, the reader driver
and the issuer.
"""
