"""The ``Idempotency-Key`` header, one definition for every API that creates something.

A caller that may retry a create sends a key; the same key (within its scope: the team for a run
or a sandbox session, the run for a rerun) answers what the first request created, with
``duplicate: true``, and the same key with a different request is ``422 idempotency_key_reused``
(:class:`incidentfox.errors.IdempotencyKeyReused`: the caller's mistake, not a retry). Who keeps
the key: :func:`serve_apps.deliveries.keyed_delivery_id` for runs and reruns (a run's request is
compared by :func:`same_request`), :func:`actors.sandbox.store.keyed_session_id` for sandbox
sessions (compared by the sandbox manager).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.contracts import Trigger
from incidentfox.errors import BadRequest
from incidentfox.runs.models import Delivery

IDEMPOTENCY_KEY_MAX = 200


def idempotency_key(idempotency_key: str | None = Header(default=None, max_length=IDEMPOTENCY_KEY_MAX,
                                                         description="Retries with the same key answer what "
                                                         "the first request created.")) -> str | None:
    """The ``Idempotency-Key`` header (a dependency): None when absent or empty, 400
    ``invalid_idempotency_key`` when it holds a control character (nothing stores or compares one)."""
    if not idempotency_key:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in idempotency_key):
        raise BadRequest("Idempotency-Key holds a control character", code="invalid_idempotency_key")
    return idempotency_key


IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]

# What a request to start a run says, as opposed to when, by whom or under which id it came.
REQUEST_FIELDS = frozenset({"action", "event_kind", "title", "text", "services", "identifiers", "links", "thread"})


async def same_request(session: AsyncSession, *, delivery_pk: int, trigger: Trigger) -> bool:
    """Whether the recorded delivery ``delivery_pk`` (the first request under a key) asked for what
    ``trigger`` asks for (:data:`REQUEST_FIELDS`)."""
    row = await session.get(Delivery, delivery_pk)
    if row is None or not row.trigger:
        return True
    first = Trigger.model_validate(row.trigger)
    return (first.model_dump(mode="json", include=set(REQUEST_FIELDS))
            == trigger.model_dump(mode="json", include=set(REQUEST_FIELDS)))


__all__ = ["IDEMPOTENCY_KEY_MAX", "REQUEST_FIELDS", "IdempotencyKey", "idempotency_key", "same_request"]
