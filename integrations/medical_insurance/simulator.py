"""The medical insurance platform simulator: a real HTTP server, and a control client for it.

Run it with `python -m integrations.medical_insurance.simulator --port 8701 [--config f.yaml]`
or `serve(...)`. Business messages go to the national path; `/admin/...` injects faults and
looks at or bends the books, for tests and demos.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Iterable
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from integrations.medical_insurance.envelope import CALL_PATH
from integrations.medical_insurance.platform import BookedSettlement, Fault, InsurancePlatform
from integrations.medical_insurance.policy import (
    InsuredPerson,
    PlatformConfig,
    demo_config,
    load_config,
)

__all__ = [
    "BookedSettlement",
    "Fault",
    "InsurancePlatform",
    "PlatformConfig",
    "SimulatorControl",
    "create_app",
    "serve",
]

DEFAULT_PORT = 8701


class Amendment(BaseModel):
    fund_fen: int
    account_fen: int
    cash_fen: int


class AccountBalance(BaseModel):
    balance_fen: int = Field(ge=0)


def create_app(platform: InsurancePlatform) -> FastAPI:
    """The simulator's HTTP face over `platform`."""
    app = FastAPI(title="Medical insurance platform (simulated)", docs_url=None, redoc_url=None)
    app.state.platform = platform

    @app.post(CALL_PATH)
    async def call(request: Request) -> JSONResponse:
        outcome = platform.receive(await request.body())
        if outcome.hold_seconds:
            await asyncio.sleep(outcome.hold_seconds)
        return JSONResponse(outcome.answer)

    @app.post("/admin/faults", status_code=204)
    def add_fault(fault: Fault) -> None:
        platform.add_fault(fault)

    @app.delete("/admin/faults", status_code=204)
    def clear_faults() -> None:
        platform.clear_faults()

    @app.post("/admin/sign-ins/expire", status_code=204)
    def expire_sign_ins() -> None:
        platform.expire_sign_ins()

    @app.get("/admin/settlements")
    def settlements() -> list[BookedSettlement]:
        return platform.booked_settlements()

    @app.delete("/admin/settlements/{setl_id}", status_code=204)
    def forget_settlement(setl_id: str) -> None:
        _known(setl_id, {s.setl_id for s in platform.booked_settlements()})
        platform.forget_settlement(setl_id)

    @app.post("/admin/settlements/{setl_id}/amend", status_code=204)
    def amend_settlement(setl_id: str, amendment: Amendment) -> None:
        _known(setl_id, {s.setl_id for s in platform.booked_settlements()})
        platform.amend_settlement(setl_id, **amendment.model_dump())

    @app.get("/admin/persons/{psn_no}")
    def person(psn_no: str) -> InsuredPerson:
        _known(psn_no, platform.persons.keys())
        return platform.person(psn_no)

    @app.put("/admin/persons/{psn_no}/account", status_code=204)
    def set_account(psn_no: str, balance: AccountBalance) -> None:
        _known(psn_no, platform.persons.keys())
        platform.set_account_balance(psn_no, balance.balance_fen)

    return app


def _known(key: str, keys: Iterable[str]) -> None:
    if key not in keys:
        raise HTTPException(status_code=404, detail="not found")


def serve(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    config: PlatformConfig | None = None,
    faults: Iterable[Fault] = (),
) -> None:
    """Serve the simulator until interrupted (the demo config when `config` is None)."""
    app = create_app(InsurancePlatform(config, faults))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


class SimulatorControl:
    """Drives the simulator's admin endpoints from a test or a demo script."""

    def __init__(self, base_url: str, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=5.0, transport=transport)

    def close(self) -> None:
        self._http.close()

    def add_fault(self, fault: Fault) -> None:
        self._http.post("/admin/faults", json=fault.model_dump()).raise_for_status()

    def clear_faults(self) -> None:
        self._http.delete("/admin/faults").raise_for_status()

    def expire_sign_ins(self) -> None:
        self._http.post("/admin/sign-ins/expire").raise_for_status()

    def settlements(self) -> list[BookedSettlement]:
        response = self._http.get("/admin/settlements")
        response.raise_for_status()
        return [BookedSettlement.model_validate(row) for row in response.json()]

    def forget_settlement(self, setl_id: str) -> None:
        self._http.delete(f"/admin/settlements/{setl_id}").raise_for_status()

    def amend_settlement(
        self, setl_id: str, fund_fen: int, account_fen: int, cash_fen: int
    ) -> None:
        amendment = Amendment(fund_fen=fund_fen, account_fen=account_fen, cash_fen=cash_fen)
        path = f"/admin/settlements/{setl_id}/amend"
        self._http.post(path, json=amendment.model_dump()).raise_for_status()

    def person(self, psn_no: str) -> InsuredPerson:
        response = self._http.get(f"/admin/persons/{psn_no}")
        response.raise_for_status()
        return InsuredPerson.model_validate(response.json())

    def set_account_balance(self, psn_no: str, balance_fen: int) -> None:
        body = AccountBalance(balance_fen=balance_fen).model_dump()
        self._http.put(f"/admin/persons/{psn_no}/account", json=body).raise_for_status()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Simulated medical insurance platform.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--config", type=Path, help="PlatformConfig as YAML or JSON")
    args = parser.parse_args(argv)
    config = load_config(args.config) if args.config else demo_config()
    serve(args.host, args.port, resumed(config))


def resumed(config: PlatformConfig) -> PlatformConfig:
    """The config for a new process of the platform: its serials start at the milliseconds of the
    clock (wrapping every 115 days), past every id an earlier run issued, so a hub that kept
    those ids (the demo's database) never meets one again. A config that fixes a start keeps it."""
    if config.serial_start:
        return config
    return config.model_copy(update={"serial_start": time.time_ns() // 1_000_000 % 10**10})


if __name__ == "__main__":
    main()
