"""ORM models for deliveries, runs and what a run records (events, tool calls, feedback, approvals).

Invariants the schema keeps:

* ``webhook_deliveries`` has ``UNIQUE(source, delivery_id)``: a redelivery can never insert a second
  row, so it can never start a second run. The run id is allocated in the same transaction.
* ``runs.status`` follows :data:`incidentfox.contracts.ALLOWED_TRANSITIONS`; transitions are
  compare-and-set updates in :mod:`incidentfox.runs.store`.
* A follow-up run (a reply in the thread of a finished run) names the run it continues in
  ``parent_run_id``; both stay bound to the same thread.
* A running run holds a lease (``lease_owner``, ``lease_expires_at``) renewed by its actor; a run
  whose lease lapsed is retried once (``attempts``) or failed with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.db import Base, utcnow

CORRELATION_KEY_MAX = 255   # runs.correlation_key (serve_apps.deliveries.decide digests longer keys)
DELIVERY_ID_MAX = 255       # webhook_deliveries.delivery_id (Trigger.delivery_id's limit too)
BigIntPK = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrement needs INTEGER


class Delivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("source", "delivery_id"),
        Index("ix_webhook_deliveries_pending", "dispatched_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(DELIVERY_ID_MAX))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    event_kind: Mapped[str] = mapped_column(String(128), default="")
    action: Mapped[str] = mapped_column(String(32), default="start")
    # accepted | unrouted | ignored | recorded | correlated | continued | updated
    outcome: Mapped[str] = mapped_column(String(32), default="accepted", index=True)
    org_id: Mapped[str | None] = mapped_column(String(64), index=True)
    team_id: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(40), index=True)
    route_stale: Mapped[bool] = mapped_column(default=False)
    trigger: Mapped[dict[str, Any]] = mapped_column(default=dict)
    payload: Mapped[str] = mapped_column(Text, default="")   # raw body, purged by `incidentfox gc`
    dispatched_at: Mapped[datetime | None] = mapped_column()
    dispatch_attempts: Mapped[int] = mapped_column(default=0)
    dispatch_error: Mapped[str | None] = mapped_column(Text)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        Index("ix_runs_org_team_created", "org_id", "team_id", "created_at"),
        Index("ix_runs_status_lease", "status", "lease_expires_at"),
        Index("ix_runs_team_correlation", "org_id", "team_id", "correlation_key", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    kind: Mapped[str] = mapped_column(String(32), default="investigation")
    source: Mapped[str] = mapped_column(String(32), default="api")
    trigger: Mapped[dict[str, Any]] = mapped_column(default=dict)
    correlation_key: Mapped[str | None] = mapped_column(String(CORRELATION_KEY_MAX))
    thread_channel: Mapped[str | None] = mapped_column(String(64), index=True)
    thread_ts: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    first_message_at: Mapped[datetime | None] = mapped_column()
    deadline_s: Mapped[float | None] = mapped_column()
    result: Mapped[dict[str, Any] | None] = mapped_column()     # the RCA
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    absorbed: Mapped[list[dict[str, Any]]] = mapped_column(default=list)  # correlated triggers
    slack_message: Mapped[dict[str, Any] | None] = mapped_column()  # {channel, ts} of the progress post
    # Thread conversations (incidentfox/runs/turns.py): the run a follow-up continues, the replies
    # addressed to this run, and the evidence it gathered (what a follow-up starts from). The evidence
    # (up to 1.5 MB of JSON) is deferred: a row read for its status, a listing or a view never decodes
    # it; only a follow-up reads it (`store.run_evidence`).
    parent_run_id: Mapped[str | None] = mapped_column(String(40), index=True)
    turns: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    evidence: Mapped[dict[str, Any] | None] = mapped_column(deferred=True)


class RunEvent(Base):
    __tablename__ = "run_events"
    __table_args__ = (UniqueConstraint("run_id", "seq"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))    # status | phase | agent | tool | absorbed | turn | note
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ToolCall(Base):
    __tablename__ = "tool_calls"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    agent: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(128))
    arguments: Mapped[dict[str, Any]] = mapped_column(default=dict)   # secrets masked
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), default="running")  # ok | error | timeout | cancelled
    result_size: Mapped[int] = mapped_column(default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)


class RunFeedback(Base):
    __tablename__ = "run_feedback"
    __table_args__ = (UniqueConstraint("run_id", "user"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    user: Mapped[str] = mapped_column(String(128))
    value: Mapped[int] = mapped_column()   # +1 👍, -1 👎
    at: Mapped[datetime] = mapped_column(default=utcnow)


class ToolApproval(Base):
    """A mutating tool call waiting for (or given) explicit approval, or an RCA's proposed fix."""

    __tablename__ = "tool_approvals"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    tool: Mapped[str] = mapped_column(String(128))
    arguments: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # pending|approved|denied|expired; a proposed fix (id "act_…", actors/engine/actions.py) then
    # approved → executing → executed|failed; a revert pull request then executed → merged (revert_merge.py)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by: Mapped[str | None] = mapped_column(String(128))


class RunAnswer(Base):
    """One answer of a run's RCA at the place its alert came from (``actors.answerback``): a GitHub
    check run or comment, a PagerDuty note or status change, an incident.io update.

    ``UNIQUE(run_id, destination)`` makes the answer durable-once: the first writer claims the row
    (``pending``), and a retried finish step, a second copy of the run or a redelivery that reaches
    the same run sees it ``posted`` and sends nothing. A ``pending`` or ``failed`` row is taken over
    by the next attempt, which first looks for the earlier post on the destination itself (a marker
    or the API's own idempotency key) before it writes."""

    __tablename__ = "run_answers"
    __table_args__ = (UniqueConstraint("run_id", "destination"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    destination: Mapped[str] = mapped_column(String(64))   # github.check_run | github.comment | pagerduty.note …
    status: Mapped[str] = mapped_column(String(16), default="pending")   # pending | posted | failed
    attempts: Mapped[int] = mapped_column(default=0)
    external_id: Mapped[str | None] = mapped_column(String(255))   # the destination's id of what was posted
    error: Mapped[str | None] = mapped_column(Text)                 # one line, never a secret
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
