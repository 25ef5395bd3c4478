"""``incidentfox secrets rotate``: re-encrypt every stored secret under the newest Fernet key.

Covers current node configs and every stored version (rollback must keep working after the old
key is dropped). Runs in one transaction, so a failure leaves everything as it was. Plaintext is
unchanged, so cached effective configs stay valid and no epoch is bumped.

It also finishes what older releases left in plaintext at rest: secret leaves inside lists
(``custom.webhooks.0.token``), which were neither encrypted nor masked before, are encrypted, and
the version and audit diffs that recorded them are masked.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.crypto import settings_cipher
from config_service.core.secret_fields import mask_changes
from config_service.core.secret_fields import rotate_secrets as rotate_tree
from config_service.db.models import AuditEvent, ConfigNode, ConfigVersion
from config_service.services.audit import masked_diff
from config_service.services.tx import rolls_back_on_error
from config_service.services.webhook_secrets import rotate_webhook_secret_keys
from incidentfox.settings import Settings

BATCH = 500


@rolls_back_on_error
async def rotate_secrets(session: AsyncSession, *, settings: Settings) -> dict[str, int]:
    """Returns ``{"nodes", "versions", "secrets", "diffs", "webhook_secrets"}``: rows rewritten,
    secret leaves (re-)encrypted, stored diffs masked (version and audit rows), and per-org webhook
    signing secrets re-encrypted."""
    cipher = settings_cipher(settings)
    counts = {"nodes": 0, "versions": 0, "secrets": 0, "diffs": 0}
    for model, label in ((ConfigNode, "nodes"), (ConfigVersion, "versions")):
        result = await session.stream_scalars(select(model).execution_options(yield_per=BATCH))
        async for row in result:
            rotated, n = rotate_tree(row.config, cipher)
            if n:
                row.config = rotated
                counts[label] += 1
                counts["secrets"] += n
            if isinstance(row, ConfigVersion) and (masked := mask_changes(row.diff)) != row.diff:
                row.diff = masked
                counts["diffs"] += 1
    events = select(AuditEvent).where(AuditEvent.action.startswith("config.")).execution_options(yield_per=BATCH)
    async for event in await session.stream_scalars(events):
        if (masked := masked_diff(event.action, event.diff)) != event.diff:
            event.diff = masked
            counts["diffs"] += 1
    counts["webhook_secrets"] = await rotate_webhook_secret_keys(session, cipher=cipher)
    await session.commit()
    return counts
