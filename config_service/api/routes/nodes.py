"""The org tree: create, list, read, move/rename and delete units and teams."""

from __future__ import annotations

from fastapi import APIRouter, Request

from config_service.api.body import body_doc, read_json
from config_service.api.deps import OrgAdminDep, SessionDep, TeamReaderDep
from config_service.api.schemas import NodeCreate, NodeUpdate
from config_service.services import nodes
from incidentfox.pagination import LongPageDep, Page, envelope, page_responses

router = APIRouter(prefix="/api/v1/orgs/{org}/nodes", tags=["nodes"])


@router.post("", status_code=201, openapi_extra=body_doc(NodeCreate))
async def create_node(org: str, request: Request, principal: OrgAdminDep, session: SessionDep) -> dict:
    """Create a unit or team; ``parent_id`` null or omitted puts it under the org root (org admin)."""
    body = await read_json(request, NodeCreate)
    node = await nodes.create_node(session, org_id=org, node_id=body.node_id, parent_id=body.parent_id,
                                   kind=body.kind, name=body.name, actor=principal.subject)
    return nodes.node_dict(node)


@router.get("", responses=page_responses("NodePage"))
async def list_nodes(org: str, principal: OrgAdminDep, session: SessionDep, page: LongPageDep,
                     parent_id: str | None = None) -> dict:
    """Every node of the org (root first), optionally only the children of ``parent_id`` (org admin)."""
    result = await nodes.page_nodes(session, org_id=org, parent_id=parent_id, page=page)
    return envelope(Page([nodes.node_dict(n) for n in result.items], result.next_cursor))


@router.get("/{node}")
async def get_node(org: str, node: str, principal: TeamReaderDep, session: SessionDep) -> dict:
    """A node and its direct children (org admin, or the team's own token)."""
    row = await nodes.get_node(session, org_id=org, node_id=node)
    children = await nodes.list_nodes(session, org_id=org, parent_id=node)
    return {**nodes.node_dict(row), "children": [c.node_id for c in children if c.node_id != node]}


@router.patch("/{node}", openapi_extra=body_doc(NodeUpdate))
async def update_node(org: str, node: str, request: Request, principal: OrgAdminDep, session: SessionDep) -> dict:
    """Rename and/or move a node under another parent; moves that would form a cycle are 409 (org admin)."""
    body = await read_json(request, NodeUpdate)
    row = await nodes.update_node(session, org_id=org, node_id=node, parent_id=body.parent_id, name=body.name,
                                  actor=principal.subject)
    return nodes.node_dict(row)


@router.delete("/{node}")
async def delete_node(org: str, node: str, principal: OrgAdminDep, session: SessionDep) -> dict:
    """Delete a team, or a unit without children (409 ``node_has_children``); a team's routing claims
    are released and its tokens revoked (org admin)."""
    return await nodes.delete_node(session, org_id=org, node_id=node, actor=principal.subject)
