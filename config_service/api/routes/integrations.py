"""A node's integrations and their "test connection" action (org admin, or the team's own token)."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request

from config_service.api.deps import SessionDep, SettingsDep, TeamReaderDep
from config_service.services import integrations as svc
from incidentfox.pagination import LongPageDep, envelope, page_responses

router = APIRouter(prefix="/api/v1/orgs/{org}/nodes/{node}/integrations", tags=["integrations"])
NameParam = Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="the integration, e.g. prometheus")


def _prober(request: Request):
    return getattr(request.app.state, "integration_prober", None)


@router.get("", responses=page_responses("IntegrationPage"))
async def list_integrations(org: str, node: str, principal: TeamReaderDep, session: SessionDep, request: Request,
                            page: LongPageDep) -> dict:
    """``{items: [{name, enabled, testable, set_by, config}], next_cursor}``: the node's effective
    ``integrations`` blocks by name, secrets masked."""
    prober = _prober(request)
    return envelope(await svc.list_integrations(session, org_id=org, node_id=node, page=page,
                                                testable=prober.names if prober else frozenset()))


@router.post("/{name}/test")
async def test_integration(org: str, node: str, principal: TeamReaderDep, session: SessionDep,
                           settings: SettingsDep, request: Request, name: str = NameParam) -> dict:
    """Run the integration's probe, one cheap read-only request through the egress policy with a
    short timeout: ``{name, ok, reason, detail, latency_ms, status_code, target}`` (200 whether or not
    the service answered; ``reason`` says why not: ``unauthorized``, ``egress_refused``, ``timeout``,
    …). 404 ``integration_not_found``; 422 ``probe_not_supported``. Audited as ``integration.test``."""
    return await svc.test_integration(session, settings=settings, org_id=org, node_id=node, name=name,
                                      prober=_prober(request), actor=principal.subject)
