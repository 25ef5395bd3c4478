"""The org tree: units and teams under the org root, at most :data:`MAX_DEPTH` levels below it.

Nodes are created under an existing parent (``parent_id`` omitted or null means the org root), so
the tree cannot gain a cycle on creation; :func:`move_node` refuses moves under the node itself or
one of its descendants (409 ``cycle``). Teams are leaves: nothing can be created under a team.
:func:`delete_node` removes a leaf (a team, or a unit without children) with what belongs to it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.ids import require_id
from config_service.core.locks import raise_if_locked
from config_service.core.merge import iter_leaves
from config_service.db.models import ApiToken, ConfigNode, ConfigVersion, RoutingClaim, WebhookSecret
from config_service.services import audit
from config_service.services.orgs import _check_name, bump_org_epoch
from config_service.services.routing import bump_routing_epoch
from config_service.services.tx import rolls_back_on_error
from incidentfox.db import utcnow
from incidentfox.errors import Conflict, NotFound, Unprocessable
from incidentfox.pagination import Page, PageRequest, fetch_page

MAX_DEPTH = 16          # a node may sit at most 16 levels below its org root
NODE_KINDS = ("unit", "team")


def node_dict(node: ConfigNode) -> dict[str, Any]:
    return {"org_id": node.org_id, "node_id": node.node_id, "parent_id": node.parent_id, "kind": node.kind,
            "name": node.name, "path": list(node.path), "depth": node.depth, "version": node.version,
            "created_at": node.created_at.isoformat(), "updated_at": node.updated_at.isoformat()}


def _target(org_id: str, node_id: str) -> str:
    return f"node:{org_id}/{node_id}"


async def get_node(session: AsyncSession, *, org_id: str, node_id: str, for_update: bool = False) -> ConfigNode:
    """404 ``node_not_found``. ``for_update`` row-locks it on PostgreSQL (the caller is writing)."""
    require_id(org_id, field="org_id")
    require_id(node_id, field="node_id")
    stmt = select(ConfigNode).where(ConfigNode.org_id == org_id, ConfigNode.node_id == node_id)
    if for_update:
        stmt = stmt.with_for_update()
    node = (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()
    if node is None:
        raise NotFound(f"node {node_id!r} not found in org {org_id!r}", code="node_not_found",
                       details={"org_id": org_id, "node_id": node_id})
    return node


async def load_chain(session: AsyncSession, *, node: ConfigNode) -> list[ConfigNode]:
    """The nodes on ``node.path`` (root first, ``node`` last) in one indexed query."""
    ids = list(node.path)
    rows = (await session.scalars(
        select(ConfigNode).where(ConfigNode.org_id == node.org_id, ConfigNode.node_id.in_(ids))
        .execution_options(populate_existing=True)
    )).all()
    by_id = {n.node_id: n for n in rows}
    return [by_id[i] for i in ids if i in by_id]


async def list_nodes(session: AsyncSession, *, org_id: str, parent_id: str | None = None) -> list[ConfigNode]:
    require_id(org_id, field="org_id")
    stmt = select(ConfigNode).where(ConfigNode.org_id == org_id)
    if parent_id is not None:
        stmt = stmt.where(ConfigNode.parent_id == require_id(parent_id, field="parent_id"))
    return list((await session.scalars(stmt.order_by(ConfigNode.depth, ConfigNode.node_id))).all())


async def page_nodes(session: AsyncSession, *, org_id: str, page: PageRequest,
                     parent_id: str | None = None) -> Page[ConfigNode]:
    """:func:`list_nodes` one page at a time (root first, then by depth and id)."""
    require_id(org_id, field="org_id")
    stmt = select(ConfigNode).where(ConfigNode.org_id == org_id)
    if parent_id is not None:
        stmt = stmt.where(ConfigNode.parent_id == require_id(parent_id, field="parent_id"))
    return await fetch_page(session, stmt, order=[(ConfigNode.depth, False), (ConfigNode.node_id, False)], page=page)


@rolls_back_on_error
async def list_team_ids(session: AsyncSession) -> list[tuple[str, str]]:
    """Every team of every org as ``(org_id, team_id)``, in a stable order."""
    rows = await session.execute(select(ConfigNode.org_id, ConfigNode.node_id).where(ConfigNode.kind == "team")
                                 .order_by(ConfigNode.org_id, ConfigNode.node_id))
    return [(org_id, node_id) for org_id, node_id in rows.all()]


async def create_node(session: AsyncSession, *, org_id: str, node_id: str, parent_id: str | None, kind: str,
                      name: str | None, actor: str) -> ConfigNode:
    """Create a unit or team at version 0 with an empty config. Commits.

    Errors: 422 ``invalid_id``/``invalid_kind``/``invalid_parent`` (a team)/``tree_too_deep``;
    404 ``org_not_found``/``parent_not_found``; 409 ``node_exists``/``cycle`` (its own parent).
    """
    require_id(org_id, field="org_id")
    require_id(node_id, field="node_id")
    if parent_id is not None:
        require_id(parent_id, field="parent_id")
    if kind not in NODE_KINDS:
        raise Unprocessable(f"kind must be one of {list(NODE_KINDS)}", code="invalid_kind")
    name = _check_name(name) if name else node_id
    if parent_id == node_id:
        raise Conflict("a node cannot be its own parent", code="cycle", details={"node_id": node_id})
    await bump_org_epoch(session, org_id=org_id)
    parent = await _parent(session, org_id=org_id, parent_id=parent_id or org_id)
    if parent.depth + 1 > MAX_DEPTH:
        raise Unprocessable(f"the tree may be at most {MAX_DEPTH} levels deep", code="tree_too_deep",
                            details={"max_depth": MAX_DEPTH})
    if await session.get(ConfigNode, (org_id, node_id)) is not None:
        raise Conflict(f"node {node_id!r} already exists in org {org_id!r}", code="node_exists",
                       details={"org_id": org_id, "node_id": node_id})
    now = utcnow()
    node = ConfigNode(org_id=org_id, node_id=node_id, parent_id=parent.node_id, kind=kind, name=name,
                      path=[*parent.path, node_id], depth=parent.depth + 1, config={}, version=0,
                      created_at=now, updated_at=now)
    session.add(node)
    await session.flush()
    session.add(ConfigVersion(org_id=org_id, node_id=node_id, version=0, action="create", config={}, diff=[],
                              actor=actor, created_at=now))
    audit.record(session, org_id=org_id, actor=actor, action="node.create", target=_target(org_id, node_id),
                 diff={"parent_id": parent.node_id, "kind": kind, "name": name})
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise Conflict(f"node {node_id!r} already exists in org {org_id!r}", code="node_exists",
                       details={"org_id": org_id, "node_id": node_id}) from None
    return node


async def _parent(session: AsyncSession, *, org_id: str, parent_id: str) -> ConfigNode:
    parent = await session.get(ConfigNode, (org_id, parent_id))
    if parent is None:
        raise NotFound(f"parent {parent_id!r} not found in org {org_id!r}", code="parent_not_found",
                       details={"org_id": org_id, "parent_id": parent_id})
    if parent.kind == "team":
        raise Unprocessable("teams cannot have child nodes", code="invalid_parent",
                            details={"parent_id": parent_id})
    return parent


@rolls_back_on_error
async def update_node(session: AsyncSession, *, org_id: str, node_id: str, actor: str,
                      parent_id: str | None = None, name: str | None = None) -> ConfigNode:
    """Rename and/or move a unit or team under another parent (the org root when ``parent_id`` is the
    org id). Commits. 409 ``cycle`` when the new parent is the node or below it; 409 ``path_locked``
    when a moved node's config sets a path the new ancestors lock; 422 ``tree_too_deep``."""
    await bump_org_epoch(session, org_id=org_id)
    node = await get_node(session, org_id=org_id, node_id=node_id, for_update=True)
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = {"old": node.name, "new": _check_name(name)}
        node.name = changes["name"]["new"]
    if parent_id is not None and parent_id != node.parent_id:
        if node.kind == "org":
            raise Unprocessable("the org root cannot move", code="invalid_parent")
        require_id(parent_id, field="parent_id")
        parent = await _parent(session, org_id=org_id, parent_id=parent_id)
        if node_id in parent.path:
            raise Conflict(f"moving {node_id!r} under {parent_id!r} would create a cycle", code="cycle",
                           details={"node_id": node_id, "parent_id": parent_id})
        await _move_subtree(session, node=node, parent=parent)
        changes["parent_id"] = {"old": node.parent_id, "new": parent.node_id}
        node.parent_id = parent.node_id
    node.updated_at = utcnow()
    audit.record(session, org_id=org_id, actor=actor, action="node.update", target=_target(org_id, node_id),
                 diff=changes)
    await session.commit()
    return node


