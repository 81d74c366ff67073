"""The daily reconciliation file for the loan system.

CSV, one row per money movement of the business day: `disbursement` rows (credited that day,
even if undone since) and `undo` rows (reversed that day), then one trailer row of counts and
sums, `trailer,<date>,<disbursements>,<disbursed_fen>,<undos>,<undone_fen>,<net_fen>,`.
"""

from __future__ import annotations

import csv
import io
from datetime import date

from sqlalchemy.orm import Session

from hub.disbursements import repository as repo
from hub.disbursements.errors import ClientNotFound
from integrations.loans.client import EXPORT_HEADER


def day_file(session: Session, day: date, client_name: str | None = None) -> str:
    """The reconciliation file of one business day, for one loan client or all of them."""
    client_id = _client_id(session, client_name)
    credited = repo.credited_on(session, day, client_id)
    undone = repo.undone_on(session, day, client_id)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    for d in credited:
        assert d.posted_at is not None
        writer.writerow(
            [
                "disbursement",
                d.external_id,
                d.loan_ref,
                d.card_number,
                d.amount,
                d.transfer_id,
                "",
                d.posted_at.isoformat(),
            ]
        )
    for d in undone:
        assert d.undone_at is not None
        writer.writerow(
            [
                "undo",
                d.external_id,
                d.loan_ref,
                d.card_number,
                d.amount,
                d.reversal_transfer_id,
                d.transfer_id,
                d.undone_at.isoformat(),
            ]
        )
    disbursed = sum(d.amount for d in credited)
    reversed_ = sum(d.amount for d in undone)
    writer.writerow(
        [
            "trailer",
            day.isoformat(),
            len(credited),
            disbursed,
            len(undone),
            reversed_,
            disbursed - reversed_,
            "",
        ]
    )
    return out.getvalue()


def _client_id(session: Session, name: str | None) -> int | None:
    if name is None:
        return None
    client = repo.client_by_name(session, name)
    if client is None:
        raise ClientNotFound(message=f"no loan client {name!r}")
    return client.id
