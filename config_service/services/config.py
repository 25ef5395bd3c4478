"""Node configs: merge-patch writes, versions, rollback, and the (cached) effective config.

* Effective config = built-in defaults, then the org, every unit down the path, then the node:
  objects deep-merge, scalars and lists replace (:mod:`config_service.core.merge`). Each node's
  ``locked_paths`` is not merged; the effective config lists the union of the chain's locks, and a
  value a node set under a path an ancestor locked later is ignored.
* Writes are RFC 7396 merge patches. A write first bumps the org epoch (so the next read, in any
  process, misses the cache), then checks ancestor locks (409 ``path_locked``), validates the
  resulting config (422 ``invalid_config``; on a team, also that no schedule it newly points at a
  Slack channel is one the team does not have: :mod:`config_service.services.channels`), encrypts
  secret leaves, mirrors routing claims
  (409 ``routing_conflict``) and stores version ``n + 1`` with its masked diff and an audit entry,
  all in one transaction. A refused write stores nothing.
* Stored configs hold secrets encrypted; :func:`get_effective_config` masks them unless
  ``reveal_secrets=True`` (engine use, never an HTTP response).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.crypto import settings_cipher
from config_service.core.defaults import DEFAULT_CONFIG
from config_service.core.jsondoc import MAX_DB_INT, check_tree
from config_service.core.locks import node_locks, prune_locked, raise_if_locked
from config_service.core.merge import (
    Path,
    changes,
    deep_merge,
    iter_leaves,
    merge_patch,
    patch_paths,
    split_path,
)
from config_service.core.secret_fields import (
    decrypt_secrets,
    drop_masked,
    encrypt_patch,
    mask_changes,
    mask_secrets,
    seal_plaintext,
)
from config_service.core.validation import normalize_patch, validate_config
from config_service.db.models import ConfigNode, ConfigVersion
from config_service.services import audit
from config_service.services.cache import EFFECTIVE_CACHE, database_key
from config_service.services.channels import schedule_channel_problems
from config_service.services.nodes import get_node, load_chain
from config_service.services.orgs import bump_org_epoch, org_epoch
from config_service.services.routing import (
    claims_from_config,
    conflict_error,
    find_foreign_owners,
    sync_team_claims,
)
from config_service.services.tx import rolls_back_on_error
from incidentfox.db import utcnow
from incidentfox.errors import Conflict, NotFound, Unprocessable
from incidentfox.mcp_allowlist import load_allowlist, unknown_names
from incidentfox.pagination import FIRST_PAGE, PageRequest, fetch_page
from incidentfox.settings import Settings, get_settings

log = logging.getLogger("incidentfox.config_service")


def _target(node: ConfigNode) -> str:
    return f"node:{node.org_id}/{node.node_id}"


async def check_mcp_names(session: AsyncSession, config: Mapping[str, Any]) -> None:
    """Refuse (422 ``invalid_config``) ``investigation.mcp_servers`` names that are not on the
    platform's MCP allow-list: a team picks servers, it never supplies one."""
    inv = config.get("investigation")
    attached = inv.get("mcp_servers") if isinstance(inv, Mapping) else None
    if not attached:
        return
    names = [a.get("name") for a in attached if isinstance(a, Mapping)]
    missing = set(unknown_names([n for n in names if isinstance(n, str)], await load_allowlist(session)))
    errors = [{"path": f"investigation.mcp_servers.{i}.name",
               "message": f"{n!r} is not on the platform's MCP allow-list (ask the global admin to add it)"}
              for i, n in enumerate(names) if n in missing]
    if errors:
        raise Unprocessable("MCP servers not on the platform allow-list: " + ", ".join(sorted(missing)),
                            code="invalid_config", details={"errors": errors})


class _Layer(NamedTuple):
    """A node's config as a write would leave it (what :func:`_compose` reads of a node)."""

    node_id: str
    config: Mapping[str, Any]


async def check_schedule_channels(session: AsyncSession, *, node: ConfigNode, chain: list[ConfigNode],
                                  new_config: Mapping[str, Any]) -> None:
    """Refuse (422 ``invalid_config``, the schedule's path) a team write after which one of the team's
    schedules posts to a Slack channel the team does not have, unless it already did before the
    write (a claim that moved away is the scheduler's to refuse at post time, not a reason to block
    every other write). Org and unit writes are left to that post-time check: their schedules are
    every team's below them."""
    if node.kind != "team":
        return
    before, _, _ = _compose(chain)
    after, _, _ = _compose([*chain[:-1], _Layer(node.node_id, new_config)])
    ids = {"org_id": node.org_id, "team_id": node.node_id}
    known = {(p["schedule"], p["channel"]) for p in await schedule_channel_problems(session, **ids, config=before)}
    new = [p for p in await schedule_channel_problems(session, **ids, config=after)
           if (p["schedule"], p["channel"]) not in known]
    if new:
        raise Unprocessable("a schedule posts to a Slack channel that is not the team's", code="invalid_config",
                            details={"errors": [{"path": p["path"], "message": p["message"]} for p in new]})


