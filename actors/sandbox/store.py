"""Database access for sandbox sessions, transcripts and the MCP allow-list (keyword-only, async).

State changes that can race (expiry vs. activity, delete vs. expiry) are compare-and-set updates:
``end_session`` only ends an ``active`` row, and with ``expired_by`` only one whose ``expires_at``
has passed, so a session touched in the meantime survives the sweep.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from actors.sandbox.errors import SandboxError
from actors.sandbox.models import SandboxMcpServerRow, SandboxMessageRow, SandboxSessionRow
from actors.sandbox.threads import claim_thread
from config_service import record_audit
from incidentfox.db import make_async_engine, session_factory, utcnow
from incidentfox.pagination import Page, PageRequest, fetch_page

CREATE_FAILED = "create_failed"   # end_reason of a session whose host never opened it


def new_session_id() -> str:
    return "sbx_" + secrets.token_hex(12)


def keyed_session_id(*, org_id: str, team_id: str, key: str) -> str:
    """The id of the session a team's ``Idempotency-Key`` creates: the same for every retry, another
    for another team's same key (a session id is never a credential: every use checks the team)."""
    digest = hashlib.sha256(json.dumps(["sandbox", org_id, team_id, key]).encode()).hexdigest()
    return "sbx_" + digest[:24]


async def active_session_by_thread(session: AsyncSession, *, channel: str,
                                   thread_ts: str) -> SandboxSessionRow | None:
    """The active session mirrored into a Slack thread (how a reply in that thread continues it), in
    the caller's transaction (the gateway's intake asks inside its own)."""
    return await session.scalar(select(SandboxSessionRow)
                                .where(SandboxSessionRow.slack_channel == channel,
                                       SandboxSessionRow.slack_thread_ts == thread_ts,
                                       SandboxSessionRow.status == "active")
                                .order_by(SandboxSessionRow.created_at.desc()).limit(1))


def _expiry(row: SandboxSessionRow, now: datetime) -> datetime:
    """now + TTL, but never past the session's wall time (``config.wall_s`` from its creation)."""
    expires = now + timedelta(seconds=row.ttl_s)
    wall = (row.config or {}).get("wall_s")
    if wall:
        created = row.created_at if row.created_at.tzinfo or not now.tzinfo else row.created_at.replace(tzinfo=now.tzinfo)
        expires = min(expires, created + timedelta(seconds=float(wall)))
    return expires


