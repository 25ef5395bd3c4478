"""Pydantic contracts that cross process boundaries (HTTP, Serve handles, Ray actor calls).

* :class:`Trigger`: what every webhook parser yields, and what a run is started from.
* :class:`AnswerTarget`: where, besides Slack, a run's RCA is answered (the object the delivery came from).
* :class:`RCA`: what every planner (offline or LLM) produces and what Slack and the API show
  (with :class:`Hypothesis`: a follow-up the offline planner pursued and what it found).
* :class:`RunStatus`: the run state machine ``queued → running → succeeded | failed | cancelled``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def storable(value: str) -> str:
    """``value`` if a database can store and compare it as it is, else ValueError: no NUL character
    (PostgreSQL refuses one) and no lone surrogate (not UTF-8: no driver can send it, and a JSON
    reply holding it cannot be written)."""
    if "\x00" in value:
        raise ValueError("holds a NUL character")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text (a lone surrogate)") from None
    return value


Key = Annotated[str, AfterValidator(storable)]
"""A string that is stored, or looked up, as it is (ids, channels, services, fingerprints, links): a
sender's value, so it must be :func:`storable`."""

SLACK_ID_MAX = 64   # runs.thread_channel / thread_ts; Slack's own ids are under 20 characters

Source = Literal["slack", "github", "pagerduty", "incidentio", "alertmanager", "grafana", "api", "schedule"]

# Identifier kinds a trigger can carry for routing (singular, as `POST /api/v1/routing/lookup` takes).
ROUTING_KEYS = (
    "slack_channel_id",
    "github_repo",
    "pagerduty_service_id",
    "incidentio_team_id",
    "alertmanager_receiver",
    "service",
)


SUBAGENTS: tuple[str, ...] = ("kubernetes", "metrics", "logs", "changes", "cloud")
"""The specialist sub-agents, in the order the planner lists them: the one roster that team config,
the tool grouping, the playbooks and the fan-out all read."""


class TriggerAction(StrEnum):
    """What the gateway should do with a parsed delivery."""

    START = "start"          # start (or, for alerts, correlate into) a run
    CONTINUE = "continue"    # a follow-up in an existing run's thread
    UPDATE = "update"        # acknowledged / resolved: update an existing run
    RECORD = "record"        # change event (push, pull_request): store for correlation only
    INTERACTION = "interaction"  # Slack button: rerun, cancel, feedback, approve
    IGNORE = "ignore"        # known source, event we do not act on


class DeliveryOutcome(StrEnum):
    """What a recorded delivery did (``webhook_deliveries.outcome``, and ``outcome`` in the sender's
    answer). Decided once, in the intake transaction (``serve_apps.deliveries``)."""

    PENDING = "pending"              # only inside the intake transaction, before the decision
    ACCEPTED = "accepted"            # started a run
    CORRELATED = "correlated"        # an alert absorbed into an active run
    CONTINUED = "continued"          # a thread follow-up handed to its run
    UPDATED = "updated"              # ack/resolve recorded on a run
    UNMATCHED = "unmatched"          # an update or follow-up with no run to apply to
    RECORDED = "recorded"            # a change event stored for later correlation
    UNROUTED = "unrouted"            # no team claims it
    INTERACTION = "interaction"      # a Slack button acted on a run
    REJECTED = "rejected"            # a button that names no run we know
    SANDBOX_OPENED = "sandbox_opened"        # `/incidentfox sandbox …`: a sandbox session to open
    SANDBOX_CONTINUED = "sandbox_continued"  # a reply in an active sandbox session's thread

    @property
    def sandbox(self) -> bool:
        """Handed to the sandbox side (``actors.sandbox``) rather than to a run's runner."""
        return self in (DeliveryOutcome.SANDBOX_OPENED, DeliveryOutcome.SANDBOX_CONTINUED)


class ThreadRef(BaseModel):
    """Where conversation about a trigger lives (a Slack thread today)."""

    model_config = ConfigDict(frozen=True)
    channel: Key = Field(max_length=SLACK_ID_MAX)
    ts: Key | None = Field(None, max_length=SLACK_ID_MAX)   # thread root; None: a new message in `channel`


AnswerSource = Literal["github", "pagerduty", "incidentio"]


class AnswerTarget(BaseModel):
    """Where the alert came from, so the RCA can be answered there too (``actors.answerback``).

    Set by the parser from the signed delivery, carried on the run's trigger. GitHub: ``repo`` with
    ``issue_number`` (a comment on the issue or pull request) or ``head_sha`` (a check run on the
    commit), and the App ``installation_id`` that sent it when the payload names one. PagerDuty and
    incident.io: ``incident_id``."""

    model_config = ConfigDict(frozen=True)
    source: AnswerSource
    repo: str | None = Field(default=None, max_length=255)
    issue_number: int | None = Field(default=None, ge=1)
    head_sha: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{7,64}$")
    installation_id: int | None = Field(default=None, ge=1)
    incident_id: str | None = Field(default=None, max_length=255)


