"""Typed shapes of the trace, log-search and broker integration blocks (``integrations.tempo``,
``integrations.jaeger``, ``integrations.elasticsearch``, ``integrations.rabbitmq``,
``integrations.argocd``; X-Ray reads ``integrations.aws``, checked by
:mod:`incidentfox.aws_credentials`) and of the answer-back keys of ``integrations.github``,
``integrations.pagerduty`` and ``integrations.incidentio`` (``actors.answerback``).

The config validator runs :func:`integration_block_problems` on every write, so a block the tools
would misread (``verify_ssl: "false"``, a list of headers) is refused with its field path, never its
value. In every block, typed or not, ``headers`` may not name ``Host`` or a hop-by-hop or framing
header (:mod:`incidentfox.tenant_headers`): the path names the header; and a value sent in a
request header (``headers`` values, ``token``, ``api_key`` …) may hold no control character and no
blank at either end (:func:`single_line_problems`). Unknown keys are kept, as everywhere in the config. Nothing here has a default: an unset key
means the tool's own default (documented in ``docs/tools.md``), and a default in the config layer
would make every team look as if it had configured the integration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from incidentfox.tenant_headers import is_reserved_header

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
    headers: dict[str, Text] | None = Field(default=None, description=(
        "Extra request headers; not `Host`, `Connection`, `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`, "
        "`Transfer-Encoding`, `Upgrade` or `Content-Length`."))
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


class _AnswerBlock(BaseModel):
    """The keys a block shares for answering a run's RCA where its alert came from."""

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)

    answer_back: bool | None = Field(default=None, description=(
        "True: a run started by this source's delivery also answers there with its RCA (unset: off)."))


class GitHubBlock(_AnswerBlock):
    """``integrations.github``: the tools' ``token``/``repos`` (docs/tools.md) and the GitHub App that
    answers (a check run on a failed check's commit, a comment on the issue or pull request)."""

    api_url: Url | None = Field(default=None, description="REST base URL (unset: https://api.github.com).")
    app_id: Annotated[int, Field(ge=1)] | Annotated[str, StringConstraints(pattern=r"^[0-9]{1,20}$")] | None = Field(
        default=None, description="The GitHub App's id (the JWT's `iss`).")
    private_key: Annotated[str, StringConstraints(min_length=1, max_length=16384)] | None = Field(
        default=None, description="The App's PEM private key (a secret).")
    installation_id: Annotated[int, Field(ge=1)] | None = Field(default=None, description=(
        "The App installation to act as when the delivery names none (an org's repository webhook)."))
    check_run_name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None, description="Name of the check run that carries the RCA (unset: `IncidentFox RCA`).")


class PagerDutyBlock(_AnswerBlock):
    """``integrations.pagerduty``: the REST API key that writes the incident note, and its ``From``."""

    api_url: Url | None = Field(default=None, description="REST base URL (unset: https://api.pagerduty.com).")
    token: Text | None = Field(default=None, description="REST API key, sent as `Token token=…` (a secret).")
    from_email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$", max_length=320)] | None = Field(
        default=None, description="The PagerDuty user's email sent as `From` (required by notes and status changes).")
    set_status: Literal["acknowledged", "resolved"] | None = Field(default=None, description=(
        "Once the RCA note is posted, move the incident to this status (unset: leave it)."))


class IncidentIoBlock(_AnswerBlock):
    """``integrations.incidentio``: the API key that posts the RCA as an incident update."""

    api_url: Url | None = Field(default=None, description="API base URL (unset: https://api.incident.io).")
    api_key: Text | None = Field(default=None, description="API key with permission to post updates (a secret).")


BLOCKS: dict[str, type[BaseModel]] = {"tempo": TempoBlock, "jaeger": JaegerBlock, "elasticsearch": ElasticsearchBlock,
                                      "rabbitmq": RabbitMQBlock, "argocd": ArgoCDBlock,
                                      "github": GitHubBlock, "pagerduty": PagerDutyBlock, "incidentio": IncidentIoBlock}


def integration_block_schemas() -> dict[str, dict[str, Any]]:
    """Each typed block's JSON Schema by integration name (``docs/configuration.md`` lists them)."""
    return {name: model.model_json_schema() for name, model in sorted(BLOCKS.items())}


def integration_block_problems(integrations: Mapping[str, Any], *, placeholder: str | None = None
                               ) -> list[tuple[str, str]]:
    """``[(path, message)]`` for each field of a known block that does not fit its type (values
    never echoed). Blocks that are not objects are the caller's to report. A leaf equal to
    ``placeholder`` is a stored secret shown masked (every leaf under ``integrations`` is one): it
    was checked when it was written, and is skipped."""
    problems = header_problems(integrations) + single_line_problems(integrations, placeholder=placeholder)
    for name, model in BLOCKS.items():
        block = integrations.get(name)
        if not isinstance(block, Mapping):
            continue
        fields = {k: v for k, v in block.items() if placeholder is None or v != placeholder}
        try:
            model.model_validate(fields)
        except ValidationError as exc:
            for err in exc.errors(include_input=False):
                where = ".".join(str(p) for p in err["loc"])
                problems.append((f"integrations.{name}.{where}", err["msg"]))
    return problems


def header_problems(integrations: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``[(path, message)]`` for each header name in any block's ``headers`` that a tenant may not
    set (``Host``, hop-by-hop and framing headers, any case). Names are not secrets (values are):
    the path and message name the header, so the caller knows which one to remove."""
    problems: list[tuple[str, str]] = []
    for name, block in integrations.items():
        headers = block.get("headers") if isinstance(block, Mapping) else None
        if not isinstance(headers, Mapping):
            continue
        for header in headers:
            if isinstance(header, str) and is_reserved_header(header):
                problems.append((f"integrations.{name}.headers.{header}",
                                 f"header {header!r} may not be set by an integration: the platform sets it"))
    return problems


# Keys whose value the tools send in a request header (``Authorization``, ``DD-API-KEY``,
# ``X-Scope-OrgID`` …), besides every ``headers`` value.
HEADER_VALUE_KEYS = frozenset({"token", "bot_token", "api_key", "app_key", "username", "password", "tenant"})
_CONTROL = frozenset(chr(c) for c in (*range(0x20), 0x7F))
SINGLE_LINE_MESSAGE = "holds a control character or a leading or trailing blank (a pasted newline?); remove it"


def single_line_problems(integrations: Mapping[str, Any], *, placeholder: str | None = None
                         ) -> list[tuple[str, str]]:
    """``[(path, message)]`` for each value sent in a request header (every ``headers`` value and the
    keys in :data:`HEADER_VALUE_KEYS`, in any block) that holds a control character or starts or ends
    with a blank: HTTP refuses such a header, and its error would quote the value, a credential. The
    message names the path, never the value."""
    problems: list[tuple[str, str]] = []

    def check(path: str, value: Any) -> None:
        if not isinstance(value, str) or value == placeholder:
            return
        if any(c in _CONTROL for c in value) or value != value.strip():
            problems.append((path, SINGLE_LINE_MESSAGE))

    for name, block in integrations.items():
        if not isinstance(block, Mapping):
            continue
        for key in HEADER_VALUE_KEYS & set(block):
            check(f"integrations.{name}.{key}", block[key])
        headers = block.get("headers")
        if isinstance(headers, Mapping):
            for header, value in headers.items():
                check(f"integrations.{name}.headers.{header}", value)
    return problems
