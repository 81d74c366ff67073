"""The terminal agent never crashes, whatever the hub answers and whatever comes in locally.

(a) A hostile hub: a real HTTP server on a free loopback port that answers the agent's
heartbeats, command replies, config fetches and payment calls with hypothesis-drawn garbage:
non-JSON, JSON of the wrong shape, missing and mistyped fields, huge and deeply nested bodies,
500/502/429, slow answers, a connection closed without an answer. The agent's loop step keeps
returning a sane wait, no exception escapes it, and the outbox never drops a payment the hub
did not take, and a full outbox defers commands instead of crashing the loop. The card-tap, scan,
bill and checkout-desk flows answer the cashier with a result or their own typed refusal.

(b) Hostile local input: scan-engine bytes with random suffixes and framings, and card answers
(malformed APDU responses) on the driver's channel: only the driver's own typed errors come out.

Hypothesis is derandomized when CI is set.
"""

from __future__ import annotations

import itertools
import json
import math
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from devices.agent.agent import TerminalAgent
from devices.agent.card_tap import Authorization, CardTapFlow, TapResult
from devices.agent.checkout import CheckoutDesk, CheckoutRefused, CheckoutView
from devices.agent.hub_client import HubRefused, HubUnavailable
from devices.agent.scanning import BILLS_PATH, ScanAnswer, ScanDesk
from devices.emulators.sscard.card import SocialSecurityCard
from devices.emv.tlv import Tlv, encode
from devices.pcsc.channel import CardChannel
from devices.pcsc.debit import complete
from devices.pcsc.errors import ReaderError
from devices.pcsc.models import TerminalData
from devices.pcsc.tap import read_card
from devices.protocol.card_payments import CARD_PAYMENTS_PATH, REVERSALS_PATH, capture_path
from devices.protocol.messages import CONFIG_PATH, HEARTBEAT_PATH, command_reply_path
from devices.scanner.camera import CapturedFrame
from devices.scanner.framing import Framing, RejectedScan, Scan, ScanAssembler, Suffix
from tests.devices.emulators.sscard.virtual_card import DirectLink, make_profile
from tests.reliability.conftest import fuzz_settings

TIMEOUT = 0.2  # the agent's HTTP timeout here; a "slow" answer takes longer


# --- the hostile hub ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One answer of the hostile hub. `behaviour`: answer, close (no answer), short (the body is
    shorter than its declared length), slow (answers after the agent's timeout)."""

    status: int = 200
    body: bytes = b"{}"
    content_type: str | None = "application/json"
    behaviour: str = "answer"
    path: str | None = None  # only for a request to this path (None: the next one, any path)


@dataclass(frozen=True)
class Heard:
    method: str
    path: str
    body: bytes
    answer: Answer


class HostileHub(ThreadingHTTPServer):
    """Answers each request with the next scripted answer, then with `default`."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script: deque[Answer] = deque()
        self.default = Answer(503, b"")
        self.heard: list[Heard] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_answer(self, method: str, path: str, body: bytes) -> Answer:
        with self.lock:
            answer = next((a for a in self.script if a.path in (None, path)), self.default)
            if answer is not self.default:
                self.script.remove(answer)
            self.heard.append(Heard(method, path, body, answer))
        return answer

    def play(self, answers: list[Answer], default: Answer) -> None:
        with self.lock:
            self.script = deque(answers)
            self.default = default


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed ACK
    server: HostileHub

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.next_answer(self.command, self.path, body)
        if answer.behaviour == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if answer.behaviour == "slow":
            time.sleep(TIMEOUT + 0.05)
        self.send_response(answer.status)
        if answer.content_type:
            self.send_header("Content-Type", answer.content_type)
        declared = len(answer.body) + (100 if answer.behaviour == "short" else 0)
        self.send_header("Content-Length", str(declared))
        if answer.behaviour == "short":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        try:
            self.wfile.write(answer.body)
        except OSError:  # the agent gave up waiting (a slow answer)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads `heard` instead."""


@pytest.fixture(scope="module")
def hostile_hub() -> Iterator[HostileHub]:
    server = HostileHub()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _enrolment(terminal_id: int = 7) -> Answer:
    body = {
        "terminal_id": terminal_id,
        "unit_id": 1,
        "institution_code": "H33010200001",
        "kind": "combo",
        "heartbeat_interval_seconds": 0.05,
        "hub_time": datetime.now(UTC).isoformat(),
    }
    return Answer(201, json.dumps(body).encode())


@pytest.fixture
def agent(hostile_hub: HostileHub, tmp_path: Path) -> Iterator[TerminalAgent]:
    """An agent enrolled by the hostile hub (its one honest answer), with a short timeout."""
    hostile_hub.play([_enrolment()], Answer(503, b""))
    made = TerminalAgent(tmp_path, http=httpx.Client(timeout=TIMEOUT))
    made.enrol(hostile_hub.url, "ABCD-EFGH-JKMN-PQRS", "SN00000001", "SSC-CT500")
    yield made
    made.conn.close()


# --- strategies: garbage answers ------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),  # NaN and infinities too: json.loads reads them
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)


