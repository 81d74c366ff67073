"""The model catalog and the configuration schema kept in `firmware_configs/`.

They are data, not code: the catalog says which models exist and their kind; the JSON Schema
says what a configuration document must hold. A document is published only after both agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

from devices.protocol.firmware import config_hash
from hub.gateway.errors import ConfigInvalid, KindMismatch, UnknownModel

FIRMWARE_DIR = Path(__file__).resolve().parents[2] / "firmware_configs"


@dataclass(frozen=True)
class TerminalModel:
    name: str
    kind: str
    description: str


@lru_cache(maxsize=1)
def catalog() -> dict[str, TerminalModel]:
    """The terminal models the bank deploys, by model name."""
    raw = yaml.safe_load((FIRMWARE_DIR / "models.yaml").read_text())
    return {
        name: TerminalModel(name, entry["kind"], entry.get("description", ""))
        for name, entry in raw.items()
    }


def terminal_model(name: str, kind: str | None = None) -> TerminalModel:
    """The catalog entry for `name`; refuses an unknown model or one of another kind."""
    model = catalog().get(name)
    if model is None:
        raise UnknownModel(message=f"model {name!r} is not in the catalog")
    if kind is not None and kind != model.kind:
        raise KindMismatch(message=f"model {name} is a {model.kind}, not a {kind}")
    return model


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    schema = json.loads((FIRMWARE_DIR / "schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def schema_problems(document: Any) -> list[str]:
    """Every way `document` breaks the schema, as `path: reason` lines (empty when valid)."""
    problems = []
    for error in sorted(_validator().iter_errors(document), key=lambda e: list(e.path)):
        where = "/".join(str(p) for p in error.absolute_path) or "(document)"
        problems.append(f"{where}: {error.message}")
    return problems


def validate_document(document: Any) -> str:
    """Check a configuration against the schema and the catalog; returns its hash."""
    problems = schema_problems(document)
    if problems:
        raise ConfigInvalid(message="; ".join(problems[:5]))
    model = terminal_model(document["model"])
    if model.kind != document["kind"]:
        raise ConfigInvalid(message=f"model {model.name} is a {model.kind}, config says otherwise")
    return config_hash(document)


def bundled_documents() -> list[tuple[Path, dict[str, Any]]]:
    """The versioned YAML configurations shipped in `firmware_configs/<model>/<version>.yaml`."""
    found = []
    for path in sorted(FIRMWARE_DIR.glob("*/*.yaml")):
        found.append((path, yaml.safe_load(path.read_text())))
    return found
