"""Helpers shared by the ``test_sandbox_*`` files (not a test module itself)."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest


def make_root() -> Path:
    """A sandbox root under /tmp. pytest's tmp_path is inside 0700 directories, which the
    unprivileged session UIDs could not traverse to reach their own workspace."""
    root = Path(tempfile.mkdtemp(prefix="ifx-sbx-test-", dir="/tmp"))
    os.chmod(root, 0o711)
    return root


def remove_root(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def random_uid() -> int:
    return random.randint(250_000, 290_000)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="per-session UIDs need root")


def _no_bwrap_reason() -> str | None:
    """Why the sandbox's Bash tool is refused on this machine, or None when bubblewrap works here."""
    if os.geteuid() != 0:
        return "per-session UIDs need root"
    from actors.sandbox.isolation import sandbox_isolation_status

    status = sandbox_isolation_status(allow_rlimit_only=False)
    if status.mode == "bwrap":
        return None
    return (f"the sandbox's Bash tool needs bubblewrap: {status.reason} "
            "(`make install` installs it as root; else `sudo apt-get install bubblewrap`)")


_BWRAP_REASON = _no_bwrap_reason()
# For tests whose scripted agent runs Bash: without bubblewrap the sandbox refuses Bash (by design,
# tested in test_sandbox_slack/test_sandbox_health), so these skip with the reason instead of failing.
needs_bwrap = pytest.mark.skipif(_BWRAP_REASON is not None, reason=_BWRAP_REASON or "")


class FakeSlack:
    """A Slack poster for the gateway (root messages, notices) and the hosts' mirror: records the
    calls and gives each post its own ``ts``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None, str]] = []
        self._n = 0

    async def post(self, channel: str, thread_ts: str | None, text: str, blocks: Any) -> str:
        self._n += 1
        self.calls.append(("post", channel, thread_ts, text))
        return f"1700000000.{self._n:06d}"

    async def update(self, channel: str, ts: str, text: str, blocks: Any) -> None:
        self.calls.append(("update", channel, ts, text))


async def patch_team(db_url: str, settings: Any, org: str, team: str, patch: dict[str, Any]) -> None:
    """Merge-patch a team's config through the config service's service layer."""
    from config_service.services import config as config_svc
    from incidentfox.db import make_async_engine, session_factory

    engine = make_async_engine(db_url)
    async with session_factory(engine)() as s:
        await config_svc.patch_config(s, settings=settings, org_id=org, node_id=team, actor="test", patch=patch)
        await s.commit()
    await engine.dispose()
