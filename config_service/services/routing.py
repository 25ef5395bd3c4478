"""Routing claims: which team owns a Slack channel, repo, PagerDuty service, … across all orgs.

Claims live in team configs under ``routing`` and are mirrored into ``routing_claims`` with
``UNIQUE(kind, value)``. A claim another team holds is refused with 409 ``routing_conflict`` naming
the owner; when two transactions race past the pre-check, the unique index decides and the loser
gets the same 409. Every change bumps the global routing epoch, which callers (the gateway's
router) use as a cache key.

Lookup priority (first match wins; most specific first, since a channel or a PagerDuty service
belongs to one team while a service name or repo may be shared more loosely):
``slack_channel_id`` > ``pagerduty_service_id`` > ``incidentio_team_id`` > ``alertmanager_receiver``
> ``github_repo`` > ``service``. One indexed query covers all the identifiers given (and the epoch).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.jsondoc import check_string
from config_service.core.validation import ROUTING_CLAIM_KEYS, normalize_claim
from config_service.db.models import RoutingClaim, RoutingEpoch
from incidentfox.contracts import ROUTING_KEYS
from incidentfox.errors import Conflict, Unprocessable

LOOKUP_PRIORITY: tuple[str, ...] = ("slack_channel_id", "pagerduty_service_id", "incidentio_team_id",
                                    "alertmanager_receiver", "github_repo", "service")
assert set(LOOKUP_PRIORITY) == set(ROUTING_KEYS)


def claims_from_config(config: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``{(kind, normalised value)}`` a team config claims (from its ``routing`` lists)."""
    routing = config.get("routing")
    out: set[tuple[str, str]] = set()
    if isinstance(routing, Mapping):
        for key, kind in ROUTING_CLAIM_KEYS.items():
            for value in routing.get(key) or ():
                if isinstance(value, str) and value.strip():
                    out.add((kind, normalize_claim(kind, value)))
    return out


def _match(pairs: set[tuple[str, str]]):
    return or_(*(and_(RoutingClaim.kind == k, RoutingClaim.value == v) for k, v in sorted(pairs)))


async def find_foreign_owners(session: AsyncSession, *, org_id: str, team_node_id: str,
                              claims: set[tuple[str, str]]) -> list[dict[str, str]]:
    """Claims in ``claims`` already held by another team (any org)."""
    if not claims:
        return []
    rows = (await session.execute(
        select(RoutingClaim.kind, RoutingClaim.value, RoutingClaim.org_id, RoutingClaim.team_node_id)
        .where(_match(claims))
    )).all()
    return [{"kind": r.kind, "value": r.value, "owner_org_id": r.org_id, "owner_team_node_id": r.team_node_id}
            for r in rows if (r.org_id, r.team_node_id) != (org_id, team_node_id)]


def conflict_error(conflicts: list[dict[str, str]]) -> Conflict:
    first = conflicts[0]
    return Conflict(
        f"{first['kind']} {first['value']!r} is already claimed by team "
        f"{first['owner_team_node_id']!r} in org {first['owner_org_id']!r}",
        code="routing_conflict", details={"conflicts": conflicts},
    )


async def sync_team_claims(session: AsyncSession, *, org_id: str, team_node_id: str,
                           claims: set[tuple[str, str]]) -> bool:
    """Make the team's mirrored claims equal ``claims`` inside the caller's transaction.

    Returns whether anything changed (and then bumps the routing epoch). Raises 409
    ``routing_conflict`` if another team holds one of them; the caller's commit can still raise
    ``IntegrityError`` when a concurrent transaction won the race (see ``services.config``).
    """
    existing = {(r.kind, r.value) for r in (await session.execute(
        select(RoutingClaim.kind, RoutingClaim.value)
        .where(RoutingClaim.org_id == org_id, RoutingClaim.team_node_id == team_node_id)
    )).all()}
    to_add, to_drop = claims - existing, existing - claims
    if not to_add and not to_drop:
        return False
    if conflicts := await find_foreign_owners(session, org_id=org_id, team_node_id=team_node_id, claims=to_add):
        raise conflict_error(conflicts)
    if to_drop:
        await session.execute(delete(RoutingClaim).where(
            RoutingClaim.org_id == org_id, RoutingClaim.team_node_id == team_node_id, _match(to_drop)))
    session.add_all(RoutingClaim(kind=k, value=v, org_id=org_id, team_node_id=team_node_id)
                    for k, v in sorted(to_add))
    await session.flush()
    await bump_routing_epoch(session)
    return True


