"""Published terminal configurations: validate, publish, list, and deliver to a terminal."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from devices.protocol.messages import ConfigEnvelope
from hub.audit import service as audit
from hub.gateway import firmware
from hub.gateway import repository as repo
from hub.gateway.errors import (
    ConfigInvalid,
    ConfigNotFound,
    ConfigVersionExists,
    NoDesiredConfig,
    TerminalNotFound,
)
from hub.gateway.models import FirmwareConfig
from hub.gateway.schemas import ConfigDetail, ConfigOut


def publish_config(
    session: Session, document: dict[str, Any], *, actor: str, now: datetime
) -> ConfigOut:
    """Validate a configuration against the schema and the model catalog, then publish it.

    Publishing the same document again returns the first publication; a different document
    under a published (model, version) is refused.
    """
    config_hash = firmware.validate_document(document)
    existing = repo.config_by_hash(session, config_hash)
    if existing is not None:
        return ConfigOut.model_validate(existing)
    if repo.config_by_version(session, document["model"], document["version"]):
        raise ConfigVersionExists(
            message=f"{document['model']} version {document['version']} is already published"
        )
    config = FirmwareConfig(
        model=document["model"],
        version=document["version"],
        hash=config_hash,
        document=document,
        published_at=now,
        published_by=actor,
    )
    repo.add(session, config)
    audit.record(
        session,
        actor=actor,
        action="config.published",
        subject=f"config:{config.id}",
        now=now,
        details={"model": config.model, "version": config.version, "hash": config.hash},
    )
    return ConfigOut.model_validate(config)


def list_configs(session: Session, model: str | None = None) -> list[ConfigOut]:
    return [ConfigOut.model_validate(c) for c in repo.list_configs(session, model)]


def get_config(session: Session, config_id: int) -> ConfigDetail:
    return ConfigDetail.model_validate(config_row(session, config_id))


def desired_config_for(session: Session, terminal_id: int) -> ConfigEnvelope:
    """The configuration a terminal should run, as delivered to it."""
    terminal = repo.get_terminal(session, terminal_id)
    if terminal is None:
        raise TerminalNotFound(message=f"no terminal {terminal_id}")
    if terminal.desired_config_id is None:
        raise NoDesiredConfig(message="no configuration is assigned to this terminal")
    return envelope(config_row(session, terminal.desired_config_id))


def envelope(config: FirmwareConfig) -> ConfigEnvelope:
    return ConfigEnvelope(
        config_id=config.id, version=config.version, hash=config.hash, document=config.document
    )


def config_row(session: Session, config_id: int) -> FirmwareConfig:
    config = repo.get_config(session, config_id)
    if config is None:
        raise ConfigNotFound(message=f"no config {config_id}")
    return config


def check_document(document: Any) -> str:
    """Validate without publishing; returns the hash (raises ConfigInvalid)."""
    if not isinstance(document, dict):
        raise ConfigInvalid(message="a configuration is a mapping")
    return firmware.validate_document(document)
