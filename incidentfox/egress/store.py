"""The platform egress allow-list table (``egress_allowlist``), written only by the global admin.

One row per entry, stored in its canonical spelling (:class:`~incidentfox.egress.policy.AllowRule`
``str``). The config service writes it (``PUT /api/v1/admin/egress-allowlist``, audited); every
process that makes tenant calls reads it through :func:`loader_for`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.pool import NullPool

from incidentfox.db import Base, async_url, session_factory, utcnow

ENTRY_LEN = 300


class EgressAllowEntry(Base):
    __tablename__ = "egress_allowlist"

    entry: Mapped[str] = mapped_column(String(ENTRY_LEN), primary_key=True)
    comment: Mapped[str] = mapped_column(String(300), default="")
    added_by: Mapped[str] = mapped_column(String(128))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


async def list_entries(session: AsyncSession) -> list[EgressAllowEntry]:
    return list((await session.scalars(select(EgressAllowEntry).order_by(EgressAllowEntry.entry))).all())


def loader_for(database_url: str) -> Callable[[], Awaitable[list[str]]]:
    """An async function returning the stored entries. It opens a connection per call (NullPool):
    it runs every few seconds at most, possibly from different event loops in one process."""
    engine = create_async_engine(async_url(database_url), poolclass=NullPool)
    sessions = session_factory(engine)

    async def load() -> list[str]:
        async with sessions() as session:
            return [row.entry for row in await list_entries(session)]

    return load
