"""The living demo district behind `make run`: the hub, the outside systems, and a county's
hospitals paying and being paid, on SQLite, with nothing else to set up.

    district = District(settings, DistrictOptions(units=3, rate=2.0))
    district.start()          # migrate, seed, simulators, hub, agents, traffic
    ...
    district.stop()           # traffic, agents, hub, then the simulators' processes

The district is a demo launcher, so (like the command line) it may start the simulators and
drive the terminal agents; nothing else in hub/ may (tests/test_import_rules.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import IO

import httpx
import uvicorn
from sqlalchemy.orm import Session

from devices.agent.agent import TerminalAgent
from devices.agent.card_tap import CardTapFlow
from devices.agent.checkout import CheckoutDesk
from devices.agent.hub_client import HubRefused, HubUnavailable
from devices.agent.scanning import ScanDesk
from devices.emulators.sscard.card import SocialSecurityCard
from devices.emulators.sscard.profile import profile_from_dict
from hub.config import Settings
from hub.console.service import SessionPolicy
from hub.db import Database, utcnow
from hub.demo import seed as demo
from hub.demo.traffic import Cardholder, Loans, Traffic, VirtualReader, Window
from hub.disbursements.schemas import IssuedKey
from hub.disbursements.service import Rules
from hub.issuer.keys import IssuerSecrets
from hub.issuer.protection import CardDataKeys
from hub.ledger.service import check_invariants
from integrations.loans.client import ClientKey, DisbursementApi

Say = Callable[[str], None]
Profiles = dict[str, dict[str, object]]
Seeded = tuple[IssuedKey, Profiles, dict[str, str], list[demo.DemoUnit]]
SIMULATORS = {
    "insurance": "integrations.medical_insurance.simulator",
    "his": "integrations.his.simulator",
    "loans": "integrations.loans.simulator",
}


@dataclass
class DistrictOptions:
    units: int = 3
    rate: float = 2.0  # events per second, over the whole district
    state_dir: Path = Path("var/demo")
    hub_port: int = 8000
    insurance_port: int = 8701
    his_port: int = 8702
    loans_port: int = 8703
    heartbeat_seconds: float = 5.0
    summary_seconds: float = 10.0
    quiet: bool = False  # no line per event, only the summaries
    seed: int | None = None
    pcsc: bool = False  # tap the first hospital's cards through pcscd + vpcd when it runs


class DistrictFailed(Exception):
    """A part of the district did not start or stopped on its own."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise DistrictFailed(f"nothing answers on 127.0.0.1:{port}")


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]


