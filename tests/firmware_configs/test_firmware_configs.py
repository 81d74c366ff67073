"""The shipped configurations: three models, each valid for the hub's schema and for the agent's
loader, and the two validators agree on what is broken."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from devices.protocol.firmware import TerminalConfig, config_hash
from hub.gateway.firmware import bundled_documents, catalog, schema_problems

DOCUMENTS = bundled_documents()


def test_three_models_of_three_kinds_are_shipped():
    kinds = {model.kind for model in catalog().values()}
    assert kinds == {"card_reader", "qr_scanner", "combo"}
    assert {d["model"] for _, d in DOCUMENTS} == set(catalog())


@pytest.mark.parametrize("path,document", DOCUMENTS, ids=[str(p.name) for p, _ in DOCUMENTS])
def test_every_shipped_config_is_valid_for_hub_and_agent(path, document):
    assert schema_problems(document) == []
    config = TerminalConfig.model_validate(document)
    assert config.kind == catalog()[config.model].kind
    assert path.parent.name == config.model and path.stem == str(config.version)


def test_versions_of_one_model_have_different_hashes():
    hashes = [config_hash(d) for _, d in DOCUMENTS]
    assert len(set(hashes)) == len(hashes)


def _mutations():
    combo = next(d for _, d in DOCUMENTS if d["kind"] == "combo")
    scanner = next(d for _, d in DOCUMENTS if d["kind"] == "qr_scanner")

    def change(document, path, value):
        changed = copy.deepcopy(document)
        target = changed
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value
        return changed

    return [
        change(combo, ["card_reader", "pin_entry_threshold_fen"], -1),
        change(combo, ["card_reader", "pin_entry_threshold_fen"], 100.5),
        change(combo, ["scanner", "symbologies"], []),
        change(combo, ["scanner", "symbologies"], ["qr", "morse"]),
        change(combo, ["feedback", "beep", "volume_percent"], 101),
        change(combo, ["feedback", "light", "enabled"], "yes"),
        change(combo, ["log_level"], "verbose"),
        change(combo, ["hub_url"], "ftp://hub"),
        change(combo, ["outbox", "max_messages"], 10),
        change(combo, ["scanner"], KeyError),
        change(scanner, ["scanner", "camera"], KeyError),
        change(scanner, ["version"], 0),
    ]


@pytest.mark.parametrize("document", _mutations())
def test_schema_and_agent_loader_refuse_the_same_broken_configs(document):
    assert schema_problems(document)
    with pytest.raises(ValidationError):
        TerminalConfig.model_validate(document)
