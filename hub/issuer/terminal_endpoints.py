"""Terminal-facing issuer API: agreeing a PIN key (signed request, see hub/gateway/auth.py)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from devices.protocol.pin_key import PIN_KEY_PATH
from hub.audit import service as audit
from hub.db import Db, Now
from hub.errors import HubError
from hub.gateway.auth import TerminalCaller
from hub.issuer import service
from hub.issuer.keys import IssuerSecrets

router = APIRouter(tags=["terminal"])


class PinKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key: str = Field(min_length=40, max_length=60)  # X25519, raw 32 bytes, base64


class PinKeyOut(BaseModel):
    hub_public_key: str
    version: int


def _secrets(request: Request) -> IssuerSecrets:
    state = request.app.state
    if getattr(state, "issuer_secrets", None) is None:
        state.issuer_secrets = IssuerSecrets.from_settings(state.settings)
    return state.issuer_secrets  # type: ignore[no-any-return]


@router.post(PIN_KEY_PATH)
async def agree_pin_key(request: Request, terminal: TerminalCaller, db: Db, now: Now) -> PinKeyOut:
    """Agree a new PIN key with the terminal (X25519 + HKDF); the key itself never travels."""
    try:
        spec = PinKeyIn.model_validate_json(await request.body())
    except ValidationError:
        raise HubError(
            "invalid_request", "public_key: an X25519 public key is required", 422
        ) from None
    secrets = _secrets(request)

    def work(session: Session) -> PinKeyOut:
        agreed = service.agree_pin_key(session, terminal.terminal_id, spec.public_key, secrets, now)
        audit.record(
            session,
            actor=f"terminal:{terminal.terminal_id}",
            action="terminal.pin_key_agreed",
            subject=f"terminal:{terminal.terminal_id}",
            now=now,
            details={"version": agreed.version},
        )
        return PinKeyOut(hub_public_key=agreed.hub_public_key, version=agreed.version)

    return await run_in_threadpool(db.transaction, work)