def _dump(value: Any) -> bytes:
    return json.dumps(value, default=str).encode()


def _times() -> st.SearchStrategy[Any]:
    return st.one_of(st.just(datetime.now(UTC).isoformat()), scalars)


@st.composite
def commands(draw: st.DrawFn) -> Any:
    """A command as the hub would send it, or a broken one."""
    command = {
        "id": draw(st.one_of(st.uuids().map(lambda u: u.hex), scalars)),
        "kind": draw(
            st.one_of(
                st.sampled_from(
                    ["reboot", "apply_config", "rotate_key", "disable", "collect_diagnostics"]
                ),
                scalars,
            )
        ),
        "issued_at": draw(_times()),
        "expires_at": draw(_times()),
        "payload": draw(
            st.one_of(
                st.dictionaries(
                    st.sampled_from(["config_id", "version", "hash", "document"]),
                    json_values,
                    max_size=4,
                ),
                json_values,
            )
        ),
    }
    if draw(st.booleans()):
        command.pop(draw(st.sampled_from(sorted(command))))
    return command


@st.composite
def heartbeat_replies(draw: st.DrawFn) -> Any:
    """A heartbeat reply with hostile fields: intervals, commands, desired configs."""
    reply: dict[str, Any] = {
        "next_interval_seconds": draw(st.one_of(st.floats(min_value=0.01, max_value=2.0), scalars)),
        "commands": draw(st.one_of(st.lists(commands(), max_size=3), json_values)),
        "desired_config": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {"config_id": scalars, "version": scalars, "hash": st.text(max_size=70)}
                ),
                json_values,
            )
        ),
        "hub_time": draw(_times()),
    }
    if draw(st.booleans()):
        reply.pop(draw(st.sampled_from(sorted(reply))))
    return reply


@st.composite
def payment_answers(draw: st.DrawFn) -> Any:
    """An authorisation or payment-code answer with hostile fields."""
    return draw(
        st.fixed_dictionaries(
            {},
            optional={
                "approved": scalars,
                "payment_id": scalars,
                "response_code": st.one_of(st.sampled_from(["00", "05", "51"]), scalars),
                "arpc": st.one_of(
                    st.binary(max_size=300).map(lambda b: b.hex().upper()),
                    st.text(max_size=20),
                    scalars,
                ),
                "decline_code": scalars,
                "kind": st.one_of(
                    st.sampled_from(["payment_code", "bill_code", "evoucher"]), scalars
                ),
                "payment": json_values,
                "bill": json_values,
                "checkout_id": scalars,
                "version": scalars,
                "hub_public_key": st.one_of(st.text(max_size=60), scalars),
            },
        )
    )


SPLIT = {"medfee": 10_160, "fund": 1_184, "account": 3_000, "cash": 5_976}
DESK_ANSWER: dict[str, Any] = {  # a checkout, its receipt and a bill code, as the hub answers
    "checkout_id": 7,
    "state": "pre_settled",
    "in_flight": False,
    "bill_no": "MZ000123",
    "medfee": 10_160,
    "patient_name": "Zhang Wei",
    "pre_settlement": SPLIT,
    "settlement": SPLIT,
    "payment_id": 12,
    "failure_code": None,
    "failure_message": None,
    "institution_name": "City Hospital",
    "setl_id": "S0001",
    "lines": [{"name": "X-ray", "quantity": "1", "price_fen": 10_160, "amount_fen": 10_160}],
    "split": SPLIT,
    "card": "623170******0003",
    "revoked": False,
    "revoke_setl_id": None,
    "transaction_id": "t1",
    "status": "paid",
    "amount_fen": 5_976,
    "bill_number": "MZ000123",
    "payload": "00020101021226",
}


