"""Audit of sandbox opens (issue 12): opening a sandbox session writes ``sandbox.open`` to the
config service's audit log in the insert's transaction (who, which org/team, which session)."""

from __future__ import annotations

from sqlalchemy import select

from actors.sandbox.store import SandboxStore
from config_service.db.models import AuditEvent


async def test_opening_a_sandbox_session_is_audited(sqlite_url):
    store = SandboxStore(sqlite_url)
    row = await store.create_session(session_id="sbx_1", org_id="acme", team_id="payments", workspace="/w",
                                     ttl_s=60, uid_base=100000, uid_count=1000, created_by="token:tok_1",
                                     slack_channel="C111")
    async with store.sessions() as s:
        (entry,) = (await s.scalars(select(AuditEvent).where(AuditEvent.action == "sandbox.open"))).all()
    assert (entry.org_id, entry.actor, entry.target) == ("acme", "token:tok_1", f"sandbox:{row.id}")
    assert entry.diff["team"] == "payments" and entry.diff["slack_channel"] == "C111"
    await store.close()
