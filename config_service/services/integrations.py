"""A node's integrations as the console shows them, and "test connection".

The list reads the explained effective config (so every block says which node set it), masked.
A test reads the block revealed, hands it to the platform's :class:`IntegrationProber` (the tool
backends' probes, injected by the platform: this package sits below them), and records an audit
entry ``integration.test`` with the outcome (never the block, never the probe's detail).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.merge import split_path
from config_service.services import audit
from config_service.services.config import explain_effective_config, get_effective_config
from incidentfox.errors import NotFound, Unprocessable
from incidentfox.integration_probe import IntegrationProber, scrub
from incidentfox.pagination import FIRST_PAGE, Page, PageRequest, page_list
from incidentfox.settings import Settings


def _enabled(block: Any) -> bool:
    if block is True:
        return True
    return isinstance(block, Mapping) and bool(block.get("enabled", bool(block)))


async def list_integrations(session: AsyncSession, *, org_id: str, node_id: str, testable: frozenset[str],
                            page: PageRequest = FIRST_PAGE) -> Page[dict[str, Any]]:
    """Every ``integrations.<name>`` of the node's effective config, by name: ``{name, enabled,
    testable, set_by (node ids that set its leaves), config (masked)}``."""
    explained = await explain_effective_config(session, org_id=org_id, node_id=node_id)
    blocks = explained["config"].get("integrations") or {}
    set_by: dict[str, set[str]] = {}
    for path, source in explained["sources"].items():
        parts = split_path(path)
        if len(parts) >= 2 and parts[0] == "integrations":
            set_by.setdefault(parts[1], set()).add(source)
    items = [{"name": name, "enabled": _enabled(block), "testable": name in testable,
              "set_by": sorted(set_by.get(name, ())), "config": block}
             for name, block in sorted(blocks.items())]
    return page_list(items, page, key=lambda i: (i["name"],), kinds=(str,))


async def test_integration(session: AsyncSession, *, settings: Settings, org_id: str, node_id: str, name: str,
                           prober: IntegrationProber | None, actor: str) -> dict[str, Any]:
    """Probe ``integrations.<name>`` of the node's effective config: ``{name, ok, reason, detail,
    latency_ms, status_code, target}``. 404 ``integration_not_found`` when the node has no such
    block; 422 ``probe_not_supported`` for an integration without a probe."""
    config = await get_effective_config(session, org_id=org_id, node_id=node_id, reveal_secrets=True,
                                        settings=settings)
    block = (config.get("integrations") or {}).get(name)
    if block is None:
        raise NotFound(f"node {node_id!r} has no integration {name[:64]!r}", code="integration_not_found",
                       details={"node_id": node_id})
    if prober is None or name not in prober.names:
        raise Unprocessable(f"there is no connection test for {name[:64]!r}", code="probe_not_supported",
                            details={"testable": sorted(prober.names) if prober else []})
    result = await prober.probe(name, block if isinstance(block, Mapping) else {})
    secrets = [str(v) for v in block.values()] if isinstance(block, Mapping) else []
    body = {"name": name, **result.as_dict(), "detail": scrub(result.detail, secrets)}
    audit.record(session, org_id=org_id, actor=actor, action="integration.test", target=f"node:{org_id}/{node_id}",
                 diff={"integration": name, "ok": result.ok, "reason": result.reason})
    await session.commit()
    return body
