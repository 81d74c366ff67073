"""Bad input at every door: schemathesis drives every operation of the hub's OpenAPI document
in process (ASGI), past the ops door with the bearer token. No answer may be a 5xx; answers the
document describes must match it; every refusal is the hub's JSON error. Terminal endpoints
want an Ed25519 signature schemathesis cannot make: they must refuse with 401/403, never 5xx.
Kept small (a few examples per operation) so the whole file runs in well under a minute."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from hub.app import create_app
from hub.config import Settings
from hub.db import Database, utcnow
from hub.demo.seed import seed
from hub.issuer.protection import CardDataKeys
from hub.migrations import upgrade
from tests.conftest import OPS_TOKEN

DEAD = "http://127.0.0.1:9"  # the outside systems are down: refusing fast is part of the test
# Doors that need a credential schemathesis cannot make (a terminal's signature, a loan client's
# HMAC, a cardholder app's token): without it the only right answer is a refusal.
SIGNED_PREFIXES = ("/api/terminal/", "/api/loans/", "/api/cardholder/")
OPEN_PATHS = {"/api/terminal/enrol"}  # the one-time code is the credential, in the body


def _hub_schema() -> schemathesis.Schema:
    """The hub on its own SQLite file, seeded with the demo cards and accounts, workers off.
    Built at import: schemathesis makes one test per operation from it at collection time."""
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='sshub-schemathesis-')) / 'hub.db'}"
    upgrade(url)
    hub_settings = Settings(
        database_url=url,
        ops_api_token=OPS_TOKEN,
        log_level="WARNING",
        insurance_base_url=DEAD,
        his_base_url=DEAD,
        insurance_timeout_seconds=0.5,
        his_timeout_seconds=0.5,
    )
    database = Database(url)
    keys = CardDataKeys.from_settings(hub_settings)
    database.transaction(lambda s: seed(s, keys, utcnow()))
    app = create_app(hub_settings, database=database, run_workers=False)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = _hub_schema()


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_operation_answers_5xx_or_breaks_its_schema(case: schemathesis.Case) -> None:
    response = case.call_and_validate(
        headers={"Authorization": f"Bearer {OPS_TOKEN}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
    if response.status_code >= 400 and response.status_code != 404:
        error = response.json()["error"]  # the hub's one error shape, with a stable code
        assert isinstance(error["code"], str) and error["code"]
    path = case.operation.path
    if path.startswith(SIGNED_PREFIXES) and path not in OPEN_PATHS:
        # Refused: 401/403 at the door (405 for a method schemathesis swapped in, 400/422 for a
        # body FastAPI rejects before the credential is looked at); never served.
        assert response.status_code in (400, 401, 403, 405, 422), (path, response.text)
