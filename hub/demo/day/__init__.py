"""A seeded, replayable district day checked against an in-memory model (`sshub simulate day`).

model.py    the books as the model keeps them
faults.py   the faults of each step, drawn from the seed; the hub's kill switch
clock.py    the day's hours and its hand-moved clock
network.py  the hub under test (in process) and the faulty network in front of it
outside.py  the insurance platform, the HIS, the loan system's callbacks: real HTTP servers
world.py    the seeded district: units, terminals, cards, the loan system
clients.py  terminals, the cardholder app and the loan system, retrying as they do
payments.py card taps, payment codes, bill codes, refunds
flows.py    checkouts with the insurance split, loan disbursements and undos
day.py      the run loop, the workers stepped by hand, the checks after every step
report.py   what a day reports: the event log, its digest, the counts, the first mismatch
"""

from hub.demo.day.day import DayOptions, run_day
from hub.demo.day.report import DayReport

__all__ = ["DayOptions", "DayReport", "run_day"]
