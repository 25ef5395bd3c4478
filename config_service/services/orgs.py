"""Organizations and the org epoch.

Creating an org also creates its root node (``node_id == org_id``, kind ``org``, version 0), whose
config is the org layer. :func:`bump_org_epoch` is the first statement of every config-changing
transaction: it invalidates cached effective configs and, because it takes the org row's write
lock, serialises an org's writes so version numbers and lock checks never race.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.ids import require_id
from config_service.core.jsondoc import check_string
from config_service.db.models import ConfigNode, ConfigVersion, Org
from config_service.services import audit
from config_service.services.tx import rolls_back_on_error
from incidentfox.db import utcnow
from incidentfox.errors import Conflict, NotFound, Unprocessable
from incidentfox.pagination import Page, PageRequest, fetch_page


def org_dict(org: Org) -> dict[str, Any]:
    return {"org_id": org.id, "name": org.name, "epoch": org.epoch, "created_at": org.created_at.isoformat()}


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise Unprocessable("name must be a non-empty string of at most 200 characters", code="invalid_name")
    check_string(name)
    return name.strip()


@rolls_back_on_error
async def create_org(session: AsyncSession, *, org_id: str, name: str, actor: str) -> Org:
    """Create an org and its root node; 409 ``org_exists`` if the id is taken. Commits."""
    require_id(org_id, field="org_id")
    name = _check_name(name)
    if await session.get(Org, org_id) is not None:
        raise Conflict(f"org {org_id!r} already exists", code="org_exists", details={"org_id": org_id})
    now = utcnow()
    org = Org(id=org_id, name=name, epoch=0, created_at=now)
    session.add(org)
    await session.flush()  # the org row must exist before its root node references it (FK)
    session.add(ConfigNode(org_id=org_id, node_id=org_id, parent_id=None, kind="org", name=name,
                           path=[org_id], depth=0, config={}, version=0, created_at=now, updated_at=now))
    await session.flush()
    session.add(ConfigVersion(org_id=org_id, node_id=org_id, version=0, action="create", config={}, diff=[],
                              actor=actor, created_at=now))
    audit.record(session, org_id=org_id, actor=actor, action="org.create", target=f"org:{org_id}",
                 diff={"name": name})
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"org {org_id!r} already exists", code="org_exists", details={"org_id": org_id}) from None
    return org


async def get_org(session: AsyncSession, *, org_id: str) -> Org:
    require_id(org_id, field="org_id")
    org = await session.get(Org, org_id, populate_existing=True)
    if org is None:
        raise NotFound(f"org {org_id!r} not found", code="org_not_found", details={"org_id": org_id})
    return org


async def list_orgs(session: AsyncSession, *, page: PageRequest, after: str | None = None) -> Page[Org]:
    """Orgs by id; ``after`` (the older parameter) starts after that id when no cursor is given."""
    stmt = select(Org)
    if after and page.cursor is None:
        stmt = stmt.where(Org.id > require_id(after, field="after"))
    return await fetch_page(session, stmt, order=[(Org.id, False)], page=page)


async def bump_org_epoch(session: AsyncSession, *, org_id: str) -> int:
    """Increment the org epoch inside the caller's transaction and return the new value.

    Raises 404 ``org_not_found``. Call it first in a write transaction (see module docstring).
    """
    require_id(org_id, field="org_id")
    result = await session.execute(
        update(Org).where(Org.id == org_id).values(epoch=Org.epoch + 1).returning(Org.epoch)
    )
    epoch = result.scalar_one_or_none()
    if epoch is None:
        raise NotFound(f"org {org_id!r} not found", code="org_not_found", details={"org_id": org_id})
    return epoch


async def org_epoch(session: AsyncSession, *, org_id: str) -> int:
    """The current epoch (one primary-key read); 404 ``org_not_found``."""
    epoch = (await session.execute(select(Org.epoch).where(Org.id == org_id))).scalar_one_or_none()
    if epoch is None:
        raise NotFound(f"org {org_id!r} not found", code="org_not_found", details={"org_id": org_id})
    return epoch