@st.composite
def desk_answers(draw: st.DrawFn) -> Any:
    """A desk answer (checkout, receipt, bill) with a few fields dropped or made hostile."""
    answer = dict(DESK_ANSWER)
    answer["state"] = draw(st.sampled_from(["created", "pre_settled", "completed", "failed"]))
    answer["status"] = draw(st.sampled_from(["open", "paid", "cancelled", "expired"]))
    answer["in_flight"] = draw(st.booleans())
    for key in draw(st.lists(st.sampled_from(sorted(answer)), max_size=3, unique=True)):
        if draw(st.booleans()):
            del answer[key]
        else:
            answer[key] = draw(json_values)
    return answer


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


bodies = st.one_of(
    st.binary(max_size=200),  # not JSON
    json_values.map(_dump),  # JSON of any shape
    heartbeat_replies().map(_dump),
    payment_answers().map(_dump),
    desk_answers().map(_dump),
    st.sampled_from(
        [
            b"",
            b"<html><body>Gateway Timeout</body></html>",
            b'{"next_interval_seconds": NaN, "hub_time": "2026-11-29T08:00:00Z"}',
            b'{"next_interval_seconds": -1, "hub_time": "2026-11-29T08:00:00Z"}',
            b'{"next_interval_seconds": 1e999, "hub_time": "2026-11-29T08:00:00Z"}',
            b'{"error": {"code": 42}}',
            b'{"error": "nope"}',
            b"\xff\xfe\x00{",
            _nested(50_000),  # deeper than a JSON parser's recursion limit
            b'{"pad": "' + b"x" * 2_000_000 + b'"}',  # two megabytes
        ]
    ),
)
# Middle values pick the odd behaviours: hypothesis favours the ends of a range.
ODD = {5: "close", 7: "short", 9: "slow"}


def _answers(behaviours: st.SearchStrategy[str]) -> st.SearchStrategy[Answer]:
    return st.builds(
        Answer,
        status=st.sampled_from(
            [200, 200, 200, 201, 204, 400, 401, 404, 409, 422, 429, 500, 502, 503]
        ),
        body=bodies,
        content_type=st.sampled_from(["application/json", "text/html", None]),
        behaviour=behaviours,
        path=st.sampled_from([None, None, HEARTBEAT_PATH, CONFIG_PATH]),  # some for these calls
    )


answers = _answers(st.integers(0, 15).map(lambda n: ODD.get(n, "answer")))
# What the hub says once the script is played out: never slow, or every call would wait.
defaults = _answers(st.integers(0, 15).map(lambda n: "close" if n == 5 else "answer"))


def _command(kind: str, **fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"id": uuid.uuid4().hex, "kind": kind, "issued_at": now, "expires_at": now, **fields}


def _reply_with(*commands: dict[str, Any]) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    return {"next_interval_seconds": 1, "hub_time": now, "commands": list(commands)}


def _sane_wait(wait: float) -> bool:
    return math.isfinite(wait) and 0 < wait <= 86_400


# --- (a) the agent's loop against a hostile hub ---------------------------------------------------


def _queue_payment(agent: TerminalAgent) -> str:
    """A capture waiting in the outbox, as a card tap leaves it when the hub is away."""
    payment_id = uuid.uuid4().int % 10**9
    path = capture_path(payment_id)
    agent.outbox.put(path, {"amount": 1_000}, f"capture:{payment_id}")
    return path


def _is_json_object(body: bytes) -> bool:
    try:
        return isinstance(json.loads(body), dict)
    except (ValueError, RecursionError):
        return False


def _taken_by_hub(hub: HostileHub, path: str) -> bool:
    """The hub took this message (409: it has it already; 2xx with the JSON object the protocol
    promises): the only reasons to forget it. A proxy's page answered 200 is not the hub."""
    return any(
        h.path == path
        and h.answer.behaviour == "answer"
        and (
            h.answer.status == 409
            or (200 <= h.answer.status < 300 and _is_json_object(h.answer.body))
        )
        for h in hub.heard
    )