@dataclass
class District:
    settings: Settings
    options: DistrictOptions = field(default_factory=DistrictOptions)
    say: Say = print
    children: list[_Child] = field(default_factory=list)
    agents: list[TerminalAgent] = field(default_factory=list)
    traffic: Traffic | None = None
    _server: uvicorn.Server | None = None
    _hub_thread: threading.Thread = field(default_factory=threading.Thread)
    _threads: list[threading.Thread] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.db = Database(self.settings.database_url)

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.options.hub_port}"

    def _url(self, port: int) -> str:
        return f"http://127.0.0.1:{port}"

    # --- start ---

    def start(self) -> None:
        options = self.options
        self.settings = self.settings.model_copy(
            update={
                "insurance_base_url": self._url(options.insurance_port),
                "his_base_url": self._url(options.his_port),
                "gateway_public_url": self.hub_url,
                "gateway_heartbeat_interval_seconds": options.heartbeat_seconds,
            }
        )
        _upgrade(self.settings)
        loan_key, profiles, tokens, units = self._seed()
        self._start_simulators(loan_key)
        self._serve_hub()
        windows = self._enrol_agents(units)
        cardholders = [
            Cardholder(
                number,
                name,
                id_number,
                SocialSecurityCard(profile_from_dict(profiles[number])),
                tokens[number],
            )
            for number, _chip, name, id_number, _pan, _balance in demo.DEMO_CARDS
        ]
        loans = Loans(
            DisbursementApi(httpx.Client(base_url=self.hub_url, timeout=10.0), loan_key),
            self.settings.id_hash_key.get_secret_value().encode(),
        )
        self.traffic = Traffic(
            self.hub_url,
            self._url(options.his_port),
            windows,
            cardholders,
            loans,
            rate=options.rate,
            say=(lambda _line: None) if options.quiet else self.say,
            seed=options.seed,
            reader=VirtualReader.attached() if options.pcsc else None,
        )
        self._banner(units)
        self.traffic.start()
        self._thread("summary", self._summaries)

    def _seed(self) -> tuple[ClientKey, Profiles, dict[str, str], list[demo.DemoUnit]]:
        settings, now = self.settings, utcnow()
        secrets = IssuerSecrets.from_settings(settings)
        card_keys = CardDataKeys.from_settings(settings)
        policy = SessionPolicy.from_settings(settings)
        rules = Rules.from_settings(settings)
        callback = f"{self._url(self.options.loans_port)}/callbacks"

        def work(s: Session) -> Seeded:
            demo.seed(s, card_keys, now)
            demo.seed_issuer_key(s, secrets, now)
            demo.seed_operator(s, policy, now)
            issued = demo.seed_loan_client(s, rules, callback, now)
            units = demo.seed_units(s, self.options.units, now)
            return issued, demo.card_profiles(s, secrets), demo.cardholder_tokens(s, now), units

        issued, profiles, tokens, units = self.db.transaction(work)
        self.say(f"seeded: {len(units)} units, {len(profiles)} funded cards, issuer key, operator")
        return ClientKey(issued.key_id, issued.secret), profiles, tokens, units

    def _start_simulators(self, loan_key: ClientKey) -> None:
        options = self.options
        logs = options.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        commands = {
            "insurance": ["--port", str(options.insurance_port)],
            "his": ["--port", str(options.his_port), "--seed", "7"],
            "loans": [
                "serve",
                "--key-id",
                loan_key.key_id,
                "--listen",
                f"127.0.0.1:{options.loans_port}",
            ],
        }
        # The secret goes by environment, not on the command line where `ps` would show it.
        env = os.environ | {"LOANS_SIM_SECRET": loan_key.secret, "PYTHONUNBUFFERED": "1"}
        for name, args in commands.items():
            log = (logs / f"{name}.log").open("ab")
            # A session of its own: Ctrl-C reaches the district only, which stops the children.
            process = subprocess.Popen(
                [sys.executable, "-m", SIMULATORS[name], *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            self.children.append(_Child(name, process, log))
        for port in (options.insurance_port, options.his_port, options.loans_port):
            _wait_for_port(port)
        self.say("simulators up: insurance platform, HIS, loan system")

    def _serve_hub(self) -> None:
        from hub.app import create_app

        app = create_app(self.settings, database=self.db)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.options.hub_port,
            log_level="warning",
            access_log=False,
        )
        self._server = uvicorn.Server(config)
        self._hub_thread = threading.Thread(target=self._server.run, name="hub", daemon=True)
        self._hub_thread.start()
        _wait_for_port(self.options.hub_port)

    def _enrol_agents(self, units: list[demo.DemoUnit]) -> list[Window]:
        """Each terminal enrols with a fresh one-time code, as a technician would."""
        agents_dir = self.options.state_dir / "agents"
        shutil.rmtree(agents_dir, ignore_errors=True)
        windows = []
        for unit in units:
            by_kind: dict[str, TerminalAgent] = {}
            for terminal in unit.terminals:
                agent = self._enrol(terminal, agents_dir / terminal.serial)
                by_kind[terminal.kind] = agent
                self._thread(f"agent {terminal.serial}", partial(self._heartbeats, agent))
            threshold = self.settings.card_pin_threshold_fen
            windows.append(_window(unit.institution_code, by_kind, threshold))
        self.say(f"enrolled {len(self.agents)} terminal agents with one-time codes")
        return windows

    def _enrol(self, terminal: demo.DemoTerminal, state_dir: Path) -> TerminalAgent:
        code = self.db.transaction(
            partial(
                demo.enrollment_code, terminal_id=terminal.id, hub_url=self.hub_url, now=utcnow()
            )
        )
        agent = TerminalAgent(state_dir)
        agent.enrol(self.hub_url, code, terminal.serial, terminal.model)
        self.agents.append(agent)
        return agent

    def _heartbeats(self, agent: TerminalAgent) -> None:
        while not self._stop.is_set():
            try:
                wait = agent.beat().next_interval_seconds
            except (HubUnavailable, HubRefused):
                wait = self.options.heartbeat_seconds
            self._stop.wait(wait)

    def _summaries(self) -> None:
        while not self._stop.wait(self.options.summary_seconds):
            assert self.traffic is not None
            self.say(f"-- {self.traffic.summary()}")

    def _thread(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _banner(self, units: list[demo.DemoUnit]) -> None:
        say = self.say
        say("")
        say(f"SSC Hub demo district: {len(units)} hospitals, {len(self.agents)} terminals")
        say(f"  console   {self.hub_url}/console")
        say(f"  user      {demo.DEMO_OPERATOR}")
        say(f"  password  {demo.DEMO_OPERATOR_PASSWORD}")
        say(f"  traffic   {self.options.rate:g} events/s: taps, payment codes, bill codes,")
        say("            checkouts with the insurance split, loan disbursements")
        assert self.traffic is not None
        reader = self.traffic.reader
        say("  cards     virtual social security cards (devices/emulators/sscard)")
        if reader is not None:
            say(f"            {units[0].institution_code}'s taps: pcscd, reader '{reader.name}'")
            say("            the other hospitals: wired straight to the reader driver")
        else:
            say("            pcscd with vpcd is not running: wired straight to the reader")
            say("            driver, no PC/SC (`scripts/setup.sh` starts pcscd)")
        say("  Ctrl-C stops everything")
        say("")

    # --- run and stop ---

    def run(self) -> int:
        """Start, run until Ctrl-C or SIGTERM (`docker stop`), stop everything; exit status."""
        # Set here, not inherited: a shell may start us with SIGINT ignored (`cmd &`).
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            self.start()
            while True:
                time.sleep(0.5)
                self._check_children()
        except KeyboardInterrupt:
            self.say("")
            self.say("stopping the district ...")
            return 0
        except DistrictFailed as failure:
            self.say(f"the district cannot go on: {failure}")
            return 1
        finally:
            self.stop()

    def _check_children(self) -> None:
        for child in self.children:
            if child.process.poll() is not None:
                log = self.options.state_dir / "logs" / f"{child.name}.log"
                raise DistrictFailed(f"the {child.name} simulator stopped (see {log})")

    def stop(self) -> None:
        """Traffic first, then agents and the hub, then the simulators; idempotent."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self.traffic is not None:
            self.traffic.stop()
            self.traffic.loans.api.http.close()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._server is not None:
            self._server.should_exit = True
            self._hub_thread.join(timeout=10)
        self._stop_children()
        if self.traffic is not None:
            self.say(f"stopped: {self.traffic.summary()}")
        self.db.dispose()

    def _stop_children(self) -> None:
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
        for child in self.children:
            try:
                child.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            child.log.close()

    def ledger_problems(self) -> list[str]:
        with self.db.session() as session:
            return check_invariants(session)


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _window(institution_code: str, agents: dict[str, TerminalAgent], threshold: int) -> Window:
    combo, scanner, reader = agents["combo"], agents["qr_scanner"], agents["card_reader"]
    assert combo.client and scanner.client and reader.client
    taps = CardTapFlow(
        reader.client,
        reader.outbox,
        reader.state_dir,
        pin_threshold_fen=threshold,
    )
    combo_taps = CardTapFlow(
        combo.client, combo.outbox, combo.state_dir, pin_threshold_fen=threshold
    )
    desk = CheckoutDesk(combo.client, card_taps=combo_taps, poll_seconds=0.2, wait_seconds=20)
    return Window(institution_code, taps, ScanDesk(scanner.client, scanner.outbox), desk)


def _upgrade(settings: Settings) -> None:
    from hub.migrations import upgrade

    if settings.is_sqlite:
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    upgrade(settings.database_url)
