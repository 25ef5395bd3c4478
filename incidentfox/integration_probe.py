"""The "test connection" contract between the config service and the tool backends.

The config service answers ``POST …/integrations/{name}/test`` but knows nothing of how each tool
backend talks to its service; the backends (``actors.tools.probes``) know that but sit above the
config service. So the platform hands the config app an :class:`IntegrationProber` (names it can
probe, and the probe itself), the same way it hands it the merged OpenAPI document.

A probe is one cheap read-only request (the backend's own base URL and auth), sent through the
egress policy with a short timeout. Its :class:`ProbeResult` never carries a credential: ``detail``
is written by the probe (status line, refusal reason, error class), never an upstream body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

# Why a probe failed (``ok`` false): snake_case, like the tools' ``ToolResult.error``.
PROBE_REASONS: tuple[str, ...] = (
    "not_configured", "unauthorized", "forbidden", "not_found", "http_error", "egress_refused",
    "timeout", "connection_error",
)


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    """``ok``: the service answered 2xx. ``reason``: one of :data:`PROBE_REASONS` when not ok.
    ``latency_ms``: time to the response headers (null when nothing was sent). ``target``: the
    probed path (never the host: the API masks an integration's URL like its other leaves)."""

    ok: bool
    detail: str
    latency_ms: int | None = None
    reason: str | None = None
    status_code: int | None = None
    target: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ProbeFn = Callable[[str, Mapping[str, Any]], Awaitable[ProbeResult]]


@dataclass(frozen=True)
class IntegrationProber:
    """``names``: the integrations with a probe; ``probe(name, block)``: run one (``block`` is the
    team's revealed ``integrations.<name>`` config)."""

    names: frozenset[str]
    probe: ProbeFn = field(repr=False)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret value of at least 4 characters replaced by ``***`` (a last guard:
    probes already keep credentials out of ``detail``)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