async def _move_subtree(session: AsyncSession, *, node: ConfigNode, parent: ConfigNode) -> None:
    # Moves are rare, so reading the org's deeper nodes and filtering by path is acceptable.
    candidates = (await session.scalars(
        select(ConfigNode).where(ConfigNode.org_id == node.org_id, ConfigNode.depth >= node.depth)
    )).all()
    cut = node.depth  # index of node in every subtree member's path
    subtree = [n for n in candidates if len(n.path) > cut and n.path[cut] == node.node_id]
    delta = parent.depth + 1 - node.depth
    if max(n.depth for n in subtree) + delta > MAX_DEPTH:
        raise Unprocessable(f"the tree may be at most {MAX_DEPTH} levels deep", code="tree_too_deep",
                            details={"max_depth": MAX_DEPTH})
    new_ancestors = [(n.node_id, n.config) for n in await load_chain(session, node=parent)]
    for member in subtree:
        raise_if_locked(touched=(p for p, _ in iter_leaves(member.config) if p != ("locked_paths",)),
                        ancestors=new_ancestors)
    for member in subtree:
        member.path = [*parent.path, *member.path[cut:]]
        member.depth = member.depth + delta


@rolls_back_on_error
async def delete_node(session: AsyncSession, *, org_id: str, node_id: str, actor: str) -> dict[str, Any]:
    """Delete a unit or team that has no children. Commits. 422 ``invalid_node`` for the org root
    (delete the org instead), 409 ``node_has_children`` while anything sits under it.

    With it go its config versions and webhook secrets; a team's routing claims too (the routing
    epoch is bumped, so its identifiers stop routing at once) and its tokens are revoked (a stored
    token of a team that no longer exists must not keep authenticating). Runs and audit events stay:
    they are history. Returns ``{node_id, kind, revoked_tokens, released_claims}``."""
    await bump_org_epoch(session, org_id=org_id)
    node = await get_node(session, org_id=org_id, node_id=node_id, for_update=True)
    if node.kind == "org":
        raise Unprocessable("the org root cannot be deleted", code="invalid_node", details={"node_id": node_id})
    children = await session.scalar(select(func.count()).select_from(ConfigNode).where(
        ConfigNode.org_id == org_id, ConfigNode.parent_id == node_id))
    if children:
        raise Conflict(f"{node_id!r} still has {children} child node(s); move or delete them first",
                       code="node_has_children", details={"node_id": node_id, "children": children})
    revoked = released = 0
    if node.kind == "team":
        released = (await session.execute(delete(RoutingClaim).where(
            RoutingClaim.org_id == org_id, RoutingClaim.team_node_id == node_id))).rowcount or 0
        if released:
            await bump_routing_epoch(session)
        revoked = (await session.execute(update(ApiToken).where(
            ApiToken.org_id == org_id, ApiToken.team_node_id == node_id, ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow()))).rowcount or 0
    # Explicit rather than relying on ON DELETE CASCADE (SQLite enforces it only with a pragma).
    for model in (ConfigVersion, WebhookSecret):
        await session.execute(delete(model).where(model.org_id == org_id, model.node_id == node_id))
    await session.delete(node)
    result = {"node_id": node_id, "kind": node.kind, "revoked_tokens": revoked, "released_claims": released}
    audit.record(session, org_id=org_id, actor=actor, action="node.delete", target=_target(org_id, node_id),
                 diff={"parent_id": node.parent_id, **result})
    await session.commit()
    return result
