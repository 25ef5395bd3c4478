"""Typed shapes of the trace, log-search and broker integration blocks: ``integrations.tempo``,
``integrations.jaeger``, ``integrations.elasticsearch``, ``integrations.rabbitmq`` and
``integrations.argocd`` (X-Ray reads ``integrations.aws``, checked
by :mod:`incidentfox.aws_credentials`).

The config validator runs :func:`integration_block_problems` on every write, so a block the tools
would misread (``verify_ssl: "false"``, a list of headers) is refused with its field path, never its
value. Unknown keys are kept, as everywhere in the config. Nothing here has a default: an unset key
means the tool's own default (documented in ``docs/tools.md``), and a default in the config layer
would make every team look as if it had configured the integration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2048)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=4096)]
FieldPath = Annotated[str, StringConstraints(pattern=r"^[@A-Za-z0-9_][A-Za-z0-9_.@-]*$", max_length=256)]


class _Block(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)

    enabled: bool | None = Field(default=None, description="False turns the integration off.")
    url: Url | None = Field(default=None, description="Base URL (checked by the egress policy).")
    token: Text | None = Field(default=None, description="Bearer token (a secret).")
    username: Text | None = Field(default=None, description="Basic-auth user.")
    password: Text | None = Field(default=None, description="Basic-auth password (a secret).")
    headers: dict[str, Text] | None = Field(default=None, description="Extra request headers.")
    verify_ssl: bool | None = Field(default=None, description="Verify the server's certificate (unset: true).")


class TempoBlock(_Block):
    tenant: Text | None = Field(default=None, description="Sent as X-Scope-OrgID.")


class JaegerBlock(_Block):
    pass


class ElasticsearchBlock(_Block):
    api_key: Text | None = Field(default=None, description="Sent as `Authorization: ApiKey …` (a secret).")
    index: Text | None = Field(default=None, description="Index or pattern (unset: logs-*).")
    timestamp_field: FieldPath | None = None
    message_field: FieldPath | None = None
    service_field: FieldPath | None = None
    pod_field: FieldPath | None = None
    level_field: FieldPath | None = None


class RabbitMQBlock(_Block):
    pass


class ArgoCDBlock(_Block):
    pass


BLOCKS: dict[str, type[_Block]] = {"tempo": TempoBlock, "jaeger": JaegerBlock, "elasticsearch": ElasticsearchBlock,
                                   "rabbitmq": RabbitMQBlock, "argocd": ArgoCDBlock}


def integration_block_problems(integrations: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(path, message)]`` for each field of a known block that does not fit its type (values
    never echoed). Blocks that are not objects are the caller's to report."""
    problems: list[tuple[str, str]] = []
    for name, model in BLOCKS.items():
        block = integrations.get(name)
        if not isinstance(block, Mapping):
            continue
        try:
            model.model_validate(dict(block))
        except ValidationError as exc:
            for err in exc.errors(include_input=False):
                where = ".".join(str(p) for p in err["loc"])
                problems.append((f"integrations.{name}.{where}", err["msg"]))
    return problems
