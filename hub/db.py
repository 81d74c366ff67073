"""Engine, sessions and the transaction boundary, the same on SQLite and PostgreSQL.

Services take a Session and never commit; `Database.transaction` is the boundary used by
endpoints, CLI commands and workers. It commits on success, rolls back on any error and runs
the unit of work again when the database says the conflict was transient.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Annotated, Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

import structlog
from fastapi import Depends, Path, Query, Request
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.exc import DBAPIError, IntegrityError, InvalidatePoolError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from hub.errors import HubError

log = structlog.get_logger()
T = TypeVar("T")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC everywhere; SQLite forgets the zone, so it is put back on read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
Id64 = BigInteger().with_variant(Integer, "sqlite")
MAX_ID = 2**63 - 1

# Ids from a URL, as route parameters: a number past 64 bits is a 422 at the door, never one
# the driver cannot bind (a 500). Routes take their ids through these.
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]  # an optional id filter
Cursor = Annotated[int, Query(ge=0, le=MAX_ID)]  # the last id seen; 0 for the first page


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {int: BigInteger, datetime: UtcDateTime}


def utcnow() -> datetime:
    return datetime.now(UTC)


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The bank's local day `day` in `zone` as a UTC [start, end); 23 or 25 hours across DST."""
    start = datetime.combine(day, clock_time(), zone).astimezone(UTC)
    return start, datetime.combine(day + timedelta(days=1), clock_time(), zone).astimezone(UTC)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2)
    _check_pooled_connections(engine)
    return engine


# A pooled connection is pinged (a round trip) before reuse only when it sat idle this long: a
# busy pool reuses its connections within milliseconds, while a server restart or an idle
# timeout shows on one that waited. (HikariCP skips its check within 500 ms the same way.)
IDLE_PING_SECONDS = 1.0
_IDLE_SINCE = "hub_idle_since"
_STATEMENTS = "hub_statements"  # statements run since the connection was checked out


class StaleConnection(OperationalError):
    """The connection broke at the first statement of a transaction: the server ran nothing
    of it (no COMMIT was sent), so `Database.transaction` runs the work again."""


def _check_pooled_connections(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _idle(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        record.info[_STATEMENTS] = 0
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            raise InvalidatePoolError("ping failed") from exc  # the pool reconnects

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn: Any, *_: Any) -> None:
        conn.info[_STATEMENTS] = conn.info.get(_STATEMENTS, 0) + 1

    @event.listens_for(engine, "handle_error")
    def _stale(context: ExceptionContext) -> BaseException | None:
        conn = context.connection
        first = conn is not None and conn.info.get(_STATEMENTS) == 1
        # Only a database error: SQLAlchemy also counts an interrupt (KeyboardInterrupt, a
        # dying process) as a disconnect. statement None is a COMMIT, whose fate is unknown.
        database_error = context.sqlalchemy_exception is not None
        if not (context.is_disconnect and first and database_error and context.statement):
            return None
        return StaleConnection(
            context.statement,
            context.parameters,
            context.original_exception,
            connection_invalidated=True,
        )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let the "begin" hook below issue BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    # Take the write lock at BEGIN: a deferred transaction that upgrades later can fail with
    # "database is locked" instead of waiting its turn.
    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class RetryableConflict(HubError):
    code = "conflict_retry_exhausted"
    status = 409


def _is_transient(exc: DBAPIError) -> bool:
    if isinstance(exc, StaleConnection):
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate in {"40001", "40P01"}:  # serialization failure, deadlock
        return True
    # Two requests racing on one idempotency key: the loser runs again and finds the winner.
    if isinstance(exc, IntegrityError):
        return sqlstate == "23505" or "UNIQUE constraint failed" in str(exc.orig)
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


class Database:
    """The engine, its session factory and the one transaction boundary."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def transaction(self, work: Callable[[Session], T], *, attempts: int = 8) -> T:
        """Run `work` in one transaction; commit, or roll back and re-raise.

        Serialization failures, deadlocks, idempotency-key races and a connection found broken
        at the first statement run `work` again, so `work` must not have side effects outside
        the session. A connection lost later in the transaction is not retried.
        """
        for attempt in range(1, attempts + 1):
            with self.sessions() as session:
                try:
                    result = work(session)
                    session.commit()
                    return result
                except DBAPIError as exc:
                    session.rollback()
                    if not _is_transient(exc) or attempt == attempts:
                        if _is_transient(exc) and not isinstance(exc, StaleConnection):
                            raise RetryableConflict(message="too much contention, retry") from exc
                        raise
                    log.info("transaction_retry", attempt=attempt, error=type(exc.orig).__name__)
                    time.sleep(random.uniform(0, 0.005 * 2**attempt))
                except BaseException:
                    session.rollback()
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session for reads, or for a caller that commits itself."""
        with self.sessions() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


# Async on purpose: they only read app state, and a sync dependency costs a threadpool hop.
async def get_database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def get_now(request: Request) -> datetime:
    return request.app.state.clock()  # type: ignore[no-any-return]


Db = Annotated[Database, Depends(get_database)]
Now = Annotated[datetime, Depends(get_now)]
