"""Per-org and per-team webhook signing secrets: generate or set, rotate with a grace window, list,
delete, and load (decrypted) for the gateway.

Contract (issue 12, "Per-org webhook credentials"):

* A scope is an org (``node_id == org_id``) or one of its teams. Each scope holds at most one
  secret per source, Fernet-encrypted at rest with ``INCIDENTFOX_SECRET_KEY``.
* :func:`put_webhook_secret` generates a secret (platform-issued sources) or stores the one the
  tenant pasted (sender-issued sources, or any source when ``secret`` is given). A generated secret
  is returned once, in that answer, and never again. Replacing an existing secret keeps the old one
  verifying for ``grace_s`` seconds (default :data:`DEFAULT_GRACE_S`, at most :data:`MAX_GRACE_S`;
  0 revokes it at once, e.g. after a leak), so senders can be updated without losing deliveries.
* Every generation, rotation and deletion is audited (``webhook_secret.generate`` / ``.set`` /
  ``.rotate`` / ``.delete``) with the source, scope, version and grace deadline, never the secret.
* :func:`load_webhook_secret` is the gateway's read: the current secret and, inside its grace
  window, the previous one, decrypted. It is the only function here that decrypts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.crypto import settings_cipher
from config_service.core.ids import require_id
from config_service.core.secret_fields import SecretDecryptionError
from config_service.core.webhook_sources import (
    check_options,
    check_secret,
    generate_secret,
    source_policy,
)
from config_service.db.models import WebhookSecret
from config_service.services import audit
from config_service.services.nodes import get_node
from config_service.services.tx import rolls_back_on_error
from incidentfox.db import utcnow
from incidentfox.errors import NotFound, Unprocessable
from incidentfox.pagination import Page, PageRequest, fetch_page
from incidentfox.settings import Settings

DEFAULT_GRACE_S = 3600          # one hour: long enough to update a sender, short enough to matter
MAX_GRACE_S = 7 * 24 * 3600


@dataclass(frozen=True)
class LoadedWebhookSecret:
    """What the gateway verifies with: ``current``, and ``previous`` while ``now < previous_valid_until``."""

    current: str
    previous: str | None = None
    previous_valid_until: datetime | None = None
    options: dict[str, str] = field(default_factory=dict)
    version: int = 1


def webhook_path(source: str, *, org_id: str, team_id: str | None = None) -> str:
    """The sender's URL path for a scope (Slack has three endpoints under ``/webhooks/slack/…``)."""
    scope = f"/o/{org_id}" + (f"/t/{team_id}" if team_id else "")
    if source == "slack":
        return f"/webhooks/slack/{{events,commands,interactions}}{scope}"
    return f"/webhooks/{source}{scope}"


def _scope(org_id: str, node_id: str) -> dict[str, Any]:
    team = None if node_id == org_id else node_id
    return {"org_id": org_id, "team_id": team, "scope": "team" if team else "org"}


def secret_view(row: WebhookSecret, *, now: datetime | None = None) -> dict[str, Any]:
    """Metadata only: never the secret, the ciphertext, or a hash of either."""
    now = now or utcnow()
    iso = lambda d: d.isoformat() if d else None
    previous_live = row.previous is not None and row.previous_valid_until is not None \
        and now < row.previous_valid_until
    scope = _scope(row.org_id, row.node_id)
    return {"source": row.source, **scope, "version": row.version, "options": dict(row.options or {}),
            "created_at": iso(row.created_at), "created_by": row.created_by, "rotated_at": iso(row.rotated_at),
            "previous_valid_until": iso(row.previous_valid_until) if previous_live else None,
            "url_path": webhook_path(row.source, org_id=row.org_id, team_id=scope["team_id"])}


async def _check_scope(session: AsyncSession, *, org_id: str, node_id: str) -> None:
    node = await get_node(session, org_id=org_id, node_id=node_id)
    if node_id != org_id and node.kind != "team":
        raise Unprocessable(f"node {node_id!r} is a {node.kind}: webhook secrets belong to an org or a team",
                            code="not_a_team", details={"node_id": node_id})


async def _row(session: AsyncSession, *, org_id: str, node_id: str, source: str) -> WebhookSecret | None:
    q = select(WebhookSecret).where(WebhookSecret.org_id == org_id, WebhookSecret.node_id == node_id,
                                    WebhookSecret.source == source)
    return (await session.scalars(q.execution_options(populate_existing=True))).first()


