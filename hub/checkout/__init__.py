"""Hospital checkout with the medical insurance split (issue 6).

service.py     the state machine's steps and views (what endpoints and other domains call)
flow.py        the driver: sends the platform messages between transactions; outbox handler
calls.py       platform messages: msgid, exact request, lease, outbox promise
answers.py     what each platform answer or refusal does to a checkout
legs.py        the money: self-pay hold and its adjustment, settlement and revoke legs
messages.py    requests built from a checkout, and how each is sent
states.py      state moves with their audit entries
reconciliation.py, cli.py   `sshub reconcile --date D` against 3201
"""