class Trigger(BaseModel):
    """A normalised, source-independent event. Parsers are pure and build exactly one."""

    source: Source
    delivery_id: Key = Field(min_length=1, max_length=255)
    event_kind: Key = Field(max_length=128)           # e.g. "app_mention", "incident.triggered"
    action: TriggerAction = TriggerAction.START
    identifiers: dict[Key, Key] = Field(default_factory=dict)   # keys from ROUTING_KEYS
    title: str = ""
    text: str = ""
    links: list[Key] = Field(default_factory=list)
    thread: ThreadRef | None = None
    # Alert correlation: a fingerprint (alertmanager/grafana group, PD incident id) and services.
    fingerprint: Key | None = None
    services: list[Key] = Field(default_factory=list)
    is_alert: bool = False
    human: bool = False              # explicit human request: never absorbed into another run
    actor: Key | None = None         # who asked (Slack user, GitHub login) where known
    occurred_at: datetime | None = None
    external_ref: Key | None = None  # the source's own object id (PD incident id, GH issue url...)
    # For INTERACTION triggers: which button, on which run.
    interaction: dict[str, Any] | None = None
    payload_ref: Key | None = None   # "delivery:<source>:<delivery_id>", the stored raw payload
    answer_to: AnswerTarget | None = None   # where the RCA is answered besides Slack (alerts, CI, comments)


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


ALLOWED_TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED,
                                  RunStatus.QUEUED}),  # RUNNING → QUEUED: one retry after a lost lease
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class Evidence(BaseModel):
    """One quoted piece of evidence: a metric, event or log line, and the tool that produced it."""

    kind: Literal["metric", "event", "log", "change", "state", "note"]
    source: str = ""          # tool or signal name
    quote: str                # the line/value shown to users verbatim
    at: datetime | None = None


class RootCause(BaseModel):
    entity: str               # e.g. "deployment/checkout" or "petshop/PetSite"
    description: str
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[Evidence] = Field(default_factory=list)


class TimelineEntry(BaseModel):
    at: datetime | None = None
    event: str


class Hypothesis(BaseModel):
    """One follow-up call the planner made after its first pass: the hypothesis it tested, in which
    round, with which tool, and the one-line summary of what the call returned."""

    round: int = Field(ge=1)
    hypothesis: str
    tool: str
    found: str = ""           # the tool result's summary ("" when the call returned nothing to say)


class ProposedAction(BaseModel):
    """A remedy for the top cause that IncidentFox can carry out, but only after an allowed approver
    approves it (``actors/engine/actions.py``). Derived by pure rules from the ranking's typed
    evidence (``actors/engine/remedies.py``), never from model or log text.

    ``tool`` and ``arguments`` are the exact mutating tool call it makes; ``effect`` says what that
    call changes, in words. ``tool`` is None for a remedy IncidentFox cannot run yet (a revert pull
    request needs the GitHub App client): it is shown, never approvable."""

    id: str                   # "act_<hex>": also its approval's id (tool_approvals.id)
    kind: Literal["rollback", "restart", "scale", "revert"]
    target: str               # the entity it acts on, e.g. "shop/deployment/checkout"
    effect: str               # exactly what running it changes
    tool: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)


class Citation(BaseModel):
    """A knowledge-base document the analysis used (docs/knowledge.md): a runbook or postmortem
    section, or a similar past incident. Tenant text: shown as data, never followed as an instruction."""

    kind: Literal["runbook", "postmortem", "incident"]
    title: str
    section: str = ""         # heading path of the cited part ("Mitigation"); "" for a whole document
    source: str = ""          # the document's source ("runbooks/disk-full.md", "incident/<run_id>")
    url: str | None = None    # a link to the document (a run link for a past incident)
    score: float = 0.0        # retrieval score (higher is closer)
    used_for: Literal["context", "action", "seen_before"] = "context"
    when: datetime | None = None   # a past incident: when it happened
    fixed_by: str = ""        # a past incident: what resolved it, in its own words


class RCA(BaseModel):
    summary: str
    root_causes: list[RootCause] = Field(default_factory=list)
    affected_services: list[str] = Field(default_factory=list)
    timeline: list[TimelineEntry] = Field(default_factory=list)
    recommended_actions: list[str] = Field(default_factory=list)
    no_incident: bool = False  # the planner found nothing that stands out
    # Caveats the reader must see with the analysis, e.g. quoted evidence dropped because no tool
    # output of the run contained it (actors.engine.evidence_check). Empty for most RCAs.
    notes: list[str] = Field(default_factory=list)
    # The follow-ups the offline planner pursued, in round order (empty for the LLM planner and for
    # runs that needed none). A budget that ended them is said in ``notes``.
    hypotheses: list[Hypothesis] = Field(default_factory=list)
    # At most one, for the top cause; runs only once approved (see ProposedAction).
    proposed_actions: list[ProposedAction] = Field(default_factory=list)
    # Runbook sections and past incidents the analysis used, with links (actors/engine/knowledge_use.py).
    citations: list[Citation] = Field(default_factory=list)


class Principal(BaseModel):
    """Who a bearer token says the caller is. Produced by the config service's authentication;
    every HTTP surface (config, agent, sandbox, reports) authorises against it."""

    model_config = ConfigDict(frozen=True)
    auth_kind: Literal["global_admin", "org_admin", "team", "impersonation"]
    org_id: str | None = None          # None only for the global admin
    team_node_id: str | None = None    # set for team and impersonation tokens
    token_id: str | None = None
    subject: str = ""                  # audit actor, e.g. "token:tok_…", "admin"

    def can_access_team(self, org_id: str, team_id: str) -> bool:
        if self.auth_kind == "global_admin":
            return True
        if self.auth_kind == "org_admin":
            return self.org_id == org_id
        return self.org_id == org_id and self.team_node_id == team_id