def _outbox_keeps(agent: TerminalAgent, hub: HostileHub, paths: list[str]) -> None:
    rows = agent.conn.execute("SELECT path, state FROM outbox").fetchall()
    kept = {path for path, _ in rows}
    for path in paths:
        assert path in kept or _taken_by_hub(hub, path), f"{path} lost from the outbox"


@fuzz_settings(max_examples=100)
@given(script=st.lists(answers, min_size=1, max_size=6), default=defaults)
@example(  # no exception may escape: a reply the models cannot read is no reply
    script=[Answer(200, b'{"next_interval_seconds": "soon"}', path=HEARTBEAT_PATH)],
    default=Answer(503, b""),
)
@example(script=[Answer(200, _nested(50_000), path=HEARTBEAT_PATH)], default=Answer(503, b""))
@example(
    script=[
        Answer(
            200,
            b'{"next_interval_seconds": -1, "hub_time": "2026-11-29T08:00:00Z"}',
            path=HEARTBEAT_PATH,
        )
    ],
    default=Answer(503, b""),
)
@example(  # an HTML page from a proxy, answered 200 to everything: payments stay queued
    script=[], default=Answer(200, b"<html>login</html>", "text/html")
)
@example(  # apply_config whose payload is no config: ValidationError escaped `handle`
    script=[
        Answer(
            200, _dump(_reply_with(_command("apply_config", payload={"x": 1}))), path=HEARTBEAT_PATH
        )
    ],
    default=Answer(200, b"{}"),
)
@example(  # a command id that is no hub id: its reply could not be built (escaped `handle`)
    script=[Answer(200, _dump(_reply_with(_command("reboot", id="a\nb"))), path=HEARTBEAT_PATH)],
    default=Answer(200, b"{}"),
)
def test_the_agent_loop_survives_any_answer_and_keeps_its_payments(
    agent: TerminalAgent, hostile_hub: HostileHub, script: list[Answer], default: Answer
) -> None:
    hostile_hub.play(script, default)
    hostile_hub.heard.clear()
    queued = [_queue_payment(agent)]
    wait = agent._one_cycle()  # the loop's step: what `run` calls between its sleeps
    assert _sane_wait(wait), wait
    agent.report_event("paper_low")
    agent.drain()
    _outbox_keeps(agent, hostile_hub, queued)


def test_the_loop_runs_on_through_a_hostile_hub(agent: TerminalAgent, hostile_hub: HostileHub):
    """`run` itself (its sleeps included) through intervals that are not intervals."""
    hub_time = datetime.now(UTC).isoformat()
    odd = [b"NaN", b"-1", b"1e999", b"0", b'"1"', b"null"]
    replies = [
        Answer(200, b'{"next_interval_seconds": %s, "hub_time": "%s"}' % (v, hub_time.encode()))
        for v in odd
    ]
    hostile_hub.play(replies, Answer(502, b"bad gateway", "text/plain"))
    assert agent.run(beats=len(odd) + 2, duration=2.0) >= 1


# --- (a) payment flows against a hostile hub --------------------------------------------------


@pytest.fixture
def card_channel() -> Iterator[CardChannel]:
    """The emulated card wired straight to the driver's channel (the reader is not under test)."""
    channel = CardChannel(DirectLink(SocialSecurityCard(make_profile())), "direct")
    yield channel
    channel.close()


