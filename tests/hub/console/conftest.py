"""Console fixtures: cheap password hashing, three operators, and a signed-in browser."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.config import Settings
from hub.console import service
from hub.console.models import Role
from hub.db import Database
from tests.hub.console.seeding import paid_card

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def settings(db: Database) -> Settings:
    # The lowest argon2 cost keeps the suite fast; production uses the defaults.
    return Settings(
        database_url=db.url,
        ops_api_token="test-ops-token",
        console_argon2_time_cost=1,
        console_argon2_memory_kib=64,
    )


@pytest.fixture
def policy(settings: Settings) -> service.SessionPolicy:
    return service.SessionPolicy.from_settings(settings)


@pytest.fixture
def operators(db: Database, policy: service.SessionPolicy, clock) -> dict[str, str]:
    """viewer "vera", operator "oscar", admin "ada"; all with PASSWORD."""
    people = {"vera": Role.VIEWER, "oscar": Role.OPERATOR, "ada": Role.ADMIN}
    for username, role in people.items():
        db.transaction(
            lambda s, u=username, r=role: service.create_operator(
                s,
                username=u,
                display_name=u.capitalize(),
                password=PASSWORD,
                role=r,
                policy=policy,
                actor="system:test",
                now=clock(),
            )
        )
    return {u: r.value for u, r in people.items()}


@pytest.fixture
def browser(settings: Settings, db: Database, clock) -> Iterator[Callable[[], TestClient]]:
    """Makes independent browsers (own cookie jars) on one app."""
    app = create_app(settings, database=db, clock=clock, run_workers=False)
    made: list[TestClient] = []

    def make() -> TestClient:
        made.append(TestClient(app, follow_redirects=False))
        made[-1].__enter__()
        return made[-1]

    yield make
    for c in made:
        c.__exit__(None, None, None)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found[1]


def sign_in(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token for later posts."""
    token = csrf_of(client.get("/console/login").text)
    answer = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": token},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/console/").text)


@pytest.fixture
def as_role(browser, operators) -> Callable[[str], tuple[TestClient, str]]:
    """A browser signed in as vera, oscar or ada, with its CSRF token."""

    def signed(username: str) -> tuple[TestClient, str]:
        client = browser()
        return client, sign_in(client, username)

    return signed


FIRMWARE = Path(__file__).parents[3] / "firmware_configs"


@pytest.fixture
def fleet(db: Database, clock) -> dict[str, int]:
    """A unit with one registered terminal, a published config and a draft rollout of it."""
    from hub.gateway import service as gateway
    from hub.gateway.schemas import RolloutIn, TerminalIn, UnitIn

    def build(s) -> dict[str, int]:
        now = clock()
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
        terminal = gateway.preregister_terminal(
            s,
            TerminalIn(unit_id=unit.id, serial="CR300-0001", model="SSC-CR300"),
            actor="system:test",
            now=now,
        )
        document = yaml.safe_load((FIRMWARE / "SSC-CR300" / "1.yaml").read_text())
        config = gateway.publish_config(s, document, actor="system:test", now=now)
        rollout = gateway.create_rollout(
            s, RolloutIn(name="CR300 v1", config_id=config.id), actor="system:test", now=now
        )
        return {
            "unit": unit.id,
            "terminal": terminal.id,
            "config": config.id,
            "rollout": rollout.id,
        }

    return db.transaction(build)


@pytest.fixture
def payment(db: Database, settings: Settings, fleet, clock) -> int:
    """A captured card payment of 123.45 CNY at the fleet's unit; returns its id."""
    from hub.gateway import service as gateway
    from hub.issuer.protection import CardDataKeys
    from hub.payments import service as payments

    keys = CardDataKeys.from_settings(settings)

    def pay(s) -> int:
        unit = gateway.get_unit(s, fleet["unit"])
        caller = payments.Caller.terminal(fleet["terminal"], unit.id, unit.institution_code)
        return paid_card(s, keys, caller, clock(), "test")

    return db.transaction(pay)


@pytest.fixture
def disbursement(db: Database, settings: Settings, payment, browser, clock) -> str:
    """A loan of 3,000.00 CNY credited to the payment fixture's card through the loan
    system's own signed API; returns its external id."""
    from hub.disbursements import clients
    from hub.disbursements import service as disbursements
    from hub.issuer.protection import CardDataKeys
    from integrations.loans.client import ClientKey, DisbursementApi, id_number_check

    rules = disbursements.Rules.from_settings(settings)

    def open_programme(s):
        now = clock()
        disbursements.fund_programme(s, "test:fund", 1_000_000_00, now)
        return clients.create_client(
            s, "micro-loans", "http://127.0.0.1:9/callbacks", rules, now, actor="system:test"
        )

    issued = db.transaction(open_programme)
    api = DisbursementApi(
        browser(), ClientKey(issued.key_id, issued.secret), clock=lambda: clock().timestamp()
    )
    keys = CardDataKeys.from_settings(settings)
    answer = api.create(
        {
            "external_id": "L-0001",
            "loan_ref": "LN-2026-0001",
            "amount": 3_000_00,
            "card_number": "K10000001",
            "id_number_hash": id_number_check("370102198001011234", keys.id_hash),
            "purpose": "spring planting",
            "value_date": rules.business_day(clock()).isoformat(),
        }
    )
    assert answer.status_code == 201, answer.text
    return "L-0001"
