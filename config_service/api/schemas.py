"""Request bodies. Strict: no coercion (``"3"`` is not a version), unknown fields refused."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class OrgCreate(_Body):
    org_id: str = Field(max_length=64, description="^[a-z0-9][a-z0-9-]{0,30}$")
    name: str = Field(min_length=1, max_length=200)


class NodeCreate(_Body):
    node_id: str = Field(max_length=64, description="^[a-z0-9][a-z0-9-]{0,30}$")
    parent_id: str | None = Field(default=None, max_length=64, description="null or omitted: under the org root")
    kind: Literal["unit", "team"]
    name: str | None = Field(default=None, max_length=200)


class NodeUpdate(_Body):
    parent_id: str | None = Field(default=None, max_length=64, description="move under this node")
    name: str | None = Field(default=None, max_length=200)


class Rollback(_Body):
    version: int = Field(ge=0, le=2**31 - 1)


class ClaimCheck(_Body):
    routing: dict[str, list[str]] = Field(description="claim lists as in the config's routing section, "
                                                      "e.g. {\"slack_channel_ids\": [\"C0123\"]}")


class TokenCreate(_Body):
    label: str = Field(default="", max_length=200)
    expires_in_s: int | None = Field(default=None, gt=0, description="omit for a token that does not expire")


class ImpersonationCreate(_Body):
    ttl_s: int | None = Field(default=None, ge=1, le=900)
    audience: str | None = Field(default=None, min_length=1, max_length=64)


class RoutingLookup(_Body):
    identifiers: dict[str, str | None] = Field(
        description="singular keys: slack_channel_id, github_repo, pagerduty_service_id, incidentio_team_id, "
                    "alertmanager_receiver, service")


CONFIG_PATCH_SCHEMA = {"type": "object", "description": "RFC 7396 JSON merge patch (null removes a key)",
                       "additionalProperties": True}
