"""Per-org and per-team webhook signing secrets (org admin of the org, or the global admin).

``POST`` generates (platform-issued sources, body may be empty) or sets (``{"secret": …}``) the
scope's secret for a source, rotating any existing one with a grace window; a generated secret is
in that answer only. ``GET`` lists metadata, never a secret. See
:mod:`config_service.services.webhook_secrets` for the contract.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from config_service.api.body import body_doc, read_json
from config_service.api.deps import OrgAdminDep, SessionDep, SettingsDep
from config_service.services import webhook_secrets as svc
from incidentfox.pagination import LongPageDep, envelope, page_responses

router = APIRouter(prefix="/api/v1/orgs/{org}", tags=["webhook-secrets"])


class WebhookSecretPut(BaseModel):
    """Omit ``secret`` to have one generated (GitHub, Alertmanager, Grafana); Slack, PagerDuty and
    incident.io issue their own, which you paste here. ``grace_s``: how long the replaced secret
    keeps verifying (0 revokes it now)."""

    model_config = ConfigDict(extra="forbid")
    secret: str | None = Field(default=None, max_length=512)
    grace_s: int = Field(default=svc.DEFAULT_GRACE_S, ge=0, le=svc.MAX_GRACE_S)
    signature_header: str | None = Field(default=None, max_length=80)
    timestamp_header: str | None = Field(default=None, max_length=80)

    def options(self) -> dict[str, str] | None:
        """The options to store, or None to keep the stored ones (neither field was sent)."""
        names = ("signature_header", "timestamp_header")
        if not set(names) & self.model_fields_set:
            return None
        return {k: getattr(self, k) or "" for k in names}


async def _put(org: str, node: str, source: str, request: Request, response: Response, principal, session,
               settings) -> dict:
    body = await read_json(request, WebhookSecretPut, allow_empty=True)
    view, created = await svc.put_webhook_secret(session, settings=settings, org_id=org, node_id=node,
                                                 source=source, actor=principal.subject, secret=body.secret,
                                                 grace_s=body.grace_s, options=body.options())
    response.status_code = 201 if created else 200
    return view


@router.post("/webhook-secrets/{source}", openapi_extra=body_doc(WebhookSecretPut, required=False))
async def put_org_secret(org: str, source: str, request: Request, response: Response, principal: OrgAdminDep,
                         session: SessionDep, settings: SettingsDep) -> dict:
    """Generate, set or rotate the org's secret for ``source`` (201 when new, 200 on rotation)."""
    return await _put(org, org, source, request, response, principal, session, settings)


@router.post("/teams/{team}/webhook-secrets/{source}", openapi_extra=body_doc(WebhookSecretPut, required=False))
async def put_team_secret(org: str, team: str, source: str, request: Request, response: Response,
                          principal: OrgAdminDep, session: SessionDep, settings: SettingsDep) -> dict:
    """The same for one team: deliveries to the team's URL go to that team only."""
    return await _put(org, team, source, request, response, principal, session, settings)


@router.get("/webhook-secrets", responses=page_responses("WebhookSecretPage"))
async def list_org_secrets(org: str, principal: OrgAdminDep, session: SessionDep, page: LongPageDep) -> dict:
    """Every scope's secrets in the org: source, scope, version, dates, URL path; never a secret."""
    return envelope(await svc.list_webhook_secrets(session, org_id=org, page=page))


@router.get("/teams/{team}/webhook-secrets", responses=page_responses("WebhookSecretPage"))
async def list_team_secrets(org: str, team: str, principal: OrgAdminDep, session: SessionDep,
                            page: LongPageDep) -> dict:
    """One team's secrets (metadata only)."""
    return envelope(await svc.list_webhook_secrets(session, org_id=org, node_id=team, page=page))


@router.delete("/webhook-secrets/{source}")
async def delete_org_secret(org: str, source: str, principal: OrgAdminDep, session: SessionDep) -> dict:
    """Remove the org's secret for ``source``; its URL then answers 401."""
    return await svc.delete_webhook_secret(session, org_id=org, node_id=org, source=source, actor=principal.subject)


@router.delete("/teams/{team}/webhook-secrets/{source}")
async def delete_team_secret(org: str, team: str, source: str, principal: OrgAdminDep, session: SessionDep) -> dict:
    """Remove the team's secret for ``source``."""
    return await svc.delete_webhook_secret(session, org_id=org, node_id=team, source=source,
                                           actor=principal.subject)
