"""The terminal agent: enrol once, then heartbeat, run commands, keep the config current.

Everything the hub must hear (command outcomes, events) goes through the SQLite outbox first,
so a hub outage delays it but never loses it. The agent imports nothing from the hub: it
speaks only `devices.protocol`.
"""

from __future__ import annotations

import logging
import platform
import random
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from devices.agent.configs import ConfigRejected, ConfigSlot, LoadedConfig
from devices.agent.hub_client import (
    HubClient,
    HubRefused,
    HubUnavailable,
    parse_answer,
    post_unsigned,
)
from devices.agent.outbox import Outbox, OutboxFull, connect
from devices.agent.store import AgentStore, Identity
from devices.protocol.messages import (
    CONFIG_PATH,
    ENROL_PATH,
    EVENTS_PATH,
    HEARTBEAT_PATH,
    ROTATE_KEY_PATH,
    CommandMessage,
    CommandReply,
    ConfigEnvelope,
    DesiredConfig,
    EnrolmentRequest,
    EnrolmentResponse,
    Heartbeat,
    HeartbeatReply,
    KeyRotation,
    TerminalEvent,
    command_reply_path,
)
from devices.protocol.signing import key_fingerprint, public_key_text

log = logging.getLogger(__name__)
AGENT_VERSION = "1.0.0"
PING_PATH = "/api/terminal/ping"
T = TypeVar("T")
Probe = Callable[[], dict[str, str]]
Outcome = tuple[str, dict[str, Any]]


class NotEnrolled(Exception):
    """The agent has no identity yet: run `sshub-agent enrol` first."""


class RestartRequested(Exception):
    """Raised by a `reboot` command once its outcome is safely in the outbox."""


def default_probe(kind: str) -> Probe:
    """Peripheral states when no driver is attached: known to exist, state unknown."""
    names = {"card_reader": ["card_reader"], "qr_scanner": ["scanner"]}.get(
        kind, ["card_reader", "scanner"]
    )
    return lambda: dict.fromkeys(names, "unknown")


