import json
import socket
import time

import httpx
import pytest

from integrations.loans.client import (
    EXPORT_HEADER,
    CallbackRejected,
    ClientKey,
    HttpLoanSystem,
    LoanSystemUnreachable,
    canonical_json,
    signed_headers,
)
from integrations.loans.simulator import CallbackInbox, CallbackServer, LoanBook, reconcile

KEY = ClientKey("lk_1", "callback-secret")


def event(event_id="disb.credited.L-1", kind="disbursement.credited", **disbursement):
    d = {"external_id": "L-1", "status": "credited", "reason": None} | disbursement
    return {"event_id": event_id, "type": kind, "disbursement": d}


@pytest.fixture
def server():
    with CallbackServer(CallbackInbox({KEY.key_id: KEY.secret})) as running:
        yield running


def test_signed_callback_is_accepted_once_and_duplicates_have_no_effect(server):
    hub = HttpLoanSystem()
    body = canonical_json(event())
    hub.send_callback(server.url, KEY, "disb.credited.L-1", body)
    hub.send_callback(server.url, KEY, "disb.credited.L-1", body)
    assert list(server.inbox.events) == ["disb.credited.L-1"]
    assert server.inbox.duplicates == 1


def test_callback_with_a_wrong_key_is_refused_for_good(server):
    hub = HttpLoanSystem()
    with pytest.raises(CallbackRejected) as refused:
        hub.send_callback(server.url, ClientKey("lk_1", "guess"), "e", canonical_json(event("e")))
    assert refused.value.status == 401 and refused.value.permanent
    assert server.inbox.events == {} and server.inbox.refused == 1


def test_stale_or_tampered_callbacks_are_refused(server):
    inbox = server.inbox
    body = canonical_json(event())
    late = HttpLoanSystem(clock=lambda: time.time() - 3600)
    with pytest.raises(CallbackRejected):
        late.send_callback(server.url, KEY, "disb.credited.L-1", body)
    headers = {
        "X-SSC-Key-Id": KEY.key_id,
        "X-SSC-Timestamp": str(int(time.time())),
        "X-SSC-Signature": "0" * 64,
        "X-SSC-Event-Id": "disb.credited.L-1",
    }
    assert inbox.receive("/callbacks", headers, body) == (401, "signature_invalid")
    assert inbox.events == {}


def test_unreachable_loan_system_is_worth_retrying():
    with pytest.raises(LoanSystemUnreachable):
        HttpLoanSystem(timeout=1).send_callback("http://127.0.0.1:9/callbacks", KEY, "e", b"{}")


def test_server_error_is_not_permanent():
    assert not CallbackRejected(503).permanent and not CallbackRejected(429).permanent
    assert CallbackRejected(400).permanent


EXPORT = (
    ",".join(EXPORT_HEADER)
    + """
disbursement,L-1,LN1,K10000001,100000,disb:L-1,,2026-11-29T08:00:00+00:00
disbursement,L-2,LN2,K10000002,50000,disb:L-2,,2026-11-29T08:00:01+00:00
undo,L-2,LN2,K10000002,50000,disb-undo:L-2,disb:L-2,2026-11-29T09:00:00+00:00
trailer,2026-11-29,2,150000,1,50000,100000,
"""
)


def book():
    b = LoanBook(
        orders={"L-1": {"amount": 100000}, "L-2": {"amount": 50000}, "L-3": {"amount": 7}},
        outcomes={"L-1": "credited", "L-2": "credited", "L-3": "identity_mismatch"},
        undone={"L-2": 50000},
    )
    for e in (
        event("c1"),
        event("c2", external_id="L-2"),
        event("u2", "disbursement.undone", external_id="L-2", status="undone"),
        event(
            "r3",
            "disbursement.rejected",
            external_id="L-3",
            status="rejected",
            reason="identity_mismatch",
        ),
    ):
        b.events[e["event_id"]] = e
    return b


def test_reconciliation_of_a_matching_export_is_clean():
    result = reconcile(EXPORT, book())
    assert result.clean, result.differences
    assert (result.disbursements, result.disbursed_fen, result.undos, result.undone_fen) == (
        2,
        150000,
        1,
        50000,
    )


@pytest.mark.parametrize(
    ("change", "difference"),
    [
        (lambda t: t.replace("100000,disb:L-1", "100001,disb:L-1"), "disbursement L-1: export"),
        (lambda t: t.replace("disbursement,L-1", "disbursement,L-9"), "L-9 in the export"),
        (lambda t: t.replace("undo,L-2", "undo,L-1"), "undo L-2 missing"),
        (lambda t: t.replace("2,150000,1", "3,150000,1"), "trailer says"),
    ],
)
def test_reconciliation_names_each_difference(change, difference):
    result = reconcile(change(EXPORT), book())
    assert any(difference in d for d in result.differences), result.differences


def test_reconciliation_notices_a_credit_without_its_callback():
    b = book()
    del b.events["c1"]
    assert "L-1: credited without a callback" in reconcile(EXPORT, b).differences


def test_book_survives_a_round_trip(tmp_path):
    path = tmp_path / "book.json"
    book().save(path)
    assert reconcile(EXPORT, LoanBook.load(path)).clean
    assert json.loads(path.read_text())["undone"] == {"L-2": 50000}


def test_server_answers_404_off_its_path(server):
    response = httpx.post(server.url.replace("/callbacks", "/other"), content=b"{}")
    assert response.status_code == 404


def test_a_callback_cut_off_mid_body_is_not_counted_as_refused(server):
    """A hub killed while it sends leaves headers and part of a body: that is no callback."""
    host, port = server.url.split("/")[2].split(":")
    body = canonical_json(event())
    signed = signed_headers(KEY, "POST", "/callbacks", body, time.time())
    head = f"POST /callbacks HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in signed.items()) + "\r\n"
    with socket.create_connection((host, int(port))) as cut:
        cut.sendall(head.encode() + body[:10])
        cut.shutdown(socket.SHUT_WR)  # the sender is gone
        answer = b"".join(iter(lambda: cut.recv(4096), b""))  # until the server closes
    assert answer == b""
    assert server.inbox.refused == 0 and server.inbox.events == {}
    HttpLoanSystem().send_callback(server.url, KEY, "disb.credited.L-1", body)
    assert list(server.inbox.events) == ["disb.credited.L-1"]
