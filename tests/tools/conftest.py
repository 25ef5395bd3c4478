"""Fixtures of the tool tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.tools_fakes import FakeHTTP


@pytest.fixture
async def http() -> AsyncIterator[FakeHTTP]:
    """A local HTTP server speaking whatever API subset a test scripts into it."""
    fake = FakeHTTP()
    await fake.start()
    yield fake
    await fake.close()
