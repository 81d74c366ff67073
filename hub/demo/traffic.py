"""The district's traffic: a steady, realistic mix of what a county's hospitals do all day.

Each event goes through the same doors a real one would: card taps through a card reader
terminal's agent flow, payment codes and bill codes through a scanner terminal, checkouts
through a combo terminal's checkout desk, loans through the loan system simulator's signed
client. Cards are the virtual social security card; through pcscd when the district has it,
otherwise wired straight to the reader driver's channel (same APDUs, no PC/SC daemon).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import httpx

from devices.agent.card_tap import CardTapFlow, TapResult, new_transaction_id
from devices.agent.checkout import CheckoutDesk, CheckoutRefused
from devices.agent.hub_client import HubRefused, HubUnavailable
from devices.agent.scanning import ScanDesk
from devices.emulators.sscard.card import SocialSecurityCard
from devices.emulators.sscard.vpcd import VPCD_PORT, VpcdLink
from devices.pcsc.channel import CardChannel
from devices.pcsc.errors import ReaderError
from devices.pcsc.models import TerminalData
from devices.pcsc.reader import list_readers, wait_for_removal
from devices.pcsc.tap import read_card
from hub.console.rendering import card_masked
from integrations.loans.client import DisbursementApi, id_number_check

Say = Callable[[str], None]
# How often each kind of event happens, out of 100.
MIX = (("tap", 35), ("code", 25), ("bill", 10), ("checkout", 15), ("loan", 15))
MONEY_MOVED = (":captured", ":paid", ":completed", ":credited")


class DirectLink:
    """The virtual card wired straight to the driver's channel, when pcscd is not there."""

    def __init__(self, card: SocialSecurityCard) -> None:
        self.card = card
        card.power_on()

    def transmit(self, command: list[int]) -> tuple[list[int], int, int]:
        response = self.card.transmit(bytes(command))
        return list(response[:-2]), response[-2], response[-1]

    def getATR(self) -> list[int]:
        return list(self.card.atr)

    def disconnect(self) -> None:
        self.card.power_off()