class TerminalAgent:
    def __init__(
        self,
        state_dir: Path,
        *,
        probe: Probe | None = None,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state_dir = state_dir
        self.conn = connect(state_dir / "agent.db")
        self.store = AgentStore(self.conn, state_dir)
        self.outbox = Outbox(self.conn)
        self.configs = ConfigSlot(state_dir / "config")
        self._http = http
        self._clock = clock
        self._probe = probe
        self.recent_errors: deque[str] = deque(maxlen=10)
        self.failed_hashes: set[str] = set()
        self.next_interval = 60.0
        self._boot()

    # --- life cycle ---

    def _boot(self) -> None:
        self.started = time.monotonic()
        self.disabled = self.store.get("disabled") == "1"
        self.identity = self.store.identity()
        self.client: HubClient | None = None
        self.config: LoadedConfig | None = None
        if self.identity is None:
            return
        self.hub_url = self.identity.hub_url
        self.interval = self.identity.heartbeat_interval_seconds
        self.timeout = 10.0
        self.drain_batch = 50
        self.max_age_hours = 72.0
        loaded = self.configs.current()
        if loaded is not None:
            self._use(loaded)
        self.client = self._new_client(self.hub_url, self.store.private_key())

    def _new_client(self, hub_url: str, key: Ed25519PrivateKey) -> HubClient:
        assert self.identity is not None
        return HubClient(
            hub_url,
            self.identity.terminal_id,
            key,
            timeout=self.timeout,
            http=self._http,
            clock=self._clock,
        )

    def _use(self, loaded: LoadedConfig) -> None:
        config = loaded.config
        self.config = loaded
        self.hub_url = config.hub_url
        self.interval = float(config.heartbeat_interval_seconds)
        self.timeout = float(config.request_timeout_seconds)
        self.outbox.max_messages = config.outbox.max_messages
        self.drain_batch = config.outbox.drain_batch
        self.max_age_hours = float(config.outbox.max_age_hours)
        logging.getLogger("devices.agent").setLevel(config.log_level.upper())

    def enrol(
        self,
        hub_url: str,
        code: str,
        serial: str,
        model: str,
        *,
        firmware_version: str = AGENT_VERSION,
        hardware_revision: str | None = None,
    ) -> Identity:
        """Generate a key pair, enrol it with the one-time code, remember who we are."""
        key = Ed25519PrivateKey.generate()
        request = EnrolmentRequest(
            code=code,
            serial=serial,
            model=model,
            public_key=public_key_text(key.public_key()),
            firmware_version=firmware_version,
            hardware_revision=hardware_revision,
        )
        answer = post_unsigned(hub_url, ENROL_PATH, request.model_dump(), http=self._http)
        enrolled = parse_answer(EnrolmentResponse, answer)
        self.store.save_key(key)
        identity = Identity(
            terminal_id=enrolled.terminal_id,
            unit_id=enrolled.unit_id,
            institution_code=enrolled.institution_code,
            kind=enrolled.kind,
            serial=serial,
            model=model,
            hub_url=hub_url,
            heartbeat_interval_seconds=enrolled.heartbeat_interval_seconds,
        )
        self.store.save_identity(identity)
        self._boot()
        log.info(
            "enrolled terminal_id=%s key=%s",
            identity.terminal_id,
            key_fingerprint(key.public_key()),
        )
        return identity

    def restart(self) -> None:
        """A soft reboot: state re-read from disk, uptime from zero, a fresh HTTP client."""
        self._boot()

    # --- talking to the hub ---

    def _call(self, request: Callable[[HubClient], T]) -> T:
        if self.client is None:
            raise NotEnrolled("this terminal is not enrolled")
        try:
            return request(self.client)
        except HubRefused as exc:
            if exc.code != "key_revoked" or not self._adopt_staged_key():
                raise
        return request(self.client)

    def _adopt_staged_key(self) -> bool:
        """A rotation reached the hub but its answer did not reach us: the staged key is ours."""
        if self.client is None or self.store.staged_key() is None:
            return False
        log.warning("key_rotation_recovered")
        self.client.private_key = self.store.promote_staged_key()
        return True

    def drain(self) -> None:
        """Send what the outbox holds; an unreachable hub just leaves it for later."""
        if self.client is None:
            return
        report = self.outbox.drain(self.client, batch=self.drain_batch)
        if report.stopped_by == "key_revoked" and self._adopt_staged_key():
            report = self.outbox.drain(self.client, batch=self.drain_batch)
        if report.stopped_by:
            self.recent_errors.append(f"outbox: {report.stopped_by}")

    def heartbeat_message(self) -> Heartbeat:
        assert self.identity is not None
        probe = self._probe or default_probe(self.identity.kind)
        return Heartbeat(
            sequence=self.store.next_sequence(),
            firmware_version=AGENT_VERSION,
            config_hash=self.config.hash if self.config else None,
            heartbeat_interval_seconds=self.interval,
            peripherals=probe(),  # type: ignore[arg-type]
            outbox_depth=self.outbox.depth(),
            uptime_seconds=int(time.monotonic() - self.started),
            institution_code=self.identity.institution_code,
        )

    def beat(self) -> HeartbeatReply:
        """One heartbeat: drain, report, run what came back, drain again."""
        self.outbox.expire(self.max_age_hours)
        self.drain()
        body = self.heartbeat_message().model_dump(mode="json")
        answer = self._call(lambda c: c.post(HEARTBEAT_PATH, body))
        reply = parse_answer(HeartbeatReply, answer)
        self.next_interval = reply.next_interval_seconds
        try:
            for command in reply.commands:
                self.handle(command)
            if reply.desired_config is not None:
                self.converge(reply.desired_config, reply.commands)
        finally:
            self.drain()
        return reply

    def report_event(self, kind: str, detail: dict[str, Any] | None = None) -> str:
        """Queue an event for the hub (sent now if it is reachable); returns its message id.
        Raises OutboxFull when the outbox holds its maximum."""
        event = TerminalEvent(
            message_id=uuid.uuid4().hex,
            kind=kind,
            occurred_at=datetime.now(UTC),
            detail=detail or {},
        )
        self.outbox.put(EVENTS_PATH, event.model_dump(mode="json"), event.message_id)
        return event.message_id

    # --- commands ---

    def handle(self, command: CommandMessage) -> None:
        """Acknowledge, execute and report one command, once per command id.

        With no room in the outbox for its acknowledgement and outcome the command is left
        unseen: the hub delivers it again with a later heartbeat."""
        if self.outbox.room() < 2:
            log.warning("command_deferred_outbox_full id=%s", command.id)
            self.recent_errors.append(f"outbox full: command {command.kind} deferred")
            return
        if not self.store.first_sight(command.id, command.kind):
            log.info("command_duplicate_dropped id=%s", command.id)
            return
        self._reply(command.id, "acknowledged", {})
        self.drain()
        restart = False
        try:
            status, detail = self._execute(command)
        except RestartRequested:
            status, detail, restart = "succeeded", {"restarted_at": time.time()}, True
        self.store.record_outcome(command.id, status)
        self._reply(command.id, status, detail)
        if restart:
            self.drain()
            self.restart()

    def _reply(self, command_id: str, status: str, detail: dict[str, Any]) -> None:
        message_id = f"{command_id}.{'ack' if status == 'acknowledged' else 'result'}"
        reply = CommandReply(message_id=message_id, status=status, detail=detail)  # type: ignore[arg-type]
        try:
            self.outbox.put(command_reply_path(command_id), reply.model_dump(), message_id)
        except OutboxFull:  # filled by another writer since `handle` looked: the hub times it out
            log.warning("command_reply_dropped message=%s", message_id)
            self.recent_errors.append(f"outbox full: {message_id} dropped")

    def _execute(self, command: CommandMessage) -> Outcome:
        if command.kind == "reboot":
            raise RestartRequested
        if command.kind == "apply_config":
            try:
                envelope = ConfigEnvelope.model_validate(command.payload)
            except ValidationError:
                return "failed", {"error": "invalid_payload", "message": "not a config envelope"}
            return self._apply(envelope)
        if command.kind == "rotate_key":
            return self._rotate_key(command.id)
        if command.kind == "disable":
            # Locally locked: card and code flows check `agent.disabled` and refuse to start.
            self.store.put("disabled", "1")
            self.disabled = True
            return "succeeded", {}
        if command.kind == "collect_diagnostics":
            return "succeeded", self.diagnostics()
        return "failed", {"error": "unsupported", "message": f"unknown command {command.kind}"}

    def _apply(self, envelope: ConfigEnvelope) -> Outcome:
        try:
            loaded = self.configs.apply(envelope, self._activate)
        except ConfigRejected as exc:
            self.failed_hashes.add(envelope.hash)
            return "failed", {"error": exc.reason, "message": str(exc), "hash": envelope.hash}
        return "succeeded", {"hash": loaded.hash, "version": loaded.envelope.version}

    def _activate(self, loaded: LoadedConfig) -> None:
        """Put a configuration to use; a new hub URL must answer first."""
        if self.client is None or loaded.config.hub_url.rstrip("/") != self.hub_url.rstrip("/"):
            candidate = self._new_client(loaded.config.hub_url, self.store.private_key())
            try:
                candidate.get(PING_PATH)
            except (HubUnavailable, HubRefused) as exc:
                raise ConfigRejected(
                    "hub_unreachable", f"new hub URL does not answer: {exc}"
                ) from exc
        self._use(loaded)
        self.client = self._new_client(self.hub_url, self.store.private_key())

    def _rotate_key(self, command_id: str) -> Outcome:
        new_key = Ed25519PrivateKey.generate()
        self.store.stage_next_key(new_key)
        rotation = KeyRotation(
            command_id=command_id, public_key=public_key_text(new_key.public_key())
        )
        try:
            self._call(lambda c: c.post(ROTATE_KEY_PATH, rotation.model_dump()))
        except (HubUnavailable, HubRefused) as exc:
            return "failed", {"error": "rotation_not_confirmed", "message": str(exc)[:200]}
        assert self.client is not None
        self.client.private_key = self.store.promote_staged_key()
        return "succeeded", {"key_fingerprint": key_fingerprint(new_key.public_key())}

    def converge(self, desired: DesiredConfig, commands: list[CommandMessage]) -> None:
        """Fetch and apply the desired config when no command is already bringing it."""
        current = self.config.hash if self.config else None
        if desired.hash in (current, *self.failed_hashes):
            return
        if any(c.kind == "apply_config" for c in commands):
            return
        envelope = parse_answer(ConfigEnvelope, self._call(lambda c: c.get(CONFIG_PATH)))
        status, detail = self._apply(envelope)
        kind = "config.applied" if status == "succeeded" else "config.rejected"
        try:
            self.report_event(kind, detail)
        except OutboxFull:  # the next heartbeat's config hash tells the hub all the same
            log.warning("event_dropped kind=%s", kind)
            self.recent_errors.append(f"outbox full: {kind} dropped")

    def diagnostics(self) -> dict[str, Any]:
        usage = shutil.disk_usage(self.state_dir)
        return {
            "agent_version": AGENT_VERSION,
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "uptime_seconds": int(time.monotonic() - self.started),
            "outbox_depth": self.outbox.depth(),
            "outbox_dead": len(self.outbox.dead()),
            "config_hash": self.config.hash if self.config else None,
            "disk_free_bytes": usage.free,
            "recent_errors": list(self.recent_errors),
        }

    # --- the loop ---

    def run(self, *, beats: int | None = None, duration: float | None = None) -> int:
        """Heartbeat until `beats` are done or `duration` seconds pass (forever if neither)."""
        if self.client is None:
            raise NotEnrolled("this terminal is not enrolled")
        deadline = None if duration is None else time.monotonic() + duration
        done = 0
        while True:
            wait = self._one_cycle()
            done += 1
            if beats is not None and done >= beats:
                return done
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return done
            time.sleep(wait)

    def _one_cycle(self) -> float:
        try:
            return self.beat().next_interval_seconds
        except HubUnavailable as exc:
            self.recent_errors.append(f"hub unavailable: {exc}"[:200])
            log.warning("hub_unavailable")
        except HubRefused as exc:
            self.recent_errors.append(f"refused: {exc.code}")
            log.warning("hub_refused code=%s", exc.code)
        # Offline: try again at the normal pace, jittered, so a recovering hub is not stormed.
        return self.interval * random.uniform(0.9, 1.1)
