"""Exactly-once intake: record a verified delivery and decide what it does, in one transaction;
hand it off after the commit; repair hand-offs that never happened.

Contract (issue 3, "Exactly once"):

* :func:`intake` inserts the delivery under ``UNIQUE(source, delivery_id)`` and, in the SAME
  transaction, decides what it does (:mod:`~serve_apps.deliveries.decide`): the run it starts or
  joins, or the sandbox session it opens or continues. A redelivery or a concurrent copy loses the
  insert, and gets ``duplicate=True`` with the first delivery's answer.
* What must happen after the commit is returned as a :class:`Dispatch`: ``runner.submit`` /
  ``attach`` / ``cancel`` for runs, ``sandbox.submit(delivery_pk=)`` for sandbox traffic. A delivery
  that needs one keeps ``dispatched_at`` NULL until :func:`dispatch` succeeds; one that needs none
  (unrouted, recorded, updated, feedback) is written dispatched.
* Concurrent deliveries under different ids that act on one thing are serialised in :func:`decide`:
  one Slack reply under two event ids (``app_mention`` and ``message``) waits on the thread's run
  row and becomes one turn, and an alert storm waits on its correlation keys and starts one run that
  absorbs the rest (see :mod:`~serve_apps.deliveries.decide` for the locks and their order).
* A crash between commit and dispatch loses nothing: :func:`sweep` re-dispatches deliveries still
  undispatched after a grace period, and :func:`redrive` failed ones on an operator's word
  (:mod:`~serve_apps.deliveries.dispatch`).

Outcomes are :class:`incidentfox.contracts.DeliveryOutcome` (``webhook_deliveries.outcome``).
``recorded`` change events (GitHub push / pull_request) stay in this table for later correlation:
``trigger.identifiers`` carries the repo and ``received_at`` the time.

Modules: ``model`` (typed values), ``decide``, ``intake``, ``dispatch`` (+ sweep, redrive),
``batch`` (SQLite group commit), ``views``.
"""

from incidentfox.contracts import DeliveryOutcome
from serve_apps.deliveries.dispatch import (
    DISPATCH_TIMEOUT_S,
    MAX_DISPATCH_ATTEMPTS,
    SWEEP_GRACE_S,
    DispatchMarks,
    dispatch,
    plan_for,
    redrive,
    sweep,
)
from serve_apps.deliveries.intake import DEFAULT_CORRELATION_WINDOW_S, intake, record_and_decide
from serve_apps.deliveries.model import Decision, Dispatch, DispatchKind, IntakeResult, Route
from serve_apps.deliveries.views import (
    delivery_view,
    keyed_delivery_id,
    list_deliveries,
    new_delivery_id,
    page_deliveries,
)

__all__ = [
    "DEFAULT_CORRELATION_WINDOW_S", "DISPATCH_TIMEOUT_S", "MAX_DISPATCH_ATTEMPTS", "SWEEP_GRACE_S",
    "Decision", "DeliveryOutcome", "Dispatch", "DispatchKind", "DispatchMarks", "IntakeResult", "Route",
    "delivery_view", "dispatch", "intake", "keyed_delivery_id", "list_deliveries", "new_delivery_id", "page_deliveries", "plan_for",
    "record_and_decide", "redrive", "sweep",
]
