"""Thread conversations: a human reply in an investigation's Slack thread is a *turn* of it.

* While the run is active, the reply is recorded on it (``runs.turns``, ``mode: redirect``) and
  handed to the live run (:meth:`incidentfox.runs.runner.Runner.attach` with :func:`attach_entry`),
  whose planner reads it as untrusted input and may change where it looks.
* After the run ended, the reply starts a *follow-up run*: a new run bound to the same thread, with
  ``parent_run_id`` naming the run it continues; the parent records the turn (``mode: follow_up``)
  and the follow-up's id. The follow-up starts from the parent's evidence (``runs.evidence``) and RCA.
* A reply from someone the team does not list in ``access.responders`` is recorded as refused
  (``mode: refused``) and changes nothing.

A turn is recorded once per Slack message (``message_ts``) even when Slack delivers it again under
another event id. Everything here is pure: the gateway and the engine share these shapes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from incidentfox.contracts import Trigger

TurnMode = Literal["redirect", "follow_up", "refused"]
TURN_TEXT_MAX = 2000
MAX_TURNS = 200          # per run; further replies are still delivered, no longer listed
ENTRY_KIND = "turn"      # an attach entry that is a turn (anything else is an absorbed alert)


def message_ts(trigger: Trigger) -> str | None:
    """The Slack message's own ts (the parser puts it in ``external_ref``), if known."""
    ref = trigger.external_ref or ""
    return ref if trigger.source == "slack" and ref else None


def turn_entry(trigger: Trigger, *, mode: TurnMode, at: datetime, **extra: Any) -> dict[str, Any]:
    """The ``runs.turns`` element for ``trigger`` (text clipped, no payload)."""
    entry: dict[str, Any] = {"mode": mode, "actor": trigger.actor, "text": trigger.text[:TURN_TEXT_MAX],
                             "source": trigger.source, "delivery_id": trigger.delivery_id,
                             "message_ts": message_ts(trigger), "at": at.isoformat()}
    entry.update(extra)
    return entry


def seen(turns: list[dict[str, Any]], trigger: Trigger) -> bool:
    """Whether ``trigger``'s message is already a turn (same delivery, or same Slack message)."""
    ts = message_ts(trigger)
    return any(t.get("delivery_id") == trigger.delivery_id
               or (ts and t.get("message_ts") == ts and t.get("actor") == trigger.actor) for t in turns)


def attach_entry(trigger: Trigger) -> dict[str, Any]:
    """What a live run is handed for ``trigger``: a turn for a human reply, else an absorbed alert."""
    if trigger.human:
        return {"kind": ENTRY_KIND, "source": trigger.source, "delivery_id": trigger.delivery_id,
                "actor": trigger.actor, "text": trigger.text[:TURN_TEXT_MAX],
                "message_ts": message_ts(trigger)}
    return {"source": trigger.source, "delivery_id": trigger.delivery_id, "title": trigger.title,
            "fingerprint": trigger.fingerprint, "services": trigger.services}


def is_turn(entry: dict[str, Any]) -> bool:
    return entry.get("kind") == ENTRY_KIND