@fuzz_settings(max_examples=60)
@given(script=st.lists(answers, min_size=1, max_size=4), default=defaults, pin=st.booleans())
@example(  # an ARPC too long for EXTERNAL AUTHENTICATE's one length byte
    script=[Answer(200, _dump({"approved": True, "response_code": "00", "arpc": "00" * 300}))],
    default=Answer(503, b""),
    pin=False,
)
@example(  # an ARPC that is not hex
    script=[Answer(200, _dump({"approved": True, "response_code": "00", "arpc": "XYZ"}))],
    default=Answer(503, b""),
    pin=False,
)
@example(  # the PIN key answer without its fields
    script=[Answer(200, b"{}")], default=Answer(503, b""), pin=True
)
@example(  # a proxy's 502 to the tap, the hub back for the reversal: it is sent
    script=[Answer(502, b"bad gateway", "text/plain")], default=Answer(200, b"{}"), pin=False
)
@example(  # no answer to the tap, none to the reversal: it is queued
    script=[Answer(behaviour="close")], default=Answer(503, b""), pin=False
)
@example(  # the tap answered 503, the reversal refused: HubRefused escaped the flow
    script=[Answer(503, b"")], default=Answer(400, b""), pin=False
)
def test_a_card_tap_always_ends_in_a_result_and_an_unanswered_hold_is_reversed(
    agent: TerminalAgent,
    hostile_hub: HostileHub,
    card_channel: CardChannel,
    tmp_path: Path,
    script: list[Answer],
    default: Answer,
    pin: bool,
) -> None:
    hostile_hub.play(script, default)
    hostile_hub.heard.clear()
    agent.conn.execute("DELETE FROM outbox")  # else a reversal queues behind earlier examples'
    assert agent.client is not None
    flow = CardTapFlow(
        agent.client,
        agent.outbox,
        tmp_path / "tap",
        pin_threshold_fen=1 if pin else 10**9,
        pin_pad=lambda: "123456",
    )
    terminal = TerminalData(amount=1_234)
    read = read_card(card_channel, terminal)
    transaction_id = uuid.uuid4().hex
    result = flow._authorise(card_channel, read, terminal, transaction_id)  # after the read
    assert isinstance(result, TapResult)
    assert not result.approved or result.card_cryptogram == "TC"
    reversal = {"transaction_id": transaction_id}
    sent = any(
        (h.method, h.path) == ("POST", REVERSALS_PATH) and json.loads(h.body) == reversal
        for h in hostile_hub.heard
    )
    queued = f"reversal:{transaction_id}" in agent.outbox.pending_ids()
    asked = [h for h in hostile_hub.heard if (h.method, h.path) == ("POST", CARD_PAYMENTS_PATH)]
    if asked and _outcome_unknown(asked[0].answer):  # the hub may hold money: it must be let go
        assert result.reversal is not None  # and not outbox_full: the outbox has room here
        assert sent or queued
    if result.reversal == "sent":
        assert sent
    if result.reversal == "queued":
        assert queued


def _outcome_unknown(answer: Answer) -> bool:
    """The answer to a tap says nothing the agent can trust: no answer, 5xx, or a 2xx that is not
    the authorisation the protocol promises (a 204 arrives without its body). A 4xx refused it."""
    if answer.behaviour != "answer" or answer.status >= 500:
        return True
    if answer.status >= 400:
        return False
    try:
        Authorization.model_validate(json.loads(b"" if answer.status == 204 else answer.body))
    except (ValueError, RecursionError):  # not JSON, or not an authorisation
        return True
    return False


def test_a_tap_whose_reversal_finds_the_outbox_full_still_ends_in_a_result(
    agent: TerminalAgent, hostile_hub: HostileHub, card_channel: CardChannel, tmp_path: Path
) -> None:
    """The hub is away and the outbox full: the reversal can go nowhere, and the tap says so
    (OutboxFull escaped the flow)."""
    hostile_hub.play([], Answer(503, b""))
    _queue_payment(agent)
    agent.outbox.max_messages = agent.outbox.depth()
    assert agent.client is not None
    flow = CardTapFlow(agent.client, agent.outbox, tmp_path, pin_threshold_fen=10**9)
    terminal = TerminalData(amount=1_000)
    read = read_card(card_channel, terminal)
    result = flow._authorise(card_channel, read, terminal, uuid.uuid4().hex)
    assert (result.approved, result.decline_code, result.reversal) == (
        False,
        "hub_unreachable",
        "outbox_full",
    )


@fuzz_settings(max_examples=80)
@given(script=st.lists(answers, min_size=1, max_size=4), default=defaults, how=st.integers(0, 2))
@example(script=[Answer(200, b"[1, 2]")], default=Answer(503, b""), how=1)
def test_a_scanned_code_always_ends_in_an_answer_for_the_cashier(
    agent: TerminalAgent,
    hostile_hub: HostileHub,
    script: list[Answer],
    default: Answer,
    how: int,
) -> None:
    hostile_hub.play(script, default)
    assert agent.client is not None
    desk = ScanDesk(agent.client, agent.outbox, attempts=2, sleep=lambda _: None)
    if how == 0:
        answer = desk.submit_text("hQVDUFYwMWEA", amount_fen=1_000)
    elif how == 1:
        frame = CapturedFrame(b"\x89PNG\r\n\x1a\n" + bytes(64), "image/png", "f.png")
        answer = desk.submit_frame(frame, amount_fen=1_000)
    else:
        answer = desk.payment_status(uuid.uuid4().hex)
    assert isinstance(answer, ScanAnswer)
    if answer.status == "paid":  # only the hub's own word says paid
        assert isinstance(answer.payment, dict) and answer.payment


