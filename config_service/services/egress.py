"""The platform egress allow-list: read, replace and its history (global admin only; routes check).

The list admits destinations the egress policy otherwise refuses (``incidentfox.egress``). Entries
are validated and stored in their canonical spelling; a replace that changes anything writes one
audit entry (``egress_allowlist.update``, platform-level: ``org_id`` null) in the same transaction,
with what was added, removed and re-commented. Processes pick a change up within
``INCIDENTFOX_EGRESS_ALLOWLIST_TTL_S``. The operator's ``INCIDENTFOX_EGRESS_ALLOW`` entries are shown
beside the stored ones, read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.db.models import AuditEvent
from config_service.services import audit
from config_service.services.tx import rolls_back_on_error
from incidentfox.db import utcnow
from incidentfox.egress.policy import parse_rule
from incidentfox.egress.store import EgressAllowEntry, list_entries
from incidentfox.errors import Conflict, Unprocessable
from incidentfox.pagination import Page, PageRequest
from incidentfox.settings import Settings

MAX_ENTRIES = 500
ACTION = "egress_allowlist.update"
TARGET = "egress_allowlist"


@dataclass(frozen=True)
class EntryIn:
    entry: str
    comment: str = ""


def entry_dict(row: EgressAllowEntry) -> dict[str, Any]:
    return {"entry": row.entry, "comment": row.comment, "added_by": row.added_by,
            "added_at": row.added_at.isoformat()}


def canonical_entries(entries: list[EntryIn]) -> dict[str, str]:
    """``{canonical entry: comment}`` in the given order, duplicates merged (first comment wins).
    422 ``invalid_egress_entry`` naming the entry (and its index) that does not parse."""
    if len(entries) > MAX_ENTRIES:
        raise Unprocessable(f"at most {MAX_ENTRIES} entries", code="too_many_entries",
                            details={"max_entries": MAX_ENTRIES})
    out: dict[str, str] = {}
    for index, item in enumerate(entries):
        try:
            rule = parse_rule(item.entry)
        except ValueError as exc:
            raise Unprocessable(f"entries[{index}]: {exc}", code="invalid_egress_entry",
                                details={"index": index, "entry": item.entry[:300]}) from None
        out.setdefault(str(rule), item.comment)
    return out


async def get_allowlist(session: AsyncSession, *, settings: Settings) -> dict[str, Any]:
    return {"entries": [entry_dict(r) for r in await list_entries(session)],
            "operator_entries": list(settings.egress_allow)}


@rolls_back_on_error
async def replace_allowlist(session: AsyncSession, *, entries: list[EntryIn], actor: str,
                            settings: Settings) -> dict[str, Any]:
    """Replace the stored list with ``entries``. Commits. 422 for a bad entry; 409
    ``concurrent_update`` when another replace committed first (retry)."""
    wanted = canonical_entries(entries)
    current = {r.entry: r for r in await list_entries(session)}
    added = [e for e in wanted if e not in current]
    removed = [e for e in current if e not in wanted]
    recommented = [e for e in wanted if e in current and current[e].comment != wanted[e]]
    if removed:
        await session.execute(delete(EgressAllowEntry).where(EgressAllowEntry.entry.in_(removed)))
    now = utcnow()
    for e in added:
        session.add(EgressAllowEntry(entry=e, comment=wanted[e], added_by=actor[:128], added_at=now))
    for e in recommented:
        current[e].comment = wanted[e]
    if added or removed or recommented:
        audit.record(session, org_id=None, actor=actor, action=ACTION, target=TARGET,
                     diff={"added": added, "removed": removed, "comment_changed": recommented})
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict("the allow-list changed concurrently; read it again and retry",
                       code="concurrent_update") from None
    result = await get_allowlist(session, settings=settings)
    return {**result, "changes": {"added": added, "removed": removed, "comment_changed": recommented}}


async def history(session: AsyncSession, *, page: PageRequest) -> Page[dict[str, Any]]:
    """The allow-list's audit entries, newest first, paged like the org audit log."""
    stmt = select(AuditEvent).where(AuditEvent.org_id.is_(None), AuditEvent.action == ACTION)
    return await audit.page_events(session, stmt, page)