async def bump_routing_epoch(session: AsyncSession) -> int:
    result = await session.execute(
        update(RoutingEpoch).where(RoutingEpoch.id == 1).values(epoch=RoutingEpoch.epoch + 1)
        .returning(RoutingEpoch.epoch)
    )
    epoch = result.scalar_one_or_none()
    if epoch is None:  # a database created without the migration's seed row
        session.add(RoutingEpoch(id=1, epoch=1))
        await session.flush()
        epoch = 1
    return epoch


async def get_routing_epoch(session: AsyncSession) -> int:
    """The global routing epoch: it changes whenever any routing claim changes."""
    epoch = (await session.execute(select(RoutingEpoch.epoch).where(RoutingEpoch.id == 1))).scalar_one_or_none()
    return epoch or 0


def parse_identifiers(identifiers: object) -> dict[str, str]:
    """Validate lookup input (singular keys from ``ROUTING_KEYS``) and normalise the values."""
    if not isinstance(identifiers, Mapping):
        raise Unprocessable("identifiers must be an object", code="invalid_identifiers")
    out: dict[str, str] = {}
    for key, value in identifiers.items():
        if key not in ROUTING_KEYS:
            raise Unprocessable(f"unknown identifier {key!r}; expected one of {list(ROUTING_KEYS)}",
                                code="invalid_identifiers", details={"key": str(key)[:64]})
        if value is None:
            continue
        if not isinstance(value, str) or len(value) > 1024:
            raise Unprocessable(f"identifier {key!r} must be a string", code="invalid_identifiers",
                                details={"key": key})
        check_string(value)  # webhook-derived values may carry NUL, which PostgreSQL refuses
        value = normalize_claim(key, value)
        if value:
            out[key] = value
    return out


async def lookup(session: AsyncSession, *, identifiers: Mapping[str, str]) -> dict[str, Any]:
    """Resolve identifiers to their owning team by :data:`LOOKUP_PRIORITY`.

    Returns ``{found, org_id, team_node_id, matched_by, matched_value, epoch}``. One statement
    reads the epoch and the matching claims together (the epoch row left-joined to an indexed
    ``(kind, value)`` search), so the epoch always describes the claims returned with it.
    """
    ids = parse_identifiers(identifiers)
    result: dict[str, Any] = {"found": False, "org_id": None, "team_node_id": None, "matched_by": None,
                              "matched_value": None, "epoch": 0}
    if not ids:
        result["epoch"] = await get_routing_epoch(session)
        return result
    epoch_t, claim_t = RoutingEpoch.__table__, RoutingClaim.__table__
    rows = (await session.execute(
        select(epoch_t.c.epoch, claim_t.c.kind, claim_t.c.value, claim_t.c.org_id, claim_t.c.team_node_id)
        .select_from(epoch_t.outerjoin(claim_t, _match(set(ids.items()))))
        .where(epoch_t.c.id == 1)
    )).all()
    if rows:
        result["epoch"] = rows[0].epoch
        matches = [r for r in rows if r.kind is not None]
        if matches:
            best = min(matches, key=lambda r: LOOKUP_PRIORITY.index(r.kind))
            result.update(found=True, org_id=best.org_id, team_node_id=best.team_node_id, matched_by=best.kind,
                          matched_value=best.value)
    return result


async def routing_table(session: AsyncSession) -> dict[str, Any]:
    """Every claim and the epoch it belongs to, for routers that keep a last good table."""
    epoch = await get_routing_epoch(session)
    rows = (await session.execute(
        select(RoutingClaim.kind, RoutingClaim.value, RoutingClaim.org_id, RoutingClaim.team_node_id)
        .order_by(RoutingClaim.kind, RoutingClaim.value)
    )).all()
    return {"epoch": epoch, "claims": [{"kind": r.kind, "value": r.value, "org_id": r.org_id,
                                        "team_node_id": r.team_node_id} for r in rows]}