@dataclass
class Cardholder:
    card_number: str
    name: str
    id_number: str = field(repr=False)
    chip: SocialSecurityCard = field(repr=False)
    app_token: str = field(repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def channel(self) -> CardChannel:
        return CardChannel(DirectLink(self.chip), "direct")


class VirtualReader:
    """The virtual reader behind pcscd (vpcd): a tap puts the card into it, the agent's own
    `CardTapFlow.pay` finds it through pyscard, then the card comes out. One card at a time."""

    def __init__(self, name: str, port: int = VPCD_PORT) -> None:
        self.name = name
        self.port = port
        self.lock = threading.Lock()

    @classmethod
    def attached(cls) -> VirtualReader | None:
        """vpcd's first reader when pcscd has the driver loaded, else None."""
        readers = [name for name in list_readers() if name.startswith("Virtual PCD")]
        return cls(readers[0]) if readers else None

    def tap(self, flow: CardTapFlow, card: SocialSecurityCard, amount: int) -> TapResult:
        with self.lock:
            link = VpcdLink(card, port=self.port)
            link.insert()
            try:
                flow.readers = [self.name]
                flow.card_timeout = 5.0
                return flow.pay(amount)
            finally:
                link.remove()
                wait_for_removal(self.name, timeout=3)


@dataclass
class Window:
    """One hospital's terminals as the traffic drives them."""

    institution_code: str
    taps: CardTapFlow
    scanner: ScanDesk
    checkout: CheckoutDesk


@dataclass
class Loans:
    api: DisbursementApi
    id_hash_key: bytes
    prefix: str = field(default_factory=lambda: f"DEMO{int(time.time())}")


class Traffic:
    """Runs events at `rate` per second until stopped; prints a line per event."""

    def __init__(
        self,
        hub_url: str,
        his_url: str,
        windows: list[Window],
        cardholders: list[Cardholder],
        loans: Loans,
        *,
        rate: float,
        say: Say,
        seed: int | None = None,
        reader: VirtualReader | None = None,
    ) -> None:
        self.reader = reader  # the first hospital's card reader taps through pcscd
        self.hub_url = hub_url
        self.his = httpx.Client(base_url=his_url, timeout=5.0)
        self.app = httpx.Client(base_url=hub_url, timeout=10.0)
        self.windows = windows
        self.cardholders = cardholders
        self.loans = loans
        self.rate = rate
        self.say = say
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.moved_fen = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sequence = 0
        self._pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="traffic")
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.his.close()
        self.app.close()

    def _run(self) -> None:
        kinds = [kind for kind, _ in MIX]
        weights = [weight for _, weight in MIX]
        while not self._stop.wait(self.rng.expovariate(self.rate)):
            kind = self.rng.choices(kinds, weights)[0]
            self._pool.submit(self._one, kind)

    def _one(self, kind: str) -> None:
        events: dict[str, Callable[[], tuple[str, str, int]]] = {
            "tap": self.card_tap,
            "code": self.payment_code,
            "bill": self.bill_code,
            "checkout": self.checkout,
            "loan": self.disbursement,
        }
        try:
            outcome, detail, fen = events[kind]()
        except (HubUnavailable, httpx.HTTPError) as exc:
            outcome, detail, fen = "unavailable", type(exc).__name__, 0
        except (HubRefused, CheckoutRefused) as exc:
            outcome, detail, fen = "refused", exc.code, 0
        with self._lock:
            self.counts[f"{kind}:{outcome}"] += 1
            self.moved_fen += fen
        if not self._stop.is_set():
            amount = f"¥{fen / 100:>9,.2f}" if fen else " " * 10
            self.say(f"{time.strftime('%H:%M:%S')} {kind:<8} {outcome:<10} {amount}  {detail}")

    # --- the events ---

    def _window(self) -> Window:
        return self.rng.choice(self.windows)

    def _cardholder(self) -> Cardholder:
        return self.rng.choice(self.cardholders)

    def _amount(self, low: int, high: int) -> int:
        return self.rng.randrange(low, high, 10)

    def card_tap(self) -> tuple[str, str, int]:
        """A patient taps the card at a reader; the cashier captures the sale."""
        window, holder = self._window(), self._cardholder()
        amount = self._amount(500, 30_000)  # under the online-PIN threshold: no PIN pad here
        with holder.lock:  # one card, one transaction at a time (its ATC goes up by one)
            via = ""
            if self.reader is not None and window is self.windows[0]:
                tap = self.reader.tap(window.taps, holder.chip, amount)
                via = " (pcscd)"
            else:
                channel = holder.channel()
                try:
                    tap = _tap(window.taps, channel, amount)
                finally:
                    channel.close()
        where = f"{window.institution_code} {tap.pan_masked} {holder.name}{via}"
        if not tap.approved or tap.payment_id is None:
            return "declined", f"{where} {tap.decline_code}", 0
        window.taps.capture(tap.payment_id)
        return "captured", where, amount

    def payment_code(self) -> tuple[str, str, int]:
        """The patient shows the app's payment code; the scanner submits it for the sale."""
        window, holder = self._window(), self._cardholder()
        amount = self._amount(300, 20_000)
        issued = self.app.post("/api/cardholder/payment-codes", headers=_bearer(holder.app_token))
        if issued.status_code != 201:
            return "refused", _code_of(issued), 0
        answer = window.scanner.submit_text(issued.json()["payload"], amount_fen=amount)
        where = f"{window.institution_code} {card_masked(holder.card_number)} {holder.name}"
        if answer.status != "paid":
            return answer.status, f"{where} {answer.code}", 0
        return "paid", where, amount

    def bill_code(self) -> tuple[str, str, int]:
        """The cashier shows a bill code; the patient's app pays it; the terminal sees it paid."""
        window, holder = self._window(), self._cardholder()
        amount = self._amount(1_000, 15_000)
        bill_number = f"B{uuid.uuid4().hex[:12].upper()}"
        bill = window.scanner.create_bill(bill_number, amount)
        paid = self.app.post(
            "/api/cardholder/bills/pay",
            json={"payload": bill["payload"]},
            headers=_bearer(holder.app_token),
        )
        where = f"{window.institution_code} {bill_number} {holder.name}"
        if paid.status_code != 200:
            window.scanner.cancel_bill(bill_number)
            return "refused", f"{where} {_code_of(paid)}", 0
        status = window.scanner.bill_status(bill_number)["status"]
        return status, where, amount if status == "paid" else 0

    def checkout(self) -> tuple[str, str, int]:
        """A hospital bill from the HIS, split with the insurance platform at the combo
        terminal; the patient is identified by the card, the card pays the cash part."""
        window = self._window()
        with self._lock:
            self._sequence += 1
            bill_no = f"MZ{int(time.time()) % 1_000_000:06d}{self._sequence:04d}"
        certno = self.his.get(f"/bills/{bill_no}").json()["patient"]["certno"]
        holder = next(h for h in self.cardholders if h.id_number == certno)
        desk = window.checkout
        view = desk.open(bill_no)
        with holder.lock:
            channel = holder.channel()
            try:
                view = desk.identify_by_card(view.checkout_id, channel)
            finally:
                channel.close()
        if view.state != "pre_settled" or view.pre_settlement is None:
            return view.state, f"{bill_no} {view.failure_code}", 0
        split = view.pre_settlement
        view = desk.pay_from_card(view)
        detail = (
            f"{window.institution_code} {bill_no} {holder.name} fund ¥{split.fund / 100:.2f}"
            f" account ¥{split.account / 100:.2f} card ¥{split.cash / 100:.2f}"
        )
        if view.state != "completed":
            return view.state, f"{detail} {view.failure_code}", 0
        return "completed", detail, split.medfee

    def disbursement(self) -> tuple[str, str, int]:
        """The loan system disburses an approved micro-loan to a cardholder."""
        holder = self._cardholder()
        with self._lock:
            self._sequence += 1
            n = self._sequence
        amount = self._amount(10_000, 300_000)
        order = {
            "external_id": f"{self.loans.prefix}-{n:06d}",
            "loan_ref": f"LN{self.loans.prefix}{n:06d}",
            "amount": amount,
            "card_number": holder.card_number,
            "id_number_hash": id_number_check(holder.id_number, self.loans.id_hash_key),
            "purpose": "micro-loan",
            "value_date": date.today().isoformat(),
        }
        answer = self.loans.api.create(order)
        where = f"{order['loan_ref']} -> {card_masked(holder.card_number)} {holder.name}"
        if answer.status_code != 201:
            return "refused", f"{where} {_code_of(answer)}", 0
        return "credited", where, amount

    def outcomes(self) -> dict[str, int]:
        """Outcomes per event kind so far, e.g. {"tap:captured": 12, "loan:credited": 4}."""
        with self._lock:
            return dict(self.counts)

    def summary(self) -> str:
        with self._lock:
            counts = dict(self.counts)
            moved = self.moved_fen
        done = sum(n for key, n in counts.items() if key.endswith(MONEY_MOVED))
        return f"{sum(counts.values())} events, {done} moved money, ¥{moved / 100:,.2f} in all"


def _tap(flow: CardTapFlow, channel: CardChannel, amount: int) -> TapResult:
    """The agent's tap (`CardTapFlow.pay`) on a channel the district already holds: read the
    card, authorise with the hub, complete the card with the issuer's answer."""
    terminal = TerminalData(amount=amount, merchant_name="")
    try:
        read = read_card(channel, terminal)
    except ReaderError as exc:
        raise HubRefused(0, "card_unreadable", str(exc)) from None
    return flow._authorise(channel, read, terminal, new_transaction_id())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _code_of(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}"
