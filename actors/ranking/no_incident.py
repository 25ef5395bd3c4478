"""The no-incident decision: when nothing stands out, say so and blame nothing.

The ranker blames nothing when

1. the alert names a metric series and that series is within its normal range (the anomaly gate
   did not confirm it), and no non-metric finding reaches ``MIN_BLAME``; or
2. no suspect reaches ``MIN_BLAME`` at all.

Independently, an alert that describes itself as a heartbeat (severity ``none``/``info``, or text
such as "always firing", "watchdog", "dead man's switch") is noted, so the RCA can say why a
firing alert is not an incident.
"""

from __future__ import annotations

import re

from actors.ranking.anomaly import AnomalyView
from actors.ranking.model import Suspect
from incidentfox.evidence import EvidenceBundle

MIN_BLAME = 0.3
_HEARTBEAT = re.compile(r"(?i)always (?:be )?firing|heartbeat|dead ?man'?s ?(?:switch|snitch)|\bwatchdog\b")


def heartbeat_note(bundle: EvidenceBundle) -> str:
    """A sentence explaining that the alert is a heartbeat, or ""."""
    a = bundle.alert
    severity = a.labels.get("severity", "").lower()
    texts = [a.title, a.text, *(n for n in bundle.notes if n.startswith("runbook"))]
    if severity in ("none", "info", "informational") or any(_HEARTBEAT.search(t) for t in texts if t):
        name = a.title or a.labels.get("alertname", "the alert")
        return (f"The alert {name} is a heartbeat (severity {severity or 'unset'}): it is meant to be always firing "
                "to show that the alerting pipeline works, so its firing is not an incident.")
    return ""


def decide(bundle: EvidenceBundle, view: AnomalyView, suspects: list[Suspect]) -> tuple[bool, str]:
    """(no_incident, reason)."""
    best = suspects[0].score if suspects else 0.0
    non_metric = max((s.score for s in suspects if set(s.signals) - {"anomaly", "propagation"}), default=0.0)
    if view.confirmed is False and non_metric < MIN_BLAME:
        s = view.alert_series
        what = f"{s.entity} {s.metric}" if s else "the alerting series"
        return True, (f"No incident: {what} is within its normal range (robust z {view.alert_z:.1f} < 2) "
                      "and no other evidence stands out.")
    if best < MIN_BLAME:
        checked = len({*(o.name for o in bundle.objects), *(m.entity for m in bundle.metrics),
                       *(ln.entity for ln in bundle.logs)})
        return True, (f"No incident: nothing in the evidence stands out ({checked} entities checked"
                      + (f", strongest signal {best:.2f} < {MIN_BLAME}" if suspects else "") + ").")
    return False, f"{suspects[0].entity} stands out (score {best:.2f})."
