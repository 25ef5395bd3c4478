"""Fixtures shared by the scheduler's API tests."""

from __future__ import annotations

import base64
import os
import secrets

import pytest

from incidentfox.settings import Settings


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    """Settings over the test database (``db_url``: SQLite and PostgreSQL), with fresh keys."""
    return Settings(database_url=db_url, home=tmp_path, token_pepper=secrets.token_hex(32),
                    secret_key=base64.urlsafe_b64encode(os.urandom(32)).decode())