DESK_STEPS = ["open", "identify", "pay_from_card", "pay_by_code", "revoke", "view", "receipt"]


def _desk_step(desk: CheckoutDesk, step: str) -> CheckoutView | str:
    seen = CheckoutView.of(DESK_ANSWER)  # a pre-settled checkout, as the desk last saw it
    calls: dict[str, Any] = {
        "open": lambda: desk.open("MZ000123"),
        "identify": lambda: desk.identify_by_code(7, " 6a3b9c\r\n"),
        "pay_from_card": lambda: desk.pay_from_card(seen),
        "pay_by_code": lambda: desk.pay_by_code(seen, "hQVDUFYwMWEA"),
        "revoke": lambda: desk.revoke(7),
        "view": lambda: desk.view(7),
        "receipt": lambda: desk.receipt(7).text(),  # printed, too
    }
    return calls[step]()  # type: ignore[no-any-return]


@fuzz_settings(max_examples=80)
@given(
    script=st.lists(answers, min_size=1, max_size=4),
    default=defaults,
    step=st.sampled_from(DESK_STEPS),
)
@example(  # a checkout id that is no number: int() raised ValueError
    script=[Answer(200, _dump({**DESK_ANSWER, "checkout_id": "seven"}))],
    default=Answer(503, b""),
    step="open",
)
@example(  # a receipt without its split: KeyError while printing
    script=[Answer(200, _dump({k: v for k, v in DESK_ANSWER.items() if k != "split"}))],
    default=Answer(503, b""),
    step="receipt",
)
@example(  # a code payment without its payment id: KeyError
    script=[Answer(200, _dump({"transaction_id": "t1", "status": "paid"}))],
    default=Answer(503, b""),
    step="pay_by_code",
)
def test_the_checkout_desk_ends_in_a_checkout_or_a_typed_refusal(
    agent: TerminalAgent, hostile_hub: HostileHub, script: list[Answer], default: Answer, step: str
) -> None:
    """The cashier's desk answers with a checkout (or a receipt's text), CheckoutRefused or
    HubUnavailable (an answer it cannot read included): never KeyError, ValueError, TypeError."""
    hostile_hub.play(script, default)
    assert agent.client is not None
    desk = CheckoutDesk(agent.client, wait_seconds=0.1, poll_seconds=0.01)
    try:
        result = _desk_step(desk, step)
    except (CheckoutRefused, HubUnavailable):
        return
    assert isinstance(result, CheckoutView | str)


BILL = "MZ 000?123"  # a space and a `?`: it must reach the hub as one percent-encoded segment


@fuzz_settings(max_examples=60)
@given(
    script=st.lists(answers, min_size=1, max_size=4),
    default=defaults,
    how=st.sampled_from(["wait", "create", "cancel"]),
)
@example(  # a bill without its status: wait_for_bill raised KeyError
    script=[Answer(200, _dump({"bill_number": BILL, "amount_fen": 100}))],
    default=Answer(503, b""),
    how="wait",
)
@example(script=[Answer(200, b"[]")], default=Answer(200, b'{"status": 1}'), how="wait")
def test_a_bill_call_ends_in_a_bill_or_a_typed_refusal(
    agent: TerminalAgent, hostile_hub: HostileHub, script: list[Answer], default: Answer, how: str
) -> None:
    hostile_hub.play(script, default)
    hostile_hub.heard.clear()
    assert agent.client is not None
    desk = ScanDesk(agent.client, agent.outbox, attempts=2, sleep=lambda _: None)
    ticks = itertools.count()
    try:
        if how == "wait":
            clock = lambda: float(next(ticks))  # noqa: E731
            bill = desk.wait_for_bill(BILL, timeout_seconds=3, interval_seconds=0, clock=clock)
        elif how == "create":
            bill = desk.create_bill("MZ000123", 1_000)
        else:
            bill = desk.cancel_bill(BILL)
    except (HubRefused, HubUnavailable):
        bill = None
    if bill is not None:
        assert bill["status"] in ("open", "paid", "cancelled", "expired")
        assert isinstance(bill["payload"], str)
    if how != "create":
        assert all(h.path.startswith(f"{BILLS_PATH}/MZ%20000%3F123") for h in hostile_hub.heard)


