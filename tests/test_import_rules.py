"""DESIGN §2's import rules, checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hub", "devices", "integrations")
SHARED_DEVICE_CONTRACTS = ("devices.protocol", "devices.emv", "devices.qr")
# Modules of another domain that a domain may use: its rules and what crosses its boundary.
# (`auth`: the gateway's terminal-request dependency that every terminal endpoint uses.)
PUBLIC_DOMAIN_MODULES = {"service", "schemas", "errors", "auth"}
# Composition roots and boundaries: they wire domains together.
WIRING = {"hub.app", "hub.cli"}
COMMAND_LINE = "hub.cli"
# The demo district (`sshub demo run`) is a launcher like the command line: it seeds through the
# domains, starts the simulators and drives real terminal agents and virtual cards.
DEMO_LAUNCHER = "hub.demo"


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {i for i in found if i.split(".")[0] in PACKAGES}


def breaches(name: str, imported: str) -> str | None:
    top = name.split(".")[0]
    target = imported.split(".")
    if top == "devices" and target[0] in ("hub", "integrations"):
        return "devices/ never imports hub/ or integrations/"
    if top == "integrations":
        own = ".".join(name.split(".")[:2])
        if target[0] == "hub":
            return "integrations/ never imports hub/"
        if target[0] == "integrations" and not imported.startswith(own) and len(target) > 1:
            return "an integration imports only its own package"
        if target[0] == "devices" and not imported.startswith(SHARED_DEVICE_CONTRACTS):
            return "integrations import only devices' protocol codecs"
    if top == "hub":
        if name == DEMO_LAUNCHER or name.startswith(DEMO_LAUNCHER + "."):
            return _demo_breach(target)
        # `sshub` also mounts the device tools' command groups (`sshub card`, `sshub scanner`).
        device_cli = name == COMMAND_LINE and "cli" in target[2:]
        if (
            target[0] == "devices"
            and len(target) > 1
            and not imported.startswith(SHARED_DEVICE_CONTRACTS)
            and not device_cli
        ):
            return "hub imports only devices.protocol, devices.emv and devices.qr"
        # The command line may start a simulator (`sshub simulate ...`); nothing else in hub may.
        allowed = {"client", "simulator"} if name == COMMAND_LINE else {"client"}
        if target[0] == "integrations" and len(target) > 2 and target[2] not in allowed:
            return "hub imports only integrations.*.client"
        return _domain_breach(name, target)
    return None


def _demo_breach(target: list[str]) -> str | None:
    if target[0] == "integrations" and len(target) > 2 and target[2] not in ("client", "simulator"):
        return "the demo launcher uses only integrations' clients and simulators"
    return None


def _domain_breach(name: str, target: list[str]) -> str | None:
    source = name.split(".")
    if name in WIRING or len(source) < 3 or target[0] != "hub" or len(target) < 3:
        return None
    domain, other = source[1], target[1]
    if domain == other or not (ROOT / "hub" / other).is_dir():
        return None
    if domain == "ledger":
        return "ledger imports no other domain"
    if target[2] not in PUBLIC_DOMAIN_MODULES:
        return f"a domain uses another domain's service/schemas/errors, not its {target[2]}"
    return None


def test_every_import_follows_the_design():
    found = []
    for name, path in modules().items():
        for imported in sorted(imports_of(name, path)):
            reason = breaches(name, imported)
            if reason:
                found.append(f"{name} imports {imported}: {reason}")
    assert found == []


def test_the_checker_catches_breaches():
    assert breaches("devices.agent.cli", "hub.db")
    assert breaches("integrations.loans.simulator", "hub.ledger.service")
    assert breaches("hub.payments.service", "devices.pcsc.driver")
    assert breaches("hub.payments.service", "integrations.loans.simulator")
    assert breaches("hub.payments.service", "hub.ledger.repository")
    assert breaches("hub.ledger.service", "hub.audit.service")
    assert breaches("hub.payments.service", "hub.ledger.service") is None
    assert breaches("hub.app", "hub.ledger.endpoints") is None
    assert breaches("hub.cli", "integrations.loans.simulator") is None
    assert breaches("hub.cli", "devices.scanner.cli.app") is None
    assert breaches("hub.app", "devices.scanner.cli")
    assert breaches("hub.app", "integrations.loans.platform")
    assert breaches("hub.demo.district", "devices.agent.agent") is None
    assert breaches("hub.demo.district", "hub.disbursements.clients") is None
    assert breaches("hub.demo.district", "integrations.loans.platform")
    assert breaches("hub.demos", "devices.agent.agent")
