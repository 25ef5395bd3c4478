"""Fixtures of the answer-back tests: a local HTTP server and a migrated database with one run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from incidentfox.contracts import Trigger
from incidentfox.db import make_async_engine, session_factory
from incidentfox.runs import store
from tests.tools_fakes import FakeHTTP


@pytest.fixture
async def http() -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[Any]:
    engine = make_async_engine(db_url)
    yield session_factory(engine)
    await engine.dispose()


async def new_run(sessions: Any, trigger: Trigger) -> str:
    async with sessions() as s:
        run = await store.create_run(s, org_id="acme", team_id="payments", trigger=trigger)
        await s.commit()
        return run.id
