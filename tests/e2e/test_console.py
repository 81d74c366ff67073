"""The ops console in a real headless Chromium against a real hub served by uvicorn.

The hub runs with its background jobs on a loopback port over a fresh SQLite file; the terminal
agent runs as its own process (`python -m devices.agent.cli`) and enrols from the QR code the
console shows. Screenshots of the main pages go to test-artifacts/console/.
"""

from __future__ import annotations

import base64
import io
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
import yaml

from hub.app import create_app
from hub.config import Settings
from hub.console import service as console
from hub.console.models import Role
from hub.db import Database, utcnow
from hub.migrations import upgrade
from tests.hub.console.seeding import PAN, paid_card

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery"
PEOPLE = {
    "ada": ("Ada Li", Role.ADMIN),
    "oscar": ("Oscar Wang", Role.OPERATOR),
    "vera": ("Vera Zhang", Role.VIEWER),
}
SERIAL = "CR300-0001"


@dataclass
class Hub:
    url: str
    db: Database
    settings: Settings


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(db: Database, settings: Settings, url: str) -> None:
    """Operators, a unit with one shipped reader, and two configs that point at this hub."""
    from hub.gateway import service as gateway
    from hub.gateway.schemas import TerminalIn, UnitIn

    policy = console.SessionPolicy.from_settings(settings)

    def seed(s) -> None:
        now = utcnow()
        for username, (name, role) in PEOPLE.items():
            console.create_operator(
                s,
                username=username,
                display_name=name,
                password=PASSWORD,
                role=role,
                policy=policy,
                actor="system:test",
                now=now,
            )
        unit = gateway.create_unit(
            s,
            UnitIn(
                institution_code="H37010200001",
                name="Lixia People's Hospital",
                region_code="370102",
            ),
            actor="system:test",
            now=now,
        )
        gateway.create_unit(
            s,
            UnitIn(
                institution_code="P37010200007", name="Daming Lake Pharmacy", region_code="370102"
            ),
            actor="system:test",
            now=now,
        )
        gateway.preregister_terminal(
            s,
            TerminalIn(unit_id=unit.id, serial=SERIAL, model="SSC-CR300"),
            actor="system:test",
            now=now,
            interval=settings.gateway_heartbeat_interval_seconds,
        )
        for version in (1, 2):
            path = ROOT / "firmware_configs" / "SSC-CR300" / f"{version}.yaml"
            document = yaml.safe_load(path.read_text())
            document.update(hub_url=url, heartbeat_interval_seconds=1)
            gateway.publish_config(s, document, actor="system:test", now=now)

        _seed_payment(s, settings, unit, now)

    db.transaction(seed)
    db.transaction(lambda s: _seed_programme(s, utcnow()))
    # Its own transaction, as a loan system's order is: the funding account is read fresh.
    db.transaction(lambda s: _seed_disbursement(s, settings, utcnow()))


def _seed_payment(s, settings: Settings, unit, now) -> None:
    """A card with money on it and one captured payment of 123.45 CNY at the unit."""
    from hub.issuer.protection import CardDataKeys
    from hub.payments import service as payments

    caller = payments.Caller(
        actor="system:test", unit_id=unit.id, institution_code=unit.institution_code
    )
    paid_card(s, CardDataKeys.from_settings(settings), caller, now, "e2e")


def _seed_programme(s, now) -> None:
    """The loan programme's funding account with 1,000,000.00 CNY."""
    from hub.disbursements import service as disbursements

    disbursements.fund_programme(s, "e2e:fund", 1_000_000_00, now)


