"""The config service's library face for webhook signing secrets: what the gateway imports.

* :data:`WEBHOOK_SOURCES`: each source's policy (who issues its secret, which options it takes).
* :func:`webhook_secret_loader`: ``load(org_id, node_id, source)`` → the scope's decrypted secret(s)
  (:class:`LoadedWebhookSecret`) or None, read from the shared database. The gateway caches it and
  calls it only for requests that carry a signature.

Secrets returned here are platform-internal: they go to a verifier and nowhere else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from config_service.core.crypto import settings_cipher
from config_service.core.webhook_sources import WEBHOOK_SOURCES, WebhookSourcePolicy
from config_service.services.webhook_secrets import LoadedWebhookSecret, load_webhook_secret, webhook_path

WebhookSecretLoader = Callable[[str, str, str], Awaitable[LoadedWebhookSecret | None]]


def webhook_secret_loader(sessions: Any, *, settings: Any, cipher: Any = None) -> WebhookSecretLoader:
    """A loader over ``sessions`` (an ``async_sessionmaker``) decrypting with ``settings``' Fernet
    keys (or ``cipher``, e.g. a counting wrapper in tests)."""
    fernet = cipher if cipher is not None else settings_cipher(settings)

    async def load(org_id: str, node_id: str, source: str) -> LoadedWebhookSecret | None:
        async with sessions() as session:
            return await load_webhook_secret(session, cipher=fernet, org_id=org_id, node_id=node_id,
                                             source=source)

    return load


__all__ = ["WEBHOOK_SOURCES", "LoadedWebhookSecret", "WebhookSecretLoader", "WebhookSourcePolicy",
           "webhook_path", "webhook_secret_loader"]
