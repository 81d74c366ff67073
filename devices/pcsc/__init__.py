"""Card reader driver over PC/SC (pyscard): the social-security and the debit application.

`reader.py` finds readers and waits for cards, `channel.py` speaks APDUs (61xx/6Cxx handled),
`social_security.py` and `debit.py` read the two applications and run GENERATE AC, `models.py`
holds the typed results. Nothing here knows about HTTP or the hub.
"""
