"""Where a webhook's signature says it comes from: the shared URL, an org's, or a team's. Pure.

``POST /webhooks/<endpoint>`` is the shared (single-tenant) URL, verified with the environment's
secret. ``POST /webhooks/<endpoint>/o/<org>`` and ``…/o/<org>/t/<team>`` are verified with that
org's or team's own secret, so the URL path, never a body field, picks the key; a delivery verified
there is a :class:`Scope` with ``org_id`` (and ``team_id``) set, and may act only inside it.

Dedupe keys are scoped too (:func:`scoped_trigger`): ``UNIQUE(source, delivery_id)`` is global, so
without a prefix a tenant holding its own signing secret could record a delivery id first (say a
PagerDuty ``event.id`` or a GitHub body hash it has seen) and turn another org's later delivery
into a "duplicate" that never runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from incidentfox.contracts import Trigger

DELIVERY_ID_MAX = 255


@dataclass(frozen=True)
class Scope:
    """``org_id`` None: the shared URL. ``team_id`` set only with ``org_id``."""

    org_id: str | None = None
    team_id: str | None = None

    def __post_init__(self) -> None:
        if self.team_id is not None and self.org_id is None:
            raise ValueError("a team scope needs its org")

    @property
    def shared(self) -> bool:
        return self.org_id is None

    @property
    def node_id(self) -> str | None:
        """The config node holding the secret: the team, else the org root (``node_id == org_id``)."""
        return self.team_id or self.org_id

    @property
    def label(self) -> str:
        if self.org_id is None:
            return "shared"
        return f"o/{self.org_id}" + (f"/t/{self.team_id}" if self.team_id else "")


SHARED = Scope()


def scoped_delivery_id(scope: Scope, delivery_id: str) -> str:
    """``delivery_id`` unchanged on the shared URL; ``<label>:<id>`` for an org or team scope
    (``<label>:sha256:<hex>`` when that would exceed 255 characters). Ids of different scopes never
    meet; within one scope only that scope's own signer could arrange a collision."""
    if scope.shared:
        return delivery_id
    scoped = f"{scope.label}:{delivery_id}"
    if len(scoped) <= DELIVERY_ID_MAX:
        return scoped
    return f"{scope.label}:sha256:{hashlib.sha256(delivery_id.encode('utf-8', 'surrogatepass')).hexdigest()}"


def scoped_trigger(trigger: Trigger, scope: Scope) -> Trigger:
    """``trigger`` with its delivery id (and ``payload_ref``) scoped by :func:`scoped_delivery_id`."""
    if scope.shared:
        return trigger
    did = scoped_delivery_id(scope, trigger.delivery_id)
    return trigger.model_copy(update={"delivery_id": did, "payload_ref": f"delivery:{trigger.source}:{did}"})


class ScopeRefusal(StrEnum):
    """Why a verified delivery may not act on what it names (``IntakeResult.detail``)."""

    OTHER_ORG = "run_in_another_org"        # the run belongs to an org other than the signed one
    OTHER_TEAM = "run_in_another_team"      # a team-signed delivery naming another team's run
    UNSCOPED = "interaction_org_unknown"    # neither the URL nor the channel says which org


def refusal(*, scope_org: str | None, scope_team: str | None, run_org: str, run_team: str,
            routed_org: str | None = None) -> ScopeRefusal | None:
    """Whether a run is out of bounds for a delivery. ``scope_*`` come from the signed URL,
    ``routed_org`` from the channel's routing claim; with neither, the org is unknown."""
    if scope_org is None and routed_org is None:
        return ScopeRefusal.UNSCOPED
    if run_org != (scope_org or routed_org) or (routed_org is not None and run_org != routed_org):
        return ScopeRefusal.OTHER_ORG
    if scope_team is not None and run_team != scope_team:
        return ScopeRefusal.OTHER_TEAM
    return None
