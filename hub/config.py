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
        ):
            if getattr(self, name).get_secret_value() == DEMO_SECRET:
                raise ValueError(f"HUB_{name.upper()} must be set outside demo mode")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
