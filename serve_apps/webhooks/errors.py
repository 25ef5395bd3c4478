"""The one typed error every webhook verifier and parser raises.

:class:`WebhookError` subclasses :class:`incidentfox.errors.IncidentFoxError`, so the gateway maps it
to the JSON error shape in its single handler (``code`` = ``reason``). Messages never contain a
secret, an expected signature or a body excerpt: only what the sender needs to fix its request.

Reasons and statuses:

* 401 (the sender could not be authenticated): ``missing_signature``, ``bad_signature``,
  ``missing_header`` (a signed header such as the timestamp is absent), ``bad_timestamp`` (not an
  integer), ``stale_timestamp`` (outside the replay window), ``secret_not_configured`` (an empty
  secret was passed to a scheme that needs one), ``invalid_secret`` (a configured secret that the
  scheme cannot use, e.g. a ``whsec_`` secret that is not base64).
* 400: ``malformed_body`` (the body, or a header ``parse`` needs, is not valid for the source).
"""

from __future__ import annotations

from incidentfox.errors import IncidentFoxError

AUTH_REASONS = frozenset({
    "missing_signature",
    "bad_signature",
    "missing_header",
    "bad_timestamp",
    "stale_timestamp",
    "secret_not_configured",
    "invalid_secret",
})
BODY_REASONS = frozenset({"malformed_body"})


class WebhookError(IncidentFoxError):
    """A webhook was rejected. ``reason`` (= ``code``) is snake_case; ``source`` names the sender."""

    def __init__(self, reason: str, *, source: str, message: str | None = None,
                 status: int | None = None) -> None:
        if status is None:
            status = 401 if reason in AUTH_REASONS else 400
        super().__init__(message or reason.replace("_", " "), code=reason, status=status,
                         details={"source": source, "reason": reason})
        self.reason = reason
        self.source = source

    def __repr__(self) -> str:
        return f"WebhookError(reason={self.reason!r}, source={self.source!r}, status={self.status})"


def malformed(source: str, message: str) -> WebhookError:
    """The 400 every parser raises for a body (or parse-time header) that is not valid for ``source``."""
    return WebhookError("malformed_body", source=source, message=message, status=400)
