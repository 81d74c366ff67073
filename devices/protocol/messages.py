"""Wire messages between a terminal agent and the hub's gateway (JSON over signed HTTPS).

Both sides parse with these models, so a field added here is added for both. Inbound models
forbid unknown fields: a typo in a terminal's message is a clear 422, not silently dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from devices.protocol.firmware import ModelName, TerminalKind

# Where each terminal-facing endpoint lives; the agent and the hub share these paths.
ENROL_PATH = "/api/terminal/enrol"
HEARTBEAT_PATH = "/api/terminal/heartbeat"
CONFIG_PATH = "/api/terminal/config"
EVENTS_PATH = "/api/terminal/events"
ROTATE_KEY_PATH = "/api/terminal/keys/rotate"


def command_reply_path(command_id: str) -> str:
    return f"/api/terminal/commands/{command_id}/reply"


CommandKind = Literal["reboot", "apply_config", "rotate_key", "disable", "collect_diagnostics"]
CommandReplyStatus = Literal["acknowledged", "succeeded", "failed"]
PeripheralState = Literal["ready", "busy", "absent", "error", "unknown"]
Serial = Annotated[str, Field(min_length=4, max_length=40, pattern=r"^[A-Za-z0-9-]+$")]
ConfigHash = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
MessageId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9:._-]+$")]
CommandId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
Version = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._+-]+$")]
InstitutionCode = Annotated[str, Field(min_length=4, max_length=20, pattern=r"^[A-Z0-9]+$")]
Count = Annotated[StrictInt, Field(ge=0, le=2**53)]
Detail = Annotated[dict[str, Any], Field(max_length=64)]


class _Inbound(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnrolmentRequest(_Inbound):
    """Sent unsigned (the terminal has no key yet); the one-time code is the credential."""

    code: Annotated[str, Field(min_length=8, max_length=40)]
    serial: Serial
    model: ModelName
    public_key: Annotated[str, Field(min_length=40, max_length=60)]
    firmware_version: Version
    hardware_revision: Version | None = None


class EnrolmentResponse(BaseModel):
    terminal_id: int
    unit_id: int
    institution_code: str
    kind: TerminalKind
    heartbeat_interval_seconds: float
    hub_time: datetime


class Heartbeat(_Inbound):
    """What a terminal reports every interval."""

    sequence: Count
    firmware_version: Version
    config_hash: ConfigHash | None = None
    heartbeat_interval_seconds: Annotated[float, Field(gt=0, le=3600)]
    peripherals: Annotated[dict[str, PeripheralState], Field(max_length=8)] = {}
    outbox_depth: Count = 0
    uptime_seconds: Count = 0
    # The unit the terminal believes it serves; the hub refuses a mismatch.
    institution_code: InstitutionCode | None = None


class CommandMessage(BaseModel):
    """One instruction for a terminal; `id` is unique so a re-delivery can be dropped."""

    id: CommandId  # it goes into the reply's path: anything else is not the hub's
    # A plain string, not CommandKind: an agent must survive a kind newer than itself (it
    # answers `failed: unsupported`) rather than reject the whole heartbeat reply.
    kind: str
    issued_at: datetime
    expires_at: datetime
    payload: dict[str, Any] = {}


class DesiredConfig(BaseModel):
    config_id: int
    version: int
    hash: str


class HeartbeatReply(BaseModel):
    # Bounded: the agent sleeps this long, and NaN, a negative or a year would stop its loop.
    next_interval_seconds: Annotated[float, Field(gt=0, le=86_400)]
    commands: list[CommandMessage] = []
    desired_config: DesiredConfig | None = None
    hub_time: datetime


class CommandReply(_Inbound):
    """A terminal's answer to a command: first `acknowledged`, then the outcome."""

    message_id: MessageId
    status: CommandReplyStatus
    detail: Detail = {}


class CommandReplyReceipt(BaseModel):
    command_id: str
    state: str
    applied: bool


class TerminalEvent(_Inbound):
    """Something the terminal must tell the hub even if it happened while offline."""

    message_id: MessageId
    kind: Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[a-z][a-z0-9_.]*$")]
    occurred_at: datetime
    detail: Detail = {}


class EventReceipt(BaseModel):
    message_id: str
    result: Literal["ok", "exists"]


class KeyRotation(_Inbound):
    """Signed with the current key; the hub revokes it and activates `public_key`."""

    command_id: CommandId | None = None
    public_key: Annotated[str, Field(min_length=40, max_length=60)]


class KeyRotationReceipt(BaseModel):
    terminal_id: int
    key_fingerprint: str


class ConfigEnvelope(BaseModel):
    """A published configuration as delivered to a terminal (GET config, apply_config)."""

    config_id: int
    version: int
    hash: str
    document: dict[str, Any]