def test_a_command_waits_for_room_in_the_outbox_then_runs_once(
    agent: TerminalAgent, hostile_hub: HostileHub
) -> None:
    """A full outbox cannot take a command's acknowledgement (OutboxFull escaped the loop): the
    command is left unseen, and runs once the hub delivers it again and there is room."""
    command = _command("collect_diagnostics")
    beat = Answer(200, _dump(_reply_with(command)), path=HEARTBEAT_PATH)
    hostile_hub.play([beat], Answer(503, b""))  # nothing else is taken: the outbox stays full
    _queue_payment(agent)
    agent.outbox.max_messages = agent.outbox.depth()
    assert _sane_wait(agent._one_cycle())
    assert not [m for m in agent.outbox.pending_ids() if m.startswith(command["id"])]
    assert any("outbox full" in error for error in agent.recent_errors)

    agent.outbox.max_messages = 5000
    hostile_hub.play([beat], Answer(200, b"{}"))  # delivered again; the hub takes everything
    hostile_hub.heard.clear()
    assert _sane_wait(agent._one_cycle())
    replies = [h for h in hostile_hub.heard if h.path == command_reply_path(command["id"])]
    assert [json.loads(h.body)["status"] for h in replies] == ["acknowledged", "succeeded"]
    assert agent.outbox.depth() == 0


@fuzz_settings(max_examples=40)
@given(
    script=st.lists(answers, max_size=4),
    default=defaults,
    sent=st.lists(commands(), min_size=1, max_size=3),
    room=st.integers(0, 3),
)
def test_the_loop_survives_commands_while_the_outbox_is_full(
    agent: TerminalAgent,
    hostile_hub: HostileHub,
    script: list[Answer],
    default: Answer,
    sent: list[Any],
    room: int,
) -> None:
    beat = Answer(200, _dump({**_reply_with(), "commands": sent}), path=HEARTBEAT_PATH)
    hostile_hub.play([beat, *script], default)
    hostile_hub.heard.clear()
    queued = [_queue_payment(agent)]
    agent.outbox.max_messages = agent.outbox.depth() + room
    try:
        assert _sane_wait(agent._one_cycle())
    finally:
        agent.outbox.max_messages = 5000
    _outbox_keeps(agent, hostile_hub, queued)


# --- (b) hostile local input --------------------------------------------------------------------


@fuzz_settings(max_examples=200)
@given(
    data=st.binary(max_size=3_000),
    chunk=st.integers(1, 64),
    suffix=st.sampled_from(list(Suffix)),
    custom=st.text(min_size=1, max_size=3),
    prefix=st.text(max_size=3),
    aim=st.booleans(),
    encoding=st.sampled_from(["utf-8", "gbk", "latin-1", "ascii"]),
)
def test_scanner_lines_of_any_bytes_give_scans_or_rejections(
    data: bytes, chunk: int, suffix: Suffix, custom: str, prefix: str, aim: bool, encoding: str
) -> None:
    framing = Framing(
        suffix=suffix,
        prefix=prefix,
        custom_suffix=custom if suffix is Suffix.CUSTOM else "",
        aim_ids=aim,
        encoding=encoding,
        max_chars=500,
    )
    assembler = ScanAssembler(framing)
    now = 0.0
    results = []
    for start in range(0, len(data), chunk):
        now += 0.01
        results += assembler.feed_bytes(data[start : start + chunk], now)
    results += assembler.tick(now + 10)
    for result in results:
        assert isinstance(result, Scan | RejectedScan)
        if isinstance(result, Scan):
            assert 0 < len(result.text) <= 500


