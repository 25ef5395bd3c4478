"""Routing claims as a tenant sees them: a node's own claims, a dry-run check of proposed claims,
and conflicts explained without leaking another tenant.

The owner of a conflicting claim is named only to a caller who could see that owner anyway (the
global admin, or an admin of the owner's org); anyone else learns that the identifier is
"claimed elsewhere", never which org holds it (:func:`visible_conflicts`). The write path's 409
``routing_conflict`` is redacted the same way by the config routes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.validation import MAX_CLAIM_LEN, ROUTING_CLAIM_KEYS, normalize_claim
from config_service.db.models import RoutingClaim
from config_service.services.nodes import get_node
from config_service.services.routing import find_foreign_owners
from incidentfox.contracts import Principal
from incidentfox.errors import Conflict, Unprocessable
from incidentfox.pagination import FIRST_PAGE, Page, PageRequest, fetch_page

KEY_OF_KIND = {kind: key for key, kind in ROUTING_CLAIM_KEYS.items()}
MAX_CHECK = 1000


def owner_visible(viewer: Principal, owner_org_id: str) -> bool:
    return viewer.auth_kind == "global_admin" or (viewer.auth_kind == "org_admin" and viewer.org_id == owner_org_id)


def visible_conflicts(conflicts: list[dict[str, Any]], viewer: Principal) -> list[dict[str, Any]]:
    """``conflicts`` (``find_foreign_owners``) with the owner blanked where ``viewer`` may not see it;
    each gains ``claimed_elsewhere`` (true when the owner is hidden)."""
    out = []
    for c in conflicts:
        shown = owner_visible(viewer, c["owner_org_id"])
        out.append({"kind": c["kind"], "value": c["value"],
                    "owner_org_id": c["owner_org_id"] if shown else None,
                    "owner_team_node_id": c["owner_team_node_id"] if shown else None,
                    "claimed_elsewhere": not shown})
    return out


def redact_conflict(exc: Conflict, viewer: Principal) -> Conflict:
    """The write path's 409 ``routing_conflict`` as ``viewer`` may see it (other errors unchanged)."""
    conflicts = exc.details.get("conflicts") if isinstance(exc.details, Mapping) else None
    if exc.code != "routing_conflict" or not isinstance(conflicts, list) or not conflicts:
        return exc
    shown = visible_conflicts(conflicts, viewer)
    first = shown[0]
    where = ("elsewhere" if first["claimed_elsewhere"] else
             f"by team {first['owner_team_node_id']!r} in org {first['owner_org_id']!r}")
    return Conflict(f"{first['kind']} {first['value']!r} is already claimed {where}", code="routing_conflict",
                    details={"conflicts": shown})


async def list_node_claims(session: AsyncSession, *, org_id: str, node_id: str,
                           page: PageRequest = FIRST_PAGE) -> Page[dict[str, Any]]:
    """The claims ``node_id`` holds (``routing_claims`` rows), by kind then value."""
    await get_node(session, org_id=org_id, node_id=node_id)
    stmt = select(RoutingClaim).where(RoutingClaim.org_id == org_id, RoutingClaim.team_node_id == node_id)
    rows = await fetch_page(session, stmt, order=[(RoutingClaim.kind, False), (RoutingClaim.value, False)],
                            page=page)
    return Page([{"kind": r.kind, "key": KEY_OF_KIND.get(r.kind, r.kind), "value": r.value,
                  "claimed_at": r.created_at.isoformat()} for r in rows.items], rows.next_cursor)


def parse_proposed(routing: object) -> list[tuple[str, str]]:
    """``{"slack_channel_ids": [...], ...}`` → ``[(kind, normalised value)]`` in the given order,
    without duplicates; 422 ``invalid_claims`` naming the key on anything else."""
    if not isinstance(routing, Mapping):
        raise Unprocessable("routing must be an object of claim lists", code="invalid_claims")
    out: dict[tuple[str, str], None] = {}
    for key, values in routing.items():
        kind = ROUTING_CLAIM_KEYS.get(key)
        if kind is None:
            raise Unprocessable(f"unknown claim list {str(key)[:64]!r}; expected one of {list(ROUTING_CLAIM_KEYS)}",
                                code="invalid_claims", details={"key": str(key)[:64]})
        if not isinstance(values, list) or not all(isinstance(v, str) and 0 < len(v) <= MAX_CLAIM_LEN
                                                    and "\x00" not in v for v in values):
            raise Unprocessable(f"routing.{key} must be a list of strings of 1..{MAX_CLAIM_LEN} characters",
                                code="invalid_claims", details={"key": key})
        for v in values:
            if normalized := normalize_claim(kind, v):
                out.setdefault((kind, normalized), None)
    if len(out) > MAX_CHECK:
        raise Unprocessable(f"at most {MAX_CHECK} claims per check", code="invalid_claims")
    return list(out)


async def check_claims(session: AsyncSession, *, org_id: str, node_id: str, routing: object,
                       viewer: Principal) -> dict[str, Any]:
    """Dry run of claiming ``routing`` for ``node_id``: every claim with ``status`` ``held`` (this team
    has it), ``available``, or ``conflict`` (with the owner, or ``claimed_elsewhere``). Writes nothing."""
    node = await get_node(session, org_id=org_id, node_id=node_id)
    if node.kind != "team":
        raise Unprocessable("only team nodes claim routing identifiers", code="not_a_team",
                            details={"node_id": node_id, "kind": node.kind})
    proposed = parse_proposed(routing)
    held = {(r.kind, r.value) for r in (await session.execute(
        select(RoutingClaim.kind, RoutingClaim.value)
        .where(RoutingClaim.org_id == org_id, RoutingClaim.team_node_id == node_id))).all()}
    foreign = await find_foreign_owners(session, org_id=org_id, team_node_id=node_id, claims=set(proposed))
    conflicts = {(c["kind"], c["value"]): c for c in visible_conflicts(foreign, viewer)}
    items = []
    for kind, value in proposed:
        item: dict[str, Any] = {"kind": kind, "key": KEY_OF_KIND[kind], "value": value}
        if (kind, value) in conflicts:
            c = conflicts[(kind, value)]
            item.update(status="conflict", owner_org_id=c["owner_org_id"],
                        owner_team_node_id=c["owner_team_node_id"], claimed_elsewhere=c["claimed_elsewhere"])
        else:
            item["status"] = "held" if (kind, value) in held else "available"
        items.append(item)
    return {"org_id": org_id, "node_id": node_id, "items": items,
            "conflicts": sum(1 for i in items if i["status"] == "conflict")}
