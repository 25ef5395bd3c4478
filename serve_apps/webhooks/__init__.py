"""Per-source webhook verification and parsing (pure; no I/O).

Each source module (``slack``, ``github``, ``pagerduty``, ``incidentio``, ``alertmanager``,
``grafana``) exposes ``verify``, ``signature_present``, ``parse`` and a test/bench helper
``sign``; :mod:`serve_apps.webhooks.registry` lists them in ``SOURCES``. Every failure is a
:class:`~serve_apps.webhooks.errors.WebhookError`.
"""

from serve_apps.webhooks.common import ParseResult
from serve_apps.webhooks.errors import WebhookError

__all__ = ["ParseResult", "WebhookError"]
