"""Bank operations see every loan client's disbursements: search and the day's figures."""

from datetime import UTC, date, datetime

from hub.disbursements import clients, service
from hub.disbursements.models import DisbursementStatus
from integrations.loans.client import ClientKey, DisbursementApi

from .conftest import NO_CALLBACKS

DAY = date(2026, 11, 29)


def _second_client(db, clock, rules, client) -> DisbursementApi:
    issued = db.transaction(
        lambda s: clients.create_client(
            s, "farm-credit", NO_CALLBACKS, rules, clock(), actor="operator:test"
        )
    )
    return DisbursementApi(
        client, ClientKey(issued.key_id, issued.secret), clock=lambda: clock().timestamp()
    )


def test_search_spans_clients_by_external_id_status_and_outcome_day(
    db, clock, rules, client, programme, api, order
):
    farm = _second_client(db, clock, rules, client)
    assert api.create(order(external_id="L-0001")).status_code == 201
    assert api.create(order(external_id="L-0002", card_number="K99999999")).status_code == 422
    assert farm.create(order(external_id="F-0001", amount=200_000)).status_code == 201
    assert api.undo("L-0001").status_code == 200
    clock.now = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)  # 01:00 on the 30th in Shanghai
    assert farm.create(order(external_id="F-0002", value_date="2026-11-30")).status_code == 201

    def found(**filters) -> list[str]:
        with db.session() as s:
            items, _ = service.search(s, **filters)
            return [d.external_id for d in items]

    assert found() == ["F-0002", "F-0001", "L-0002", "L-0001"]
    assert found(external_id="F-") == ["F-0002", "F-0001"]
    assert found(external_id="L-0001") == ["L-0001"]
    assert found(external_id="%") == []  # a prefix, never a pattern
    assert found(status=DisbursementStatus.UNDONE) == ["L-0001"]
    assert found(status=DisbursementStatus.REJECTED) == ["L-0002"]
    assert found(posted_from=DAY, posted_to=DAY) == ["F-0001", "L-0002", "L-0001"]
    assert found(posted_from=date(2026, 11, 30)) == ["F-0002"]
    with db.session() as s:
        first, cursor = service.search(s, limit=3)
        rest, end = service.search(s, before=cursor, limit=3)
        names = service.client_names(s)
    assert [d.external_id for d in [*first, *rest]] == found() and end is None
    assert sorted(names.values()) == ["farm-credit", "micro-loans"]


def test_the_day_summary_counts_credits_rejections_and_undos(
    db, clock, rules, client, programme, api, order
):
    farm = _second_client(db, clock, rules, client)
    api.create(order(external_id="L-0001"))
    api.create(order(external_id="L-0002", card_number="K99999999"))
    farm.create(order(external_id="F-0001", amount=200_000))
    api.undo("L-0001")
    with db.session() as s:
        today = service.day_summary(s, DAY)
        tomorrow = service.day_summary(s, date(2026, 11, 30))
    # Credited today counts the loan undone since; the undo counts on its own day too.
    assert (today.credited_count, today.credited) == (2, 1_000_000 + 200_000)
    assert (today.rejected_count, today.undone_count, today.undone) == (1, 1, 1_000_000)
    assert (tomorrow.credited_count, tomorrow.credited, tomorrow.undone_count) == (0, 0, 0)
