"""Alembic environment: one engine per run, batch mode on SQLite for ALTERs."""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context

import hub
from hub.db import Base, make_engine

# Every domain's table modules (models.py, and e.g. payments/code_models.py), so autogenerate
# sees the whole schema.
for domain in pkgutil.iter_modules(hub.__path__):
    if domain.ispkg:
        package = importlib.import_module(f"hub.{domain.name}")
        for module in pkgutil.iter_modules(package.__path__):
            if module.name == "models" or module.name.endswith("_models"):
                importlib.import_module(f"hub.{domain.name}.{module.name}")

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
