"""The platform egress allow-list: read, replace, history (global admin only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from config_service.api.body import body_doc, read_json
from config_service.api.deps import GlobalAdminDep, SessionDep, SettingsDep
from config_service.services import egress
from config_service.services.egress import MAX_ENTRIES, EntryIn
from incidentfox.pagination import PageDep, envelope, page_responses

router = APIRouter(prefix="/api/v1/admin/egress-allowlist", tags=["egress"])


class AllowEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    entry: str = Field(min_length=1, max_length=300,
                       description="host[:port] (name, *.suffix or IP) or CIDR[:port]; IPv6 in [] before a port")
    comment: str = Field(default="", max_length=300)


class AllowlistPut(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    entries: list[AllowEntry] = Field(max_length=MAX_ENTRIES)


@router.get("")
async def get_allowlist(principal: GlobalAdminDep, session: SessionDep, settings: SettingsDep) -> dict:
    """``{entries: [{entry, comment, added_by, added_at}], operator_entries}`` (global admin)."""
    return await egress.get_allowlist(session, settings=settings)


@router.put("", openapi_extra=body_doc(AllowlistPut))
async def put_allowlist(request: Request, principal: GlobalAdminDep, session: SessionDep,
                        settings: SettingsDep) -> dict:
    """Replace the stored entries; audited as ``egress_allowlist.update`` (global admin). 422
    ``invalid_egress_entry`` names a malformed entry."""
    body = await read_json(request, AllowlistPut)
    return await egress.replace_allowlist(session, entries=[EntryIn(e.entry, e.comment) for e in body.entries],
                                          actor=principal.subject, settings=settings)


@router.get("/audit", responses=page_responses("AuditPage"))
async def allowlist_history(principal: GlobalAdminDep, session: SessionDep, page: PageDep) -> dict:
    """Who changed the allow-list and how, newest first (global admin)."""
    return envelope(await egress.history(session, page=page))
