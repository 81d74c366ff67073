"""A terminal's configuration document, as the agent loads it, and the hash that names it.

The hub validates a document against `firmware_configs/schema.json` before publishing it; the
agent loads the same document into `TerminalConfig` before switching to it. Both sides name a
document by `config_hash`, so "the terminal reports the new hash" means "it runs this document".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

TerminalKind = Literal["card_reader", "qr_scanner", "combo"]
LogLevel = Literal["debug", "info", "warning", "error"]
Symbology = Literal["qr", "data_matrix", "pdf417", "code128", "ean13", "aztec"]
Colour = Literal["green", "red", "amber", "blue", "white", "off"]
ModelName = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]{2,31}$")]


def config_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a document: sorted keys, no spaces, UTF-8."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OutboxLimits(_Strict):
    max_messages: Annotated[StrictInt, Field(ge=100, le=100_000)]
    max_age_hours: Annotated[StrictInt, Field(ge=1, le=720)]
    drain_batch: Annotated[StrictInt, Field(ge=1, le=500)]


class Beep(_Strict):
    enabled: StrictBool
    volume_percent: Annotated[StrictInt, Field(ge=0, le=100)]
    duration_ms: Annotated[StrictInt, Field(ge=20, le=2000)]


class Light(_Strict):
    enabled: StrictBool
    brightness_percent: Annotated[StrictInt, Field(ge=0, le=100)]
    success_colour: Colour
    error_colour: Colour


class Feedback(_Strict):
    beep: Beep
    light: Light


class CardReaderSettings(_Strict):
    interfaces: Annotated[
        list[Literal["contact", "contactless"]], Field(min_length=1, max_length=2)
    ]
    pcsc_reader_pattern: Annotated[str, Field(min_length=1, max_length=64)]
    card_poll_interval_ms: Annotated[StrictInt, Field(ge=50, le=5000)]
    card_read_timeout_ms: Annotated[StrictInt, Field(ge=500, le=60_000)]
    # Online PIN is asked at or above this amount; 0 asks for it on every payment.
    pin_entry_threshold_fen: Annotated[StrictInt, Field(ge=0, le=100_000_000)]
    applications: Annotated[
        list[Literal["social_security", "debit"]], Field(min_length=1, max_length=2)
    ]


class Camera(_Strict):
    width: Annotated[StrictInt, Field(ge=320, le=3840)]
    height: Annotated[StrictInt, Field(ge=240, le=2160)]
    frames_per_second: Annotated[StrictInt, Field(ge=1, le=60)]
    exposure: Literal["auto", "indoor", "outdoor"]
    max_frame_bytes: Annotated[StrictInt, Field(ge=10_000, le=10_000_000)]


class ScannerSettings(_Strict):
    input: Literal["camera", "serial", "keyboard_wedge"]
    symbologies: Annotated[list[Symbology], Field(min_length=1, max_length=6)]
    scan_timeout_ms: Annotated[StrictInt, Field(ge=1000, le=120_000)]
    # The same code read again within this window is one scan, not two.
    same_code_guard_ms: Annotated[StrictInt, Field(ge=0, le=10_000)]
    camera: Camera | None = None

    @model_validator(mode="after")
    def _camera_when_camera_input(self) -> ScannerSettings:
        if (self.input == "camera") != (self.camera is not None):
            raise ValueError("camera settings are required exactly when input is camera")
        return self


class TerminalConfig(_Strict):
    """One published configuration of one terminal model."""

    model: ModelName
    kind: TerminalKind
    version: Annotated[StrictInt, Field(ge=1)]
    description: Annotated[str, Field(max_length=200)] = ""
    hub_url: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", max_length=200)]
    heartbeat_interval_seconds: Annotated[StrictInt, Field(ge=1, le=3600)]
    request_timeout_seconds: Annotated[StrictInt, Field(ge=1, le=120)]
    log_level: LogLevel
    outbox: OutboxLimits
    feedback: Feedback
    card_reader: CardReaderSettings | None = None
    scanner: ScannerSettings | None = None

    @model_validator(mode="after")
    def _sections_match_kind(self) -> TerminalConfig:
        wants_reader = self.kind in ("card_reader", "combo")
        wants_scanner = self.kind in ("qr_scanner", "combo")
        if wants_reader != (self.card_reader is not None):
            raise ValueError(f"card_reader section {'required' if wants_reader else 'not allowed'}")
        if wants_scanner != (self.scanner is not None):
            raise ValueError(f"scanner section {'required' if wants_scanner else 'not allowed'}")
        return self
