"""Fixtures for the security suite; the helpers they use are in ``tests/security_kit.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from engine_support import engine  # noqa: F401 - the engine fixture, for test_security_memory.py
from security_kit import Sentinel

from tests.tools_fakes import FakeHTTP


@pytest.fixture
async def sentinel() -> AsyncIterator[Sentinel]:
    s = await Sentinel().start()
    yield s
    await s.close()


@pytest.fixture
async def sentinel6() -> AsyncIterator[Sentinel]:
    s = await Sentinel(host="::1").start()
    yield s
    await s.close()


@pytest.fixture
async def upstream() -> AsyncIterator[FakeHTTP]:
    """A tenant's service: a local HTTP server that records what it was sent."""
    fake = FakeHTTP()
    await fake.start()
    yield fake
    await fake.close()
