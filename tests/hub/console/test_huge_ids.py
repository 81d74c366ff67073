"""Numbers past 64 bits in a console address or form: a refusal page, never a 500.

They reached SQLite (`Python int too large to convert to SQLite INTEGER`) and PostgreSQL's
BIGINT columns from every page that takes an id. The pages are walked from their routers, so a
new page with an integer in its address is covered without being listed here.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any, get_args

import pytest
from fastapi.routing import APIRoute

import hub.console.pages

sqlite = pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # page flows: SQLite is quick
HUGE = [2**63, 2**64]


def _integer(annotation: Any) -> bool:
    return int in (annotation, *get_args(annotation))


def _console_routes() -> list[tuple[str, str, dict[str, str], str]]:
    """(method, address template, stand-ins for the other path parameters, integer parameter)."""
    found = []
    for module in pkgutil.iter_modules(hub.console.pages.__path__):
        router = importlib.import_module(f"hub.console.pages.{module.name}").router
        for route in router.routes:
            assert isinstance(route, APIRoute)
            params = route.dependant.path_params + route.dependant.query_params
            others = {p.name: "pause" for p in route.dependant.path_params}  # e.g. {step}
            for param in params:
                if _integer(param.field_info.annotation):
                    for method in sorted(route.methods):
                        found.append((method, f"/console{route.path}", others, param.name))
    return found


ROUTES = _console_routes()


def test_the_walk_finds_the_pages_with_ids():
    assert len(ROUTES) >= 19, ROUTES  # 19 when this was written: fewer means lost pages
    assert ("GET", "/console/terminals/{terminal_id}") in {(m, a) for m, a, *_ in ROUTES}


@sqlite
@pytest.mark.parametrize("huge", HUGE)
@pytest.mark.parametrize(("method", "address", "others", "name"), ROUTES)
def test_an_id_past_64_bits_is_refused_with_a_page(as_role, method, address, others, name, huge):
    client, csrf = as_role("ada")
    url = address.format(**{**others, name: huge})
    if f"{{{name}}}" not in address:
        url += f"?{name}={huge}"
    if method == "POST":
        answer = client.post(url, data={"csrf_token": csrf, "kind": "reboot"})
    else:
        answer = client.get(url)
    assert answer.status_code in (404, 422), (method, url, answer.status_code)
    assert "text/html" in answer.headers["content-type"]


@sqlite
@pytest.mark.parametrize(
    "address",
    [
        f"/console/ledger?account={2**64}",  # redirects to the account's page
        f"/console/payments?payment={10**20 - 1}",  # likewise
        f"/console/terminals?unit_id={2**64}&offset={2**64}",  # search terms, dropped
    ],
)
def test_numbers_typed_into_search_boxes_never_fail(as_role, address):
    client, _ = as_role("ada")
    answer = client.get(address, follow_redirects=True)
    assert answer.status_code in (200, 404, 422), (address, answer.status_code)


@sqlite
def test_a_config_number_past_64_bits_in_the_command_form_is_refused(as_role, fleet):
    client, csrf = as_role("ada")
    form = {"csrf_token": csrf, "kind": "apply_config", "config_id": str(2**64)}
    answer = client.post(f"/console/terminals/{fleet['terminal']}/commands", data=form)
    assert answer.status_code == 422, answer.text
