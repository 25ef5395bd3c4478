"""Fixtures shared by the gateway tests; the helpers they use are in ``tests/gateway_kit.py``."""

from __future__ import annotations

import pytest
from gateway_kit import client_for, make_core


@pytest.fixture
async def gw(db_url):
    """A gateway over the default routes (``gateway_kit.DEFAULT_ROUTES``) and its client."""
    core = make_core(db_url)
    async with client_for(core) as client:
        yield core, client
    await core.drain()
    await core.engine.dispose()
