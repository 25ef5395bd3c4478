"""The operator's view of intake: listing deliveries (``incidentfox deliveries list``,
``GET /api/v1/agent/deliveries``) and their API representation."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.pagination import Page, PageRequest, fetch_page
from incidentfox.runs.models import DELIVERY_ID_MAX, Delivery
from serve_apps.deliveries.dispatch import MAX_DISPATCH_ATTEMPTS


async def list_deliveries(session: AsyncSession, *, outcome: str | None = None, failed: bool = False,
                          source: str | None = None, org_id: str | None = None,
                          max_attempts: int = MAX_DISPATCH_ATTEMPTS, limit: int = 50,
                          offset: int = 0) -> list[Delivery]:
    """Deliveries, newest first. ``failed`` selects those still undispatched after at least one
    failed attempt (``dispatch_error`` set) or with every attempt used."""
    q = _query(outcome=outcome, failed=failed, source=source, org_id=org_id, max_attempts=max_attempts)
    q = q.order_by(Delivery.received_at.desc(), Delivery.id.desc()).limit(limit).offset(offset)
    return list((await session.scalars(q)).all())


async def page_deliveries(session: AsyncSession, *, page: PageRequest, outcome: str | None = None,
                          failed: bool = False, source: str | None = None, org_id: str | None = None,
                          team_id: str | None = None, offset: int = 0) -> Page[Delivery]:
    """:func:`list_deliveries` one cursor page at a time (optionally one team's)."""
    q = _query(outcome=outcome, failed=failed, source=source, org_id=org_id, max_attempts=MAX_DISPATCH_ATTEMPTS)
    if team_id:
        q = q.where(Delivery.team_id == team_id)
    return await fetch_page(session, q, order=[(Delivery.received_at, True), (Delivery.id, True)], page=page,
                            offset=offset)


def _query(*, outcome: str | None, failed: bool, source: str | None, org_id: str | None,
           max_attempts: int) -> Any:
    q = select(Delivery)
    if outcome:
        q = q.where(Delivery.outcome == outcome)
    if source:
        q = q.where(Delivery.source == source)
    if org_id:
        q = q.where(Delivery.org_id == org_id)
    if failed:
        q = q.where(Delivery.dispatched_at.is_(None),
                    (Delivery.dispatch_error.is_not(None)) | (Delivery.dispatch_attempts >= max_attempts))
    return q


def delivery_view(row: Delivery) -> dict[str, Any]:
    """The API representation of a delivery (the raw payload is not included)."""
    return {
        "id": row.id, "source": row.source, "delivery_id": row.delivery_id,
        "received_at": row.received_at.isoformat() if row.received_at else None,
        "event_kind": row.event_kind, "action": row.action, "outcome": row.outcome,
        "org_id": row.org_id, "team_id": row.team_id, "run_id": row.run_id,
        "route_stale": row.route_stale,
        "dispatched_at": row.dispatched_at.isoformat() if row.dispatched_at else None,
        "dispatch_attempts": row.dispatch_attempts, "dispatch_error": row.dispatch_error,
    }


def new_delivery_id(prefix: str = "api") -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def keyed_delivery_id(scope: str, key: str) -> str:
    """The delivery id of a caller's ``Idempotency-Key`` inside ``scope`` (``<org>:<team>``,
    ``rerun:<run id>``): ``<scope>:<key>``, or ``<scope>:sha256:<digest of key>`` when that would not
    fit ``webhook_deliveries.delivery_id``, so two long keys never become one by being cut short."""
    did = f"{scope}:{key}"
    if len(did) <= DELIVERY_ID_MAX:
        return did
    return f"{scope}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