@rolls_back_on_error
async def patch_config(session: AsyncSession, *, settings: Settings, org_id: str, node_id: str,
                       patch: Mapping[str, Any], actor: str) -> dict[str, Any]:
    """Apply a merge patch to a node's raw config and store the next version. Commits.

    Returns ``{org_id, node_id, version, config (masked raw), diff (masked)}``.
    """
    if not isinstance(patch, Mapping):
        raise Unprocessable("a config patch must be a JSON object", code="invalid_patch")
    check_tree(patch)
    await bump_org_epoch(session, org_id=org_id)
    node = await get_node(session, org_id=org_id, node_id=node_id, for_update=True)
    patch = normalize_patch(drop_masked(patch))
    chain = await load_chain(session, node=node)
    raise_if_locked(touched=patch_paths(patch), ancestors=[(n.node_id, n.config) for n in chain[:-1]])
    merged = merge_patch(mask_secrets(node.config), patch)
    validate_config(merged, kind=node.kind)
    await check_mcp_names(session, merged)
    await check_schedule_channels(session, node=node, chain=chain, new_config=merged)
    sealed = encrypt_patch(patch, stored=node.config, cipher=settings_cipher(settings))
    new_config = merge_patch(node.config, sealed)
    return await _write_version(session, node=node, new_config=new_config, action="config.patch", actor=actor)


@rolls_back_on_error
async def rollback_config(session: AsyncSession, *, settings: Settings, org_id: str, node_id: str, version: int,
                          actor: str) -> dict[str, Any]:
    """Store version ``version``'s config as a new version (same checks as a write). Commits. A
    version written before secrets in lists were encrypted is stored sealed (:func:`seal_plaintext`)."""
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= MAX_DB_INT:
        raise Unprocessable("version must be a non-negative integer", code="invalid_version")
    await bump_org_epoch(session, org_id=org_id)
    node = await get_node(session, org_id=org_id, node_id=node_id, for_update=True)
    row = (await session.execute(select(ConfigVersion).where(
        ConfigVersion.org_id == org_id, ConfigVersion.node_id == node_id, ConfigVersion.version == version,
    ))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"version {version} of node {node_id!r} not found", code="version_not_found",
                       details={"version": version, "current_version": node.version})
    target = seal_plaintext(row.config, settings_cipher(settings))
    chain = await load_chain(session, node=node)
    touched = [split_path(c["path"]) for c in changes(node.config, target)]
    raise_if_locked(touched=touched, ancestors=[(n.node_id, n.config) for n in chain[:-1]])
    validate_config(mask_secrets(target), kind=node.kind)
    await check_mcp_names(session, target)
    await check_schedule_channels(session, node=node, chain=chain, new_config=target)
    return await _write_version(session, node=node, new_config=target, action="config.rollback", actor=actor,
                                restored_from=version)


async def _write_version(session: AsyncSession, *, node: ConfigNode, new_config: dict[str, Any], action: str,
                         actor: str, restored_from: int | None = None) -> dict[str, Any]:
    diff = mask_changes(changes(node.config, new_config))
    org_id, node_id = node.org_id, node.node_id
    claims = claims_from_config(new_config) if node.kind == "team" else set()
    version = node.version + 1
    try:
        if node.kind == "team":
            await sync_team_claims(session, org_id=org_id, team_node_id=node_id, claims=claims)
        node.config = new_config
        node.version = version
        node.updated_at = utcnow()
        session.add(ConfigVersion(org_id=org_id, node_id=node_id, version=version, action=action.split(".")[-1],
                                  config=new_config, diff=diff, restored_from=restored_from, actor=actor,
                                  created_at=node.updated_at))
        audit.record(session, org_id=org_id, actor=actor, action=action, target=_target(node),
                     diff={"version": version, "changes": diff, "restored_from": restored_from})
        await session.commit()
    except IntegrityError:
        # Org writes are serialised by the epoch bump, so the unique index that can fire here is
        # routing_claims: a team in another org committed the same claim after our pre-check.
        await session.rollback()
        conflicts = await find_foreign_owners(session, org_id=org_id, team_node_id=node_id, claims=claims)
        log.info("config write to %s/%s lost a concurrent race (%d routing conflicts)", org_id, node_id,
                 len(conflicts))
        if conflicts:
            raise conflict_error(conflicts) from None
        raise Conflict("a concurrent write won; retry", code="write_conflict") from None
    return {"org_id": org_id, "node_id": node_id, "version": version, "config": mask_secrets(new_config),
            "diff": diff, "restored_from": restored_from}


async def get_raw_config(session: AsyncSession, *, org_id: str, node_id: str) -> dict[str, Any]:
    """``{org_id, node_id, kind, version, config}`` with secrets masked."""
    node = await get_node(session, org_id=org_id, node_id=node_id)
    return {"org_id": org_id, "node_id": node_id, "kind": node.kind, "version": node.version,
            "config": mask_secrets(node.config)}