class HostileCard:
    """The emulated card, with its answers to chosen commands replaced or damaged."""

    def __init__(self, damage: dict[int, tuple[str, bytes]]) -> None:
        self.link = DirectLink(SocialSecurityCard(make_profile()))
        self.damage = damage
        self.count = 0

    def transmit(self, command: list[int]) -> tuple[list[int], int, int]:
        data, sw1, sw2 = self.link.transmit(command)
        self.count += 1
        how, noise = self.damage.get(self.count, ("keep", b""))
        if how == "replace":
            data = list(noise)
        elif how == "cut":
            data = data[: len(noise)]
        elif how == "flip" and data:
            at = noise[0] % len(data) if noise else 0
            data[at] ^= noise[1] if len(noise) > 1 else 0xFF
        elif how == "status":
            sw1, sw2 = (noise + b"\x6f\x00")[:2]
        elif how == "append":
            data = data + list(noise)
        return data, sw1, sw2

    def getATR(self) -> list[int]:
        return self.link.getATR()

    def disconnect(self) -> None:
        self.link.disconnect()


damages = st.dictionaries(
    st.integers(1, 40),  # which APDU of the tap (a tap sends about 30)
    st.tuples(
        st.sampled_from(["replace", "cut", "flip", "status", "append"]), st.binary(max_size=40)
    ),
    min_size=1,
    max_size=3,
)


def _tlv(tag: int, *children: bytes, value: bytes = b"") -> bytes:
    return encode([Tlv(tag, value or b"".join(children))])


# Which APDU of a tap answers what: 1-16 the social-security application, then the debit one.
PPSE, DEBIT_FCI, FIRST_RECORD = 17, 18, 20
EMPTY_PRIORITY = _tlv(  # a directory entry whose priority (87) is present but empty
    0x6F,
    _tlv(0x84, value=b"2PAY.SYS.DDF01"),
    _tlv(
        0xA5,
        _tlv(0xBF0C, _tlv(0x61, _tlv(0x4F, value=bytes.fromhex("A000000333010101")), b"\x87\x00")),
    ),
)
BROKEN_INSIDE = bytes.fromhex("6F03A50181")  # the outer template reads; the one inside does not
GREEDY_CDOL = _tlv(  # a record whose CDOL1 asks for 510 bytes: more than one APDU carries
    0x70,
    _tlv(0x5A, value=bytes.fromhex("6231700000000007516F")),
    _tlv(0x5F24, value=bytes.fromhex("341231")),
    _tlv(0x8C, value=bytes.fromhex("9F0281FF9F0381FF")),
)


@fuzz_settings(max_examples=300)
@given(damage=damages, arc=st.binary(min_size=2, max_size=2), arpc=st.binary(max_size=12))
@example(damage={PPSE: ("replace", EMPTY_PRIORITY)}, arc=b"00", arpc=b"")  # was IndexError
@example(damage={DEBIT_FCI: ("replace", BROKEN_INSIDE)}, arc=b"00", arpc=b"")  # was TlvError
@example(damage={FIRST_RECORD: ("replace", GREEDY_CDOL)}, arc=b"00", arpc=b"")  # was ValueError
def test_malformed_card_answers_raise_only_reader_errors(
    damage: dict[int, tuple[str, bytes]], arc: bytes, arpc: bytes
) -> None:
    channel = CardChannel(HostileCard(damage), "hostile")
    terminal = TerminalData(amount=1_234)
    try:
        read = read_card(channel, terminal)
        complete(channel, read.debit, terminal, arc, arpc or None)
    except ReaderError:
        pass  # the driver's own, typed: the agent can switch on it


def test_a_hostile_hub_never_saw_the_full_pan_in_a_log_line(
    agent: TerminalAgent,
    hostile_hub: HostileHub,
    card_channel: CardChannel,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The agent's log lines about a garbage answer name the masked card only."""
    hostile_hub.play([Answer(200, b"<html/>", "text/html")], Answer(500, b""))
    assert agent.client is not None
    flow = CardTapFlow(agent.client, agent.outbox, tmp_path, pin_threshold_fen=10**9)
    terminal = TerminalData(amount=1_000)
    read = read_card(card_channel, terminal)
    with caplog.at_level("DEBUG"):
        flow._authorise(card_channel, read, terminal, uuid.uuid4().hex)
    assert read.debit.pan not in caplog.text
