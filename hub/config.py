"""Settings of the hub: one object, read from the environment with the HUB_ prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_SECRET = "demo-only-secret-change-me-000000"
VAR_DIR = Path("var")


class Settings(BaseSettings):
    """Defaults run the embedded demo; outside demo mode the demo secrets refuse to start."""

    model_config = SettingsConfigDict(env_prefix="HUB_", env_file=".env", extra="ignore")

    demo_mode: bool = True
    database_url: str = f"sqlite:///{VAR_DIR / 'sshub.db'}"
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_json: bool = True
    # Keys that protect keys and data at rest; demo values are refused outside demo mode.
    key_encryption_key: SecretStr = SecretStr(DEMO_SECRET)
    pan_hash_key: SecretStr = SecretStr(DEMO_SECRET)
    # Shared with the loan system: both hash a borrower's ID number with it, so it never travels.
    id_hash_key: SecretStr = SecretStr(DEMO_SECRET)
    session_secret: SecretStr = SecretStr(DEMO_SECRET)
    ops_api_token: SecretStr = SecretStr(DEMO_SECRET)
    max_body_bytes: int = 256 * 1024
    # How often the hold-expiry sweeper looks for timed-out holds.
    hold_sweep_seconds: float = 5.0
    # Ops console: sessions end after this much inactivity or this age, whichever comes first.
    console_idle_timeout_seconds: int = 30 * 60
    console_session_max_seconds: int = 12 * 3600
    # Sign-in throttle: this many failures for one user name (or 4x from one address) locks it.
    console_login_max_failures: int = 5
    console_login_lock_seconds: int = 15 * 60
    # None: Secure cookies exactly when the request came over TLS (scheme https).
    console_cookie_secure: bool | None = None
    console_timezone: str = "Asia/Shanghai"
    # argon2id cost for operator passwords (OWASP-level defaults; tests lower them).
    console_argon2_time_cost: int = 3
    console_argon2_memory_kib: int = 64 * 1024
    # Device gateway. The public URL goes into enrollment QR codes for technicians.
    gateway_public_url: str = "http://127.0.0.1:8000"
    gateway_heartbeat_interval_seconds: float = 60.0
    gateway_max_skew_seconds: int = 300
    gateway_enrollment_code_ttl_seconds: int = 24 * 3600
    gateway_terminal_body_bytes: int = 64 * 1024
    gateway_nonce_cache_max: int = 2_000_000
    gateway_command_ttl_seconds: int = 24 * 3600
    gateway_command_max_attempts: int = 5
    # Background jobs: last-seen flush, presence sweep, cache change feed, rollout evaluation.
    gateway_presence_flush_seconds: float = 2.0
    gateway_presence_sweep_seconds: float = 10.0
    gateway_change_poll_seconds: float = 1.0
    gateway_rollout_seconds: float = 10.0
    # The bank's business day (daily limits, reconciliation files).
    business_timezone: str = "Asia/Shanghai"
    # Loan disbursements. Client secrets are derived from this root and never stored.
    loan_key_root: SecretStr = SecretStr(DEMO_SECRET)
    loan_key_grace_seconds: int = 24 * 3600  # a rotated key keeps working this long
    loan_signature_skew_seconds: int = 300
    loan_callback_timeout_seconds: float = 5.0
    disbursement_cap_fen: int = 30_000_000  # 300,000 CNY per loan
    disbursement_daily_count: int = 20_000
    disbursement_daily_amount_fen: int = 500_000_000  # 5 million CNY a day for the programme
    disbursement_in_flight_seconds: float = 30.0  # after this a retry takes over a dead request
    # Outbox delivery: poll interval, claim lease, batch, parallel deliveries, retry budget.
    outbox_poll_seconds: float = 0.2
    outbox_lease_seconds: float = 60.0
    outbox_batch: int = 100
    outbox_concurrency: int = 8
    outbox_max_attempts: int = 24
    outbox_backoff_base_seconds: float = 2.0
    outbox_backoff_cap_seconds: float = 600.0
    # Card taps: how long an authorisation holds the money, the default online-PIN threshold
    # of a unit (at or above, like the terminals' firmware config), how far an ATC may jump.
    card_hold_seconds: int = 7 * 24 * 3600
    card_pin_threshold_fen: int = 50_000
    card_atc_window: int = 1000
    # QR codes. Payment codes live this long and are MACed under a key derived from the
    # key-encryption key; a QR payment's hold is captured at once, the timeout is a backstop.
    payment_code_validity_seconds: int = 60
    payment_code_hold_timeout_seconds: int = 300
    bill_validity_seconds: int = 30 * 60
    # Camera frames: the upload route's own body limit (the global one is max_body_bytes).
    frame_max_bytes: int = 2 * 1024 * 1024
    frame_max_pixels: int = 16_000_000
    # Hospital checkout. The insurance platform and the HIS (the simulators by default). Each
    # unit speaks to the platform as itself: its institution code, name and region code are the
    # fixmedins_code, fixmedins_name and mdtrtarea_admvs; `insurance_operator` is the opter.
    insurance_base_url: str = "http://127.0.0.1:8701"
    insurance_timeout_seconds: float = 10.0
    insurance_operator: str = "sshub"
    his_base_url: str = "http://127.0.0.1:8702"
    his_timeout_seconds: float = 5.0
    # How long one driver may take over a platform message before the outbox may resend it.
    checkout_call_lease_seconds: float = 30.0

    @model_validator(mode="after")
    def _refuse_demo_secrets(self) -> Settings:
        if self.demo_mode:
            return self
        for name in (
            "key_encryption_key",
            "pan_hash_key",
            "id_hash_key",
            "session_secret",
            "ops_api_token",
            "loan_key_root",
        ):
            if getattr(self, name).get_secret_value() == DEMO_SECRET:
                raise ValueError(f"HUB_{name.upper()} must be set outside demo mode")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