def _compose(chain: Sequence[ConfigNode | _Layer]) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Effective stored config (secrets still encrypted), leaf sources and lock owners."""
    layers: list[tuple[str, Mapping[str, Any]]] = [("defaults", DEFAULT_CONFIG)]
    locks: dict[str, str] = {}
    for node in chain:
        layer = {k: v for k, v in node.config.items() if k != "locked_paths"}
        if locks:  # ancestors' locks beat values this node set before the lock existed
            layer = prune_locked(layer, list(locks))
        layers.append((node.node_id, layer))
        for lock in node_locks(node.config):
            locks.setdefault(lock, node.node_id)
    effective = deep_merge(*(layer for _, layer in layers))
    effective["locked_paths"] = list(locks)
    sources: dict[Path, str] = {}
    for name, layer in layers:
        for path, _ in iter_leaves(layer):
            sources[path] = name
    leaves = {path for path, _ in iter_leaves(effective)}
    explained = {".".join(p): name for p, name in sources.items() if p in leaves}
    return effective, explained, locks


async def _chain(session: AsyncSession, *, org_id: str, node_id: str) -> list[ConfigNode]:
    node = await get_node(session, org_id=org_id, node_id=node_id)
    return await load_chain(session, node=node)


async def get_effective_config(session: AsyncSession, *, org_id: str, node_id: str, reveal_secrets: bool = False,
                               settings: Settings | None = None) -> dict[str, Any]:
    """The node's effective config (a fresh dict the caller owns).

    Cached per process under the org epoch, which is read first (one primary-key query), so a
    write committed anywhere is visible to the next read. ``reveal_secrets=True`` decrypts secret
    leaves for in-process engine use (``settings`` supplies the Fernet keys; defaults to
    :func:`incidentfox.settings.get_settings`); otherwise they are ``"***"``.
    """
    _, config = await effective_config_with_epoch(session, org_id=org_id, node_id=node_id,
                                                  reveal_secrets=reveal_secrets, settings=settings)
    return config


async def effective_config_with_epoch(session: AsyncSession, *, org_id: str, node_id: str,
                                      reveal_secrets: bool = False,
                                      settings: Settings | None = None) -> tuple[int, dict[str, Any]]:
    """:func:`get_effective_config` plus the org epoch it is valid for (a cache key for callers)."""
    epoch = await org_epoch(session, org_id=org_id)
    # The cache holds the composed document with its secrets still ENCRYPTED: a decrypted tenant
    # credential lives only in the copy handed to the caller (dropped when its run ends), never in
    # this long-lived per-process cache. Decrypting a few leaves per read is cheap.
    key = (database_key(session), org_id, node_id, epoch)
    composed = EFFECTIVE_CACHE.get(key)
    if composed is None:
        composed, _, _ = _compose(await _chain(session, org_id=org_id, node_id=node_id))
        EFFECTIVE_CACHE.put(key, composed)
    if reveal_secrets:
        return epoch, decrypt_secrets(composed, settings_cipher(settings or get_settings()))
    return epoch, mask_secrets(composed)


async def explain_effective_config(session: AsyncSession, *, org_id: str, node_id: str) -> dict[str, Any]:
    """``{config, sources: {leaf path: node id | "defaults"}, locks: {path: node id}}``, masked."""
    effective, sources, locks = _compose(await _chain(session, org_id=org_id, node_id=node_id))
    return {"config": mask_secrets(effective), "sources": sources, "locks": locks}


async def get_history(session: AsyncSession, *, org_id: str, node_id: str, page: PageRequest = FIRST_PAGE,
                      before: int | None = None) -> dict[str, Any]:
    """Versions newest first, each with its masked diff and masked config; page with ``cursor``
    (or, as before, ``before=<next_before>``, used when no cursor is given). Stored diffs are masked
    again on the way out: those written before secrets inside lists were masked still hold them."""
    node = await get_node(session, org_id=org_id, node_id=node_id)
    stmt = select(ConfigVersion).where(ConfigVersion.org_id == org_id, ConfigVersion.node_id == node_id)
    if before is not None and not 0 <= before <= MAX_DB_INT:
        raise Unprocessable(f"before must be within 0..{MAX_DB_INT}", code="invalid_cursor")
    if before is not None and page.cursor is None:
        stmt = stmt.where(ConfigVersion.version < before)
    rows = await fetch_page(session, stmt, order=[(ConfigVersion.version, True)], page=page)
    items = [{"version": r.version, "action": r.action, "actor": r.actor, "created_at": r.created_at.isoformat(),
              "restored_from": r.restored_from, "diff": mask_changes(r.diff), "config": mask_secrets(r.config)}
             for r in rows.items]
    return {"org_id": org_id, "node_id": node_id, "version": node.version, "items": items,
            "next_cursor": rows.next_cursor,
            "next_before": rows.items[-1].version if rows.next_cursor is not None else None}
