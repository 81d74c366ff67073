"""Console tables: operators, their sessions and the login throttle."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hub.db import Base, Id64


class Role(enum.StrEnum):
    """Ordered: each role may do everything the roles before it may."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class Operator(Base):
    __tablename__ = "console_operators"

    id: Mapped[int] = mapped_column(Id64, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    password_hash: Mapped[str] = mapped_column(String(256))  # argon2id, never the password
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)


class OperatorSession(Base):
    """A signed-in browser. The cookie holds a random token; only its keyed hash is stored."""

    __tablename__ = "console_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    operator_id: Mapped[int] = mapped_column(
        ForeignKey("console_operators.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class LoginThrottle(Base):
    """Failed sign-ins per key ("user:alice", "ip:10.0.0.7"), known user or not."""

    __tablename__ = "console_login_throttle"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