class SandboxStore:
    """One async engine per process (host, manager, API replica)."""

    def __init__(self, db_url: str) -> None:
        self.engine = make_async_engine(db_url)
        self.sessions = session_factory(self.engine)

    async def close(self) -> None:
        await self.engine.dispose()

    # -- sessions ------------------------------------------------------------------------------

    async def create_session(self, *, session_id: str, org_id: str, team_id: str, workspace: str,
                             ttl_s: float, uid_base: int, uid_count: int, created_by: str = "",
                             title: str = "", config: dict[str, Any] | None = None,
                             scheduling: dict[str, Any] | None = None, host: str | None = None,
                             slack_channel: str | None = None, slack_thread_ts: str | None = None,
                             now: datetime | None = None) -> SandboxSessionRow:
        """Insert an active session with a UID unique among live sessions: start at a hash of the
        id and probe forward; the UNIQUE constraint arbitrates between concurrent creators. A
        session mirrored into a Slack thread claims it in the same transaction
        (:func:`actors.sandbox.threads.claim_thread`): another team's thread is ``404
        thread_not_found``."""
        now = now or utcnow()
        start = int(hashlib.sha256(session_id.encode()).hexdigest(), 16) % uid_count
        for probe in range(64):
            uid = uid_base + (start + probe * 7919) % uid_count
            row = SandboxSessionRow(
                id=session_id, org_id=org_id, team_id=team_id, status="active", uid=uid, host=host,
                workspace=workspace, ttl_s=ttl_s, created_at=now, last_active_at=now,
                expires_at=now + timedelta(seconds=min(ttl_s, (config or {}).get("wall_s") or ttl_s)),
                created_by=created_by[:128], title=title[:200],
                turns=0, busy=False, config=config or {}, scheduling=scheduling or {},
                slack_channel=slack_channel, slack_thread_ts=slack_thread_ts)
            async with self.sessions() as s:
                s.add(row)
                # Audited in the insert's transaction: a session that was never opened leaves no entry.
                record_audit(s, org_id=org_id, actor=created_by or "unknown", action="sandbox.open",
                             target=f"sandbox:{session_id}", diff={"team": team_id, "host": host,
                                                                 "slack_channel": slack_channel, "ttl_s": ttl_s})
                try:
                    if slack_channel and slack_thread_ts:   # another team's thread: 404, nothing kept
                        await s.flush()
                        await claim_thread(s, org_id=org_id, team_id=team_id, channel=slack_channel,
                                           thread_ts=slack_thread_ts)
                    await s.commit()
                    return row
                except IntegrityError:
                    await s.rollback()
                    if await self.get_session(session_id=session_id) is not None:
                        raise
        raise SandboxError("no free sandbox UID; too many live sessions", code="no_free_uid", status=503)

    async def get_session(self, *, session_id: str) -> SandboxSessionRow | None:
        async with self.sessions() as s:
            return await s.get(SandboxSessionRow, session_id)

    async def set_host(self, *, session_id: str, host: str) -> None:
        async with self.sessions() as s:
            await s.execute(update(SandboxSessionRow).where(SandboxSessionRow.id == session_id)
                            .values(host=host))
            await s.commit()

    async def touch(self, *, session_id: str, busy: bool | None = None, turn_done: bool = False,
                    now: datetime | None = None) -> bool:
        """Record activity: push ``expires_at`` to now + ttl. False if the session is not active."""
        now = now or utcnow()
        async with self.sessions() as s:
            row = await s.get(SandboxSessionRow, session_id)
            if row is None or row.status != "active":
                return False
            row.last_active_at = now
            row.expires_at = _expiry(row, now)
            if busy is not None:
                row.busy = busy
            if turn_done:
                row.turns += 1
            await s.commit()
            return True

    async def count_active(self, *, org_id: str, team_id: str) -> int:
        """How many sessions the team has open (the ``sandbox.max_open_sessions`` check)."""
        async with self.sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(SandboxSessionRow)
                                      .where(SandboxSessionRow.org_id == org_id,
                                             SandboxSessionRow.team_id == team_id,
                                             SandboxSessionRow.status == "active")) or 0)

    async def forget_failed_create(self, *, session_id: str) -> bool:
        """Delete the row of a session whose opening failed (``end_reason = create_failed``: it never
        ran, nothing refers to it), so a retry under the same Idempotency-Key opens it afresh."""
        async with self.sessions() as s:
            res = await s.execute(delete(SandboxSessionRow).where(
                SandboxSessionRow.id == session_id, SandboxSessionRow.status == "deleted",
                SandboxSessionRow.end_reason == CREATE_FAILED))
            await s.commit()
        return bool(res.rowcount)

    async def end_session(self, *, session_id: str, status: str, reason: str,
                          expired_by: datetime | None = None, now: datetime | None = None) -> bool:
        """Move an active session to ``status`` (expired | deleted) and free its UID. With
        ``expired_by``, only if it had expired by then (compare-and-set against activity)."""
        now = now or utcnow()
        stmt = (update(SandboxSessionRow)
                .where(SandboxSessionRow.id == session_id, SandboxSessionRow.status == "active")
                .values(status=status, end_reason=reason, ended_at=now, uid=None, busy=False))
        if expired_by is not None:
            stmt = stmt.where(SandboxSessionRow.expires_at <= expired_by)
        async with self.sessions() as s:
            res = await s.execute(stmt)
            await s.commit()
            return res.rowcount == 1

    async def page_sessions(self, *, page: PageRequest, org_id: str | None = None, team_id: str | None = None,
                            status: str | None = None) -> Page[SandboxSessionRow]:
        """Sessions newest first, one cursor page at a time, narrowed to an org/team and a status.
        Deleted sessions are never listed (they answer 404 by id too)."""
        q = select(SandboxSessionRow).where(SandboxSessionRow.status != "deleted")
        if org_id is not None:
            q = q.where(SandboxSessionRow.org_id == org_id)
        if team_id is not None:
            q = q.where(SandboxSessionRow.team_id == team_id)
        if status is not None:
            q = q.where(SandboxSessionRow.status == status)
        order = ((SandboxSessionRow.created_at, True), (SandboxSessionRow.id, True))
        async with self.sessions() as s:
            return await fetch_page(s, q, order=order, page=page)

    async def list_expired(self, *, now: datetime, limit: int = 200) -> list[SandboxSessionRow]:
        async with self.sessions() as s:
            rows = await s.scalars(select(SandboxSessionRow)
                                   .where(SandboxSessionRow.status == "active",
                                          SandboxSessionRow.expires_at <= now)
                                   .order_by(SandboxSessionRow.expires_at).limit(limit))
            return list(rows)

    async def find_by_thread(self, *, channel: str, thread_ts: str) -> SandboxSessionRow | None:
        """The active session mirrored into a Slack thread (:func:`active_session_by_thread`)."""
        async with self.sessions() as s:
            return await active_session_by_thread(s, channel=channel, thread_ts=thread_ts)

    # -- transcript ----------------------------------------------------------------------------

    async def append_messages(self, *, session_id: str, start_seq: int, messages: list[dict[str, Any]]) -> None:
        if not messages:
            return
        async with self.sessions() as s:
            for i, m in enumerate(messages):
                s.add(SandboxMessageRow(session_id=session_id, seq=start_seq + i, role=m["role"],
                                        content=m["content"] if isinstance(m["content"], list)
                                        else [{"type": "text", "text": str(m["content"])}]))
            await s.commit()

    async def list_messages(self, *, session_id: str) -> list[dict[str, Any]]:
        async with self.sessions() as s:
            rows = await s.scalars(select(SandboxMessageRow).where(SandboxMessageRow.session_id == session_id)
                                   .order_by(SandboxMessageRow.seq))
            return [{"role": r.role, "content": r.content, "seq": r.seq,
                     "created_at": r.created_at.isoformat()} for r in rows]

    # -- MCP allow-list ------------------------------------------------------------------------

    async def replace_allowlist(self, *, entries: list[dict[str, Any]], updated_by: str) -> None:
        """Replace the whole allow-list (PUT semantics) in one transaction."""
        now = utcnow()
        async with self.sessions() as s:
            for row in list(await s.scalars(select(SandboxMcpServerRow))):
                await s.delete(row)
            await s.flush()
            for e in entries:
                s.add(SandboxMcpServerRow(name=e["name"], transport=e["transport"], command=e.get("command") or [],
                                          url=e.get("url"), env=e.get("env") or {},
                                          description=e.get("description") or "",
                                          tool_timeout_s=float(e.get("tool_timeout_s") or 30.0),
                                          updated_at=now, updated_by=updated_by[:128]))
            await s.commit()

    async def get_allowlist(self) -> list[SandboxMcpServerRow]:
        async with self.sessions() as s:
            return list(await s.scalars(select(SandboxMcpServerRow).order_by(SandboxMcpServerRow.name)))
