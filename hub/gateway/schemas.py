"""What crosses the gateway's ops API and its service boundary. Terminal-facing messages are
in `devices.protocol.messages`, shared with the agent."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from devices.protocol.messages import CommandKind, Serial
from hub.db import MAX_ID

InstitutionCode = Annotated[str, Field(min_length=4, max_length=20, pattern=r"^[A-Z0-9]+$")]
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
ModelName = Annotated[str, Field(min_length=3, max_length=32, pattern=r"^[A-Z][A-Z0-9-]+$")]
KindName = Literal["card_reader", "qr_scanner", "combo"]
PresenceName = Literal["online", "stale", "offline"]
Revision = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._+-]+$")]
PositiveId = Annotated[StrictInt, Field(ge=1, le=MAX_ID)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class UnitIn(_In):
    institution_code: InstitutionCode
    name: Annotated[str, Field(min_length=1, max_length=120)]
    region_code: RegionCode


class UnitOut(_Out):
    id: int
    institution_code: str
    name: str
    region_code: str
    status: str
    created_at: datetime


class UnitSummary(UnitOut):
    """A unit with its terminals counted by presence (registered ones never enrolled apart)."""

    terminals: int = 0
    online: int = 0
    stale: int = 0
    offline: int = 0
    not_enrolled: int = 0


class TerminalIn(_In):
    """Pre-registration of a serial; the kind defaults to the model's kind in the catalog."""

    unit_id: PositiveId
    serial: Serial
    model: ModelName
    kind: KindName | None = None
    hardware_revision: Revision | None = None


class TerminalOut(_Out):
    id: int
    serial: str
    kind: str
    model: str
    hardware_revision: str | None
    unit_id: int
    status: str
    created_at: datetime
    enrolled_at: datetime | None
    firmware_version: str | None
    reported_config_hash: str | None
    desired_config_id: int | None
    presence: str
    last_seen_at: datetime | None
    heartbeat_interval: float
    last_sequence: int | None
    uptime_seconds: int | None
    outbox_depth: int | None
    peripherals: dict[str, Any]


class TerminalFilter(_In):
    """Search terms for terminals; every given field must match, `text` matches serial or unit."""

    unit_id: PositiveId | None = None
    kind: KindName | None = None
    model: str | None = None
    presence: PresenceName | None = None
    status: Literal["registered", "active", "disabled"] | None = None
    text: Annotated[str, Field(max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=500)] = 100
    offset: Annotated[int, Field(ge=0, le=100_000)] = 0


class TerminalPage(BaseModel):
    items: list[TerminalOut]
    total: int


class PresenceEventOut(_Out):
    terminal_id: int
    from_presence: str
    to_presence: str
    at: datetime


class CommandOut(_Out):
    id: str
    terminal_id: int
    kind: str
    state: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    attempts: int
    max_attempts: int
    sent_at: datetime | None
    acknowledged_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any]
    rollout_id: int | None


class KeyOut(_Out):
    fingerprint: str
    status: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_reason: str | None


class TerminalDetail(BaseModel):
    terminal: TerminalOut
    unit: UnitOut
    keys: list[KeyOut]
    presence_events: list[PresenceEventOut]
    commands: list[CommandOut]


class ImportRowResult(BaseModel):
    """One CSV row's fate: `created`, `exists` (same serial already in this unit) or a code."""

    line: int
    serial: str | None
    result: str
    message: str = ""
    terminal_id: int | None = None


class EnrollmentCodeOut(BaseModel):
    """Shown once: only the code's hash is kept."""

    terminal_id: int
    serial: str
    code: str
    expires_at: datetime
    qr_payload: str
    qr_png_base64: str


class CommandIn(_In):
    kind: CommandKind
    config_id: PositiveId | None = Field(None, description="for apply_config")
    ttl_seconds: Annotated[int, Field(ge=10, le=30 * 24 * 3600)] | None = None
    max_attempts: Annotated[int, Field(ge=1, le=50)] | None = None


class ConfigIn(_In):
    document: dict[str, Any]


class ConfigOut(_Out):
    id: int
    model: str
    version: int
    hash: str
    published_at: datetime
    published_by: str


class ConfigDetail(ConfigOut):
    document: dict[str, Any]


class RolloutIn(_In):
    """A rollout of one published config to the terminals of its model that match the filter.

    Group 0 is the canary: the terminals of `canary_unit_id` if given, else the first
    `canary_size`. The rest are split into `group_count` groups.
    """

    name: Annotated[str, Field(min_length=1, max_length=120)]
    config_id: PositiveId
    unit_ids: Annotated[list[PositiveId], Field(max_length=2000)] = []
    region_code: RegionCode | None = None
    terminal_ids: Annotated[list[PositiveId], Field(max_length=10000)] = []
    canary_unit_id: PositiveId | None = None
    canary_size: Annotated[int, Field(ge=1, le=1000)] = 5
    group_count: Annotated[int, Field(ge=1, le=50)] = 3
    success_threshold: Annotated[float, Field(gt=0, le=1)] = 0.95
    error_threshold_pct: Annotated[float, Field(ge=0, le=100)] = 2.0
    error_threshold_count: Annotated[int, Field(ge=1, le=1_000_000)] = 5  # a 32-bit column
    stuck_timeout_seconds: Annotated[int, Field(ge=60, le=7 * 24 * 3600)] = 1800


class RolloutOut(_Out):
    id: int
    name: str
    config_id: int
    model: str
    target_filter: dict[str, Any]
    canary_unit_id: int | None
    canary_size: int
    group_count: int
    success_threshold: float
    error_threshold_pct: float
    error_threshold_count: int
    stuck_timeout_seconds: int
    status: str
    current_group: int
    groups_total: int
    errors_accepted: int
    pause_reason: str | None
    created_at: datetime
    created_by: str
    started_at: datetime | None
    finished_at: datetime | None


class GroupProgress(BaseModel):
    group: int
    canary: bool
    state: Literal["waiting", "active", "done"]
    total: int
    pending: int
    in_progress: int
    succeeded: int
    failed: int
    timed_out: int


class RolloutProgress(BaseModel):
    rollout: RolloutOut
    groups: list[GroupProgress]
    errors: int
    started: int
