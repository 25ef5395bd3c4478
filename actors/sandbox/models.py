"""ORM models for sandbox sessions, their transcripts and the platform MCP allow-list.

Invariants the schema keeps:

* ``sandbox_sessions.uid`` is UNIQUE while set: no two live sessions share an unprivileged UID (it
  is what separates their processes and files). Expiry/deletion sets it to NULL, freeing it.
* ``sandbox_messages`` is append-only with ``UNIQUE(session_id, seq)``: a turn's messages are
  written as they happen, and a second writer (a stale host after a failover) cannot interleave.
  The API view of the conversation is derived from these rows (see ``transcript.py``).
* ``sandbox_mcp_allowlist`` is written only through the global-admin API; tenants name entries.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.db import Base, utcnow
from incidentfox.mcp_allowlist import McpServerRow

BigIntPK = BigInteger().with_variant(Integer, "sqlite")


class SandboxSessionRow(Base):
    __tablename__ = "sandbox_sessions"
    __table_args__ = (
        Index("ix_sandbox_sessions_org_team_created", "org_id", "team_id", "created_at"),
        Index("ix_sandbox_sessions_status_expires", "status", "expires_at"),
        Index("ix_sandbox_sessions_slack_thread", "slack_channel", "slack_thread_ts"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")   # active | expired | deleted
    uid: Mapped[int | None] = mapped_column(Integer, unique=True)
    host: Mapped[str | None] = mapped_column(String(128))               # hosting actor's name
    workspace: Mapped[str] = mapped_column(String(512))
    ttl_s: Mapped[float] = mapped_column(default=7200.0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_active_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    end_reason: Mapped[str | None] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(128), default="")
    title: Mapped[str] = mapped_column(String(200), default="")
    turns: Mapped[int] = mapped_column(default=0)
    busy: Mapped[bool] = mapped_column(default=False)                   # a turn is running
    # Team sandbox config snapshot (mcp server names, network); never secrets.
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scheduling: Mapped[dict[str, Any]] = mapped_column(default=dict)    # Ray actor options
    slack_channel: Mapped[str | None] = mapped_column(String(64))
    slack_thread_ts: Mapped[str | None] = mapped_column(String(64))


class SandboxMessageRow(Base):
    __tablename__ = "sandbox_messages"
    __table_args__ = (UniqueConstraint("session_id", "seq"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(40), ForeignKey("sandbox_sessions.id", ondelete="CASCADE"),
                                            index=True)
    seq: Mapped[int] = mapped_column()
    role: Mapped[str] = mapped_column(String(16))                        # user | assistant
    content: Mapped[list[dict[str, Any]]] = mapped_column()              # Anthropic content blocks
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# The allow-list has one owner, shared with investigations: :mod:`incidentfox.mcp_allowlist`.
SandboxMcpServerRow = McpServerRow
