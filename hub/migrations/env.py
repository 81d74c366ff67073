"""Alembic environment: one engine per run, batch mode on SQLite for ALTERs."""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context

import hub
from hub.db import Base, make_engine

# Every domain's models, so autogenerate sees the whole schema.
for module in pkgutil.iter_modules(hub.__path__):
    if module.ispkg:
        try:
            importlib.import_module(f"hub.{module.name}.models")
        except ModuleNotFoundError as exc:
            if exc.name != f"hub.{module.name}.models":
                raise

connectable = make_engine(context.config.get_main_option("sqlalchemy.url") or "")

with connectable.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
connectable.dispose()
