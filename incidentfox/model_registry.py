"""Imports every ORM model module so ``Base.metadata`` is complete (Alembic, test fixtures)."""

from __future__ import annotations

import importlib

MODEL_MODULES = (
    "config_service.db.models",
    "incidentfox.runs.models",
    "actors.sandbox.models",
    "actors.scheduler.models",
    "incidentfox.egress.store",
)


def import_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