def _seed_disbursement(s, settings: Settings, now) -> None:
    """A loan of 3,000.00 CNY credited to the seeded card, through the disbursement service."""
    from hub.disbursements import clients, posting
    from hub.disbursements import service as disbursements
    from hub.disbursements.schemas import DisbursementIn
    from hub.issuer.protection import CardDataKeys
    from integrations.loans.client import id_number_check

    rules = disbursements.Rules.from_settings(settings)
    # Nothing listens on the discard port: the callback stays pending, which is all we need.
    issued = clients.create_client(
        s, "micro-loans", "http://127.0.0.1:9/callbacks", rules, now, actor="system:test"
    )
    client = clients.get_client(s, issued.client)
    order = DisbursementIn(
        external_id="L-0001",
        loan_ref="LN-2026-0001",
        amount=3_000_00,
        card_number="K10000001",
        id_number_hash=id_number_check(
            "370102198001011234", CardDataKeys.from_settings(settings).id_hash
        ),
        purpose="spring planting",
        value_date=rules.business_day(now),
    )
    disbursements.accept(s, client.id, order, rules, now)
    posting.settle(s, ["L-0001"], rules, now)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'hub.db'}"
    upgrade(database_url)
    settings = Settings(
        database_url=database_url,
        gateway_public_url=url,
        gateway_heartbeat_interval_seconds=1.0,
        gateway_presence_flush_seconds=0.3,
        gateway_presence_sweep_seconds=0.5,
        gateway_change_poll_seconds=0.3,
        gateway_rollout_seconds=0.5,
        console_argon2_time_cost=1,
        console_argon2_memory_kib=64,
        log_level="WARNING",
    )
    db = Database(database_url)
    _seed(db, settings, url)
    app = create_app(settings, database=db, run_workers=True)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "the hub did not start"
        time.sleep(0.05)
    yield Hub(url, db, settings)
    server.should_exit = True
    thread.join(10)
    db.dispose()


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed at /usr/bin/chromium")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page_as(chromium, hub):
    """A fresh browser context signed in as the given operator."""
    contexts = []

    def open_as(username: str):
        context = chromium.new_context(
            viewport={"width": 1400, "height": 900}, timezone_id="Asia/Shanghai"
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        page.goto(f"{hub.url}/console/login")
        page.fill("#f-username", username)
        page.fill("#f-password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{hub.url}/console/")
        return page

    yield open_as
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _decode_qr(data_url: str) -> str:
    """Read the enrolment QR image as a technician's scanner would."""
    import zxingcpp
    from PIL import Image

    png = base64.b64decode(data_url.split(",", 1)[1])
    (found,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    return str(found.text)


def _agent(state: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "devices.agent.cli", *args, "--state-dir", str(state)]


# The tests run in file order: the terminal enrolled here is the one the rollout updates.


def test_sign_in_page_refuses_a_wrong_password(chromium, hub):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{hub.url}/console/")
    assert "/console/login" in page.url
    shot(page, "01-sign-in")
    page.fill("#f-username", "oscar")
    page.fill("#f-password", "not the password")
    page.click("button[type=submit]")
    assert "not right" in page.inner_text("[role=alert]")
    context.close()


def test_dashboard_shows_the_fleet_and_the_operator(page_as):
    page = page_as("oscar")
    assert page.inner_text(".who .name") == "Oscar Wang"
    assert page.inner_text(".who .role") == "OPERATOR"
    assert "Lixia People's Hospital" in page.inner_text("main")
    shot(page, "02-dashboard")


def test_enrol_a_terminal_and_watch_it_come_online(page_as, hub, tmp_path):
    page = page_as("oscar")
    page.click("nav >> text=Terminals")
    page.click(f"text={SERIAL}")
    assert page.inner_text("#presence") == "Not enrolled"
    page.click("text=Enrol: show code and QR")
    code = page.inner_text("#enrol-code")
    qr = page.get_attribute("img.qr", "src")
    assert page.evaluate("document.querySelector('img.qr').naturalWidth") > 0
    shot(page, "03-enrol-code")
    payload = _decode_qr(qr)
    assert f"code={code}" in payload and f"serial={SERIAL}" in payload

    state = tmp_path / "agent"
    enrolled = subprocess.run(
        _agent(state, "enrol", "--qr", payload, "--model", "SSC-CR300"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert enrolled.returncode == 0, enrolled.stderr
    agent = subprocess.Popen(
        _agent(state, "run", "--duration", "60"),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    hub.agent = agent  # type: ignore[attr-defined]  # kept running for the rollout test
    # No reload: the page's live region re-reads the terminal until it turns online.
    page.wait_for_selector("#presence .pill-good", timeout=20_000)
    assert page.inner_text("#presence") == "Online"
    page.click("text=Done: watch the terminal come online")
    page.wait_for_selector("svg.chart rect[fill='#2e9d5b']")
    shot(page, "04-terminal-online")


def test_start_a_rollout_and_see_its_progress(page_as, hub):
    page = page_as("oscar")
    page.click("nav >> text=Rollouts")
    page.fill("#f-name", "CR300 v2 quiet beep")
    page.select_option("#f-config_id", label="SSC-CR300 v2")
    page.select_option("#f-canary_unit_id", label="Lixia People's Hospital")
    page.click("text=Create rollout")
    assert page.inner_text("#rollout-status") == "Draft"
    page.click("text=Start rollout")
    assert "started" in page.inner_text(".note")
    page.wait_for_selector("#rollout-status .pill-good", timeout=30_000)  # completed
    assert page.inner_text("#rollout-status") == "Completed"
    assert "1" in page.inner_text("#rollout-groups tbody tr:first-child td:nth-child(4)")
    shot(page, "05-rollout-completed")
    hub.agent.terminate()  # type: ignore[attr-defined]
    hub.agent.wait(10)  # type: ignore[attr-defined]


def test_viewer_sees_no_action_buttons_and_is_refused_anyway(page_as, hub):
    page = page_as("vera")
    page.goto(f"{hub.url}/console/terminals/1")
    assert page.locator("text=Enrol: show code and QR").count() == 0
    assert page.locator("text=Disable terminal").count() == 0
    # A forged post with the viewer's own session and CSRF token is refused by the server.
    token = page.evaluate("document.querySelector('input[name=csrf_token]').value")
    answer = page.request.post(f"{hub.url}/console/terminals/1/disable", form={"csrf_token": token})
    assert answer.status == 403
    shot(page, "06-terminal-as-viewer")


def test_operator_refunds_a_payment(page_as, hub):
    page = page_as("oscar")
    page.click("nav >> text=Payments")
    page.fill("#f-card", "7510")
    page.click("main button:has-text('Search')")
    shot(page, "08-payments-search")
    page.click("a[href='/console/payments/1']")
    assert "623170******7510" in page.inner_text("main")
    assert PAN not in page.content()
    page.fill("#f-amount", "23.45")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#refund-button")
    assert "Refund of 23.45 CNY sent to the card." in page.inner_text(".note")
    assert page.inner_text("#payment-status") == "Captured"
    assert "100.00" in page.inner_text("#refund")  # left to refund
    shot(page, "09-payment-refunded")


def test_the_same_refund_button_is_refused_for_a_viewer(page_as, hub):
    page = page_as("vera")
    page.goto(f"{hub.url}/console/payments/1")
    assert page.is_disabled("#refund-button")
    shot(page, "10-payment-as-viewer")
    # Forge it: enable the button in the page and press it; the server still says no.
    page.evaluate(
        "document.querySelectorAll('#refund [disabled]').forEach(e => e.disabled = false)"
    )
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#refund-button")
    assert "HTTP 403" in page.inner_text("main")
    assert "Nothing was changed" in page.inner_text("main")
    shot(page, "11-refund-refused")


def test_payments_are_searched_by_channel_and_day(page_as, hub):
    page = page_as("vera")
    page.click("nav >> text=Payments")
    page.select_option("#f-channel", label="Payment code")  # submits itself
    page.wait_for_selector("text=No payments match")
    page.goto(f"{hub.url}/console/payments")
    page.select_option("#f-channel", label="Card tap")
    page.wait_for_selector("a[href='/console/payments/1']")
    assert "Card tap" in page.inner_text("#payments")
    shot(page, "11b-payments-card-taps")


def test_an_operator_may_not_undo_a_disbursement_an_admin_may(page_as, hub):
    page = page_as("oscar")
    page.click("nav >> text=Disbursements")
    page.click("a[href='/console/disbursements/L-0001']")
    assert page.is_disabled("#undo-button")
    assert "needs the admin role" in page.inner_text("#undo")
    page = page_as("ada")
    page.goto(f"{hub.url}/console/disbursements/L-0001")
    assert page.inner_text("#disbursement-status") == "Credited"
    page.fill("#f-reason", "borrower cancelled in the cooling-off period")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#undo-button")
    assert "Undone: 3,000.00 CNY back from the card" in page.inner_text(".note")
    assert page.inner_text("#disbursement-status") == "Undone"
    assert "disb-undo:L-0001" in page.inner_text("main")
    shot(page, "11c-disbursement-undone")


def test_every_page_in_the_menu_renders_cleanly_offline(page_as, hub):
    """Walk the menu as an admin: every page loads, nothing breaks the content policy, and
    nothing is fetched from anywhere but the hub."""
    page = page_as("ada")
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith(hub.url) or r.url.startswith("data:")
            else problems.append(f"outside request {r.url}")
        ),
    )
    labels = page.locator("nav.nav a").all_inner_texts()
    assert {
        "Dashboard",
        "Units",
        "Terminals",
        "Rollouts",
        "Payments",
        "Disbursements",
        "Checkouts",
        "Ledger",
        "Audit log",
        "Operators",
    } <= set(labels)
    for number, label in enumerate(labels, start=12):
        page.click(f"nav.nav >> text={label}")
        page.wait_for_load_state("load")
        assert page.inner_text("h1") and "HTTP" not in page.inner_text("main"), label
        shot(page, f"{number}-{label.lower().replace(' ', '-')}")
    page.goto(f"{hub.url}/console/ledger/accounts/1")
    shot(page, "30-ledger-account")
    assert problems == []


def test_audit_log_shows_the_story_and_an_intact_chain(page_as):
    page = page_as("ada")
    page.click("nav >> text=Audit log")
    page.click("text=Verify hash chain")
    assert "Chain intact." in page.inner_text("#chain-report")
    text = page.inner_text("main")
    for action in (
        "terminal.enrollment_code_created",
        "rollout",
        "payment.refunded",
        "disbursement.undone",
        "console.refused",
    ):
        assert action in text
    shot(page, "07-audit")