@rolls_back_on_error
async def put_webhook_secret(session: AsyncSession, *, settings: Settings, org_id: str, node_id: str,
                             source: str, actor: str, secret: str | None = None,
                             grace_s: int = DEFAULT_GRACE_S, options: dict[str, str] | None = None,
                             now: datetime | None = None) -> tuple[dict[str, Any], bool]:
    """Generate (``secret`` None) or set the scope's secret for ``source``; rotate if one exists.
    Commits. Returns ``(view, created)``; ``view["secret"]`` is present only when generated here."""
    policy = source_policy(source)
    require_id(org_id, field="org_id")
    require_id(node_id, field="node_id")
    if isinstance(grace_s, bool) or not isinstance(grace_s, int) or not 0 <= grace_s <= MAX_GRACE_S:
        raise Unprocessable(f"grace_s must be within 0..{MAX_GRACE_S}", code="invalid_grace")
    checked_options = check_options(policy, options or {})
    await _check_scope(session, org_id=org_id, node_id=node_id)
    generated = secret is None
    value = generate_secret(policy) if generated else check_secret(policy, secret)
    cipher = settings_cipher(settings)
    token = cipher.encrypt(value.encode()).decode()
    now = now or utcnow()
    row = await _row(session, org_id=org_id, node_id=node_id, source=source)
    created = row is None
    if row is None:
        row = WebhookSecret(org_id=org_id, node_id=node_id, source=source, current=token, previous=None,
                            previous_valid_until=None, options=checked_options, version=1,
                            created_by=actor[:128], created_at=now, rotated_at=now)
        session.add(row)
    else:
        row.previous = row.current if grace_s > 0 else None
        row.previous_valid_until = now + timedelta(seconds=grace_s) if grace_s > 0 else None
        row.current, row.version, row.rotated_at = token, row.version + 1, now
        if options is not None:
            row.options = checked_options
    action = "webhook_secret." + ("rotate" if not created else "generate" if generated else "set")
    audit.record(session, org_id=org_id, actor=actor, action=action,
                 target=f"webhook_secret:{source}:{node_id}",
                 diff={"source": source, **_scope(org_id, node_id), "version": row.version,
                       "generated": generated, "grace_s": grace_s if not created else None,
                       "previous_valid_until": row.previous_valid_until.isoformat()
                       if row.previous_valid_until else None})
    await session.commit()
    view = secret_view(row, now=now)
    if generated:
        view["secret"] = value
    return view, created


async def list_webhook_secrets(session: AsyncSession, *, org_id: str, page: PageRequest,
                               node_id: str | None = None, now: datetime | None = None) -> Page[dict[str, Any]]:
    """Metadata of the org's secrets (every scope), or of one scope's, by scope and source."""
    require_id(org_id, field="org_id")
    q = select(WebhookSecret).where(WebhookSecret.org_id == org_id)
    if node_id is not None:
        await _check_scope(session, org_id=org_id, node_id=node_id)
        q = q.where(WebhookSecret.node_id == node_id)
    rows = await fetch_page(session, q, order=[(WebhookSecret.node_id, False), (WebhookSecret.source, False)],
                            page=page)
    return Page([secret_view(r, now=now) for r in rows.items], rows.next_cursor)


@rolls_back_on_error
async def delete_webhook_secret(session: AsyncSession, *, org_id: str, node_id: str, source: str,
                                actor: str) -> dict[str, Any]:
    """Remove the scope's secret: its URL answers 401 from then on (after the gateway's cache TTL)."""
    source_policy(source)
    require_id(org_id, field="org_id")
    require_id(node_id, field="node_id")
    row = await _row(session, org_id=org_id, node_id=node_id, source=source)
    if row is None:
        raise NotFound("no webhook secret for this source and scope", code="webhook_secret_not_found",
                       details={"source": source, **_scope(org_id, node_id)})
    await session.delete(row)
    audit.record(session, org_id=org_id, actor=actor, action="webhook_secret.delete",
                 target=f"webhook_secret:{source}:{node_id}",
                 diff={"source": source, **_scope(org_id, node_id), "version": row.version})
    await session.commit()
    return {"deleted": True, "source": source, **_scope(org_id, node_id)}


def _decrypt(cipher: MultiFernet, token: str) -> str:
    try:
        return cipher.decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretDecryptionError("a stored webhook secret cannot be decrypted with the configured keys") \
            from None


async def load_webhook_secret(session: AsyncSession, *, cipher: MultiFernet, org_id: str, node_id: str,
                              source: str, now: datetime | None = None) -> LoadedWebhookSecret | None:
    """The decrypted secret(s) of a scope for ``source``; None when the scope has none. A previous
    secret past its grace window is neither decrypted nor returned."""
    row = await _row(session, org_id=org_id, node_id=node_id, source=source)
    if row is None:
        return None
    now = now or utcnow()
    live = row.previous is not None and row.previous_valid_until is not None and now < row.previous_valid_until
    return LoadedWebhookSecret(current=_decrypt(cipher, row.current),
                               previous=_decrypt(cipher, row.previous) if live else None,
                               previous_valid_until=row.previous_valid_until if live else None,
                               options=dict(row.options or {}), version=row.version)


async def rotate_webhook_secret_keys(session: AsyncSession, *, cipher: MultiFernet) -> int:
    """Re-encrypt every stored webhook secret under the newest Fernet key (``incidentfox secrets
    rotate``); the caller commits. Returns the number of rows rewritten."""
    count = 0
    for row in (await session.scalars(select(WebhookSecret))).all():
        try:
            row.current = cipher.rotate(row.current.encode()).decode()
            if row.previous is not None:
                row.previous = cipher.rotate(row.previous.encode()).decode()
        except InvalidToken:
            raise SecretDecryptionError("a stored webhook secret cannot be decrypted with the configured keys") \
                from None
        count += 1
    return count

