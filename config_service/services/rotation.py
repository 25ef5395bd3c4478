"""``incidentfox secrets rotate``: re-encrypt every stored secret under the newest Fernet key.

Covers current node configs and every stored version (rollback must keep working after the old
key is dropped). Runs in one transaction, so a failure leaves everything as it was. Plaintext is
unchanged, so cached effective configs stay valid and no epoch is bumped.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from config_service.core.crypto import settings_cipher
from config_service.core.secret_fields import rotate_secrets as rotate_tree
from config_service.db.models import ConfigNode, ConfigVersion
from config_service.services.tx import rolls_back_on_error
from config_service.services.webhook_secrets import rotate_webhook_secret_keys
from incidentfox.settings import Settings

BATCH = 500


@rolls_back_on_error
async def rotate_secrets(session: AsyncSession, *, settings: Settings) -> dict[str, int]:
    """Returns ``{"nodes", "versions", "secrets", "webhook_secrets"}``: rows rewritten and secret
    leaves re-encrypted, and per-org webhook signing secrets re-encrypted."""
    cipher = settings_cipher(settings)
    counts = {"nodes": 0, "versions": 0, "secrets": 0}
    for model, label in ((ConfigNode, "nodes"), (ConfigVersion, "versions")):
        result = await session.stream_scalars(select(model).execution_options(yield_per=BATCH))
        async for row in result:
            rotated, n = rotate_tree(row.config, cipher)
            if n:
                row.config = rotated
                counts[label] += 1
                counts["secrets"] += n
    counts["webhook_secrets"] = await rotate_webhook_secret_keys(session, cipher=cipher)
    await session.commit()
    return counts
