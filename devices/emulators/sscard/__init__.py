"""A virtual third-generation social security card on vsmartcard's vpcd socket.

`card.py` is the card itself (an APDU state machine with no I/O), `vpcd.py` plugs it into
pcscd's virtual reader, `profile.py` personalises it from a file and `cli.py` runs it.
"""
