"""Fixtures of the answer-back tests: a local HTTP server and a migrated database with one run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from incidentfox.db import make_async_engine, session_factory
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
