"""Scheduler tables.

* ``schedule_claims``: one row per ``(schedule_key, scheduled_for)``; the UNIQUE constraint is what
  makes a fire time run exactly once, however many schedulers tick at the same moment.
* ``schedule_cursors``: per schedule, the instant up to which fire times have been considered; a
  gap between the cursor and now is downtime, handled by the catch-up policy.
* ``reports``: generated reports, served at ``GET /api/v1/reports/{id}``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.db import Base, utcnow
from incidentfox.runs.models import BigIntPK


class ClaimStatus(StrEnum):
    """A claimed fire time's outcome (``schedule_claims.status``)."""

    CLAIMED = "claimed"      # running, or its scheduler died before recording the outcome
    DONE = "done"
    FAILED = "failed"        # the report could not be posted, or the job raised (``error``)
    REFUSED = "refused"      # its Slack channel is not the team's (``error`` starts ``channel_not_claimed``)


class ScheduleClaim(Base):
    __tablename__ = "schedule_claims"
    __table_args__ = (UniqueConstraint("schedule_key", "scheduled_for"),
                      Index("ix_schedule_claims_status", "status", "claimed_at"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    schedule_key: Mapped[str] = mapped_column(String(200))      # "<org>:<team>:<schedule id>"
    org_id: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str] = mapped_column(String(64))
    schedule_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    scheduled_for: Mapped[datetime] = mapped_column()
    catch_up: Mapped[bool] = mapped_column(default=False)
    claimed_by: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="claimed")  # ClaimStatus
    finished_at: Mapped[datetime | None] = mapped_column()
    report_id: Mapped[str | None] = mapped_column(String(40))
    run_id: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)


class ScheduleCursor(Base):
    __tablename__ = "schedule_cursors"

    schedule_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    considered_until: Mapped[datetime] = mapped_column()


class Report(Base):
    __tablename__ = "reports"
    __table_args__ = (Index("ix_reports_org_team_created", "org_id", "team_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    org_id: Mapped[str] = mapped_column(String(64))
    team_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    schedule_id: Mapped[str | None] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column()
    period_end: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    content: Mapped[dict[str, Any]] = mapped_column(default=dict)
    chart_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    channel: Mapped[str | None] = mapped_column(String(64))
    posted_at: Mapped[datetime | None] = mapped_column()
    post_error: Mapped[str | None] = mapped_column(Text)
