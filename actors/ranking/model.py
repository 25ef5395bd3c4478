"""What the ranking signals produce and what :func:`actors.ranking.rank.rank` returns.

* A :class:`Finding` is one signal's claim about one entity: a score in ``[0, 1]``, a one-line
  summary, the quoted :class:`~incidentfox.contracts.Evidence`, and ``details`` the RCA uses to
  derive recommended actions (e.g. ``{"memory_limit": "100Mi"}``).
* A :class:`Suspect` groups the findings about one entity (pods are grouped with their workload).
* A :class:`Ranking` is the ordered suspects plus the no-incident decision. It is plain data
  (pydantic), so it crosses Ray task boundaries and is stored with a run.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from incidentfox.contracts import Evidence
from incidentfox.evidence import Alert

# Signal names: one per module, and the values `Suspect.signals` / `Finding.signal` take.
ANOMALY = "anomaly"
PROPAGATION = "propagation"
K8S_STATE = "k8s_state"
CHANGE = "change"
LOG_SIGNATURE = "log_signature"
TRACE = "trace"
RESOURCE = "resource"


class Finding(BaseModel):
    entity: str
    signal: str                      # one of the signal names above
    kind: str                        # e.g. "oom_killed", "crash_loop", "root_of_anomaly"
    score: float = Field(ge=0.0, le=1.0)
    summary: str                     # one sentence, shown to users
    evidence: list[Evidence] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)


class Suspect(BaseModel):
    entity: str
    score: float = Field(ge=0.0, le=1.0)
    confidence: float = Field(ge=0.0, le=1.0)
    signals: list[str] = Field(default_factory=list)       # the signals that fired, strongest first
    findings: list[Finding] = Field(default_factory=list)  # strongest first
    evidence: list[Evidence] = Field(default_factory=list) # quotes, strongest finding first
    related: list[str] = Field(default_factory=list)       # other entities merged into this suspect

    def finding(self, kind: str) -> Finding | None:
        return next((f for f in self.findings if f.kind == kind), None)


class Ranking(BaseModel):
    alert: Alert = Field(default_factory=Alert)
    suspects: list[Suspect] = Field(default_factory=list)  # best first; empty when no_incident
    no_incident: bool = False
    reason: str = ""                 # why (no) incident, one sentence
    affected: list[str] = Field(default_factory=list)      # entities showing the symptom
    notes: list[str] = Field(default_factory=list)

    def top(self, k: int = 3) -> list[str]:
        return [s.entity for s in self.suspects[:k]]
