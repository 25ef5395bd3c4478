"""How an investigation uses its team's knowledge base (docs/knowledge.md, "How investigations use it").

One :class:`KnowledgeStep` per run, three calls from the run's lifecycle (:mod:`actors.engine.investigation`):

1. :meth:`KnowledgeStep.consult`, before planning: searches the team's runbooks (and its org's) and
   its past incidents with the alert's text, title, services and labels; both planners get it (the
   offline planner as is, the LLM planner as untrusted data in its first message, besides its
   ``knowledge`` sub-agent and tools ``search_runbooks``/``similar_incidents``). A search answered
   lexically because an index awaits a rebuild for a new embedder is only noted (``degraded``): its
   BM25-only scores do not meet the score floors, which were measured on hybrid scores;
2. :meth:`KnowledgeStep.apply`, on the RCA: cites the runbook sections and the past incident used
   (``RCA.citations``, with links), adds the best runbook's mitigation/remediation steps (its first
   section whose heading names one, read from the document) to the recommended actions, after the
   evidence's own first action (as text to read: never a proposed fix, never a tool call), and names
   a similar past incident ("seen before: …, fixed by …");
3. :meth:`KnowledgeStep.remember`, once the run ended, however it ended (succeeded or failed; a
   cancelled run through :meth:`KnowledgeStep.remember_later`, so the cancellation is not held up):
   the run becomes a past-incident document (:mod:`actors.engine.past_incidents`). "Seen before"
   prefers a similar run that succeeded, and names a fix only for one that succeeded with a root
   cause: a failed or cancelled run's partial finding is never presented as a fix.

Scopes come from the run's team only (:class:`actors.tools.knowledge_bases.TeamKnowledge`). Every
step is bounded and best effort: a knowledge-base problem is a ``note`` event, never a run failure,
and is logged without the run's text or a credential.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actors.tools.knowledge_bases import KnowledgeBases, TeamKnowledge
from incidentfox.contracts import RCA, Citation
from incidentfox.timeparse import parse_time

log = logging.getLogger(__name__)

# A process's first search may load the offline embedder in process (when the knowledge app is not
# running): ~5 s on a quiet machine, over 30 s on a saturated 2-core one, where a 30 s bound made a
# fresh actor's first run consult nothing. Later searches take milliseconds.
CONSULT_TIMEOUT_S = 90.0
# Hits below these scores are not used. Measured on the demo runbooks (cli/demo/runbooks) with the
# offline embedder: questions about an unrelated system score ≤ 0.27, related ones ≥ 0.40.
MIN_RUNBOOK_SCORE = 0.35
MIN_INCIDENT_SCORE = 0.40
REMEMBER_TIMEOUT_S = 15.0
MAX_SEEN_READ = 3              # similar past incidents read to find one that succeeded
_REMEMBERING: set[asyncio.Task[bool]] = set()    # held so a background write is not collected
MAX_QUERY = 1500
MAX_RUNBOOK_CITATIONS = 3
MAX_ACTION_STEPS = 3
MITIGATION = re.compile(r"mitigat|remediat|resolution|resolv|\bfix(?:es|ed|ing)?\b|recover|workaround", re.IGNORECASE)
_STEP = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+(.*\S)\s*$")
_INLINE_NUMBER = re.compile(r"(?:^|\s)\d{1,2}[.)]\s+")   # "1. Roll back … 2. If …" (a chunk's list, joined)

# A platform process shares its node's cores with the runs: torch's second thread spins between the
# small calls (measured on a busy 2-core machine: 600 one-query embeddings cost 103 s of CPU with two
# threads, 9.5 s with one, 3.5 s with one in batches of 8).
MODEL_THREADS = 1
# Texts per forward pass: a batch of 32 long chunks took ~360 MiB of activations at its peak (the
# attention scores), 8 take ~180 MiB, at the same CPU per text on one thread.
MODEL_BATCH = 8

_BASES: dict[tuple[Any, ...], KnowledgeBases] = {}


def process_knowledge_bases(store: Any = None, *, embed_here: bool = False) -> KnowledgeBases:
    """This process's knowledge bases over ``store`` (an :class:`incidentfox.object_store.ObjectStoreConfig`;
    None: the settings' object store), summaries from a team's model when it has one
    (:mod:`actors.engine.agents.summariser`). One per store and process.

    The offline embedder's query vectors come from the knowledge app
    (:class:`~actors.tools.knowledge_app_embedder.KnowledgeAppEmbedder`: this process loads no model
    while that app runs); the app itself, which builds the indexes, passes ``embed_here``."""
    from actors.engine.agents.summariser import llm_summariser
    from actors.tools.knowledge_app_embedder import KnowledgeAppEmbedder
    from incidentfox.knowledge import MiniLMEmbedder
    from incidentfox.object_store import object_store_config
    from incidentfox.settings import get_settings

    config = store or object_store_config(get_settings())
    key = (config.kind, str(config.root), config.bucket, config.prefix, config.endpoint_url, embed_here)
    if key not in _BASES:
        offline = MiniLMEmbedder(batch_size=MODEL_BATCH, threads=MODEL_THREADS)
        _BASES[key] = KnowledgeBases(config.build(), summariser_for=llm_summariser,
                                     embedder=offline if embed_here else KnowledgeAppEmbedder(offline))
    return _BASES[key]


def query_of(trigger: dict[str, Any], absorbed: list[dict[str, Any]] | None = None) -> str:
    """The words a run searches with: the alert's title and text, its services and labels."""
    parts: list[str] = [str(trigger.get(k) or "") for k in ("title", "text")]
    parts += [str(s) for s in trigger.get("services") or []]
    labels = trigger.get("labels")
    if isinstance(labels, dict):
        parts += [f"{k} {v}" for k, v in labels.items() if isinstance(v, (str, int, float))]
    for alert in absorbed or []:
        parts.append(str(alert.get("title") or ""))
    return " ".join(p.strip() for p in parts if p and p.strip())[:MAX_QUERY]


def mitigation_steps(text: str, limit: int = MAX_ACTION_STEPS) -> list[str]:
    """The first list items (or, without a list, the first sentence) of a mitigation section."""
    steps = [m.group(1) for line in text.splitlines() if (m := _STEP.match(line))]
    if len(steps) <= 1 and len(_INLINE_NUMBER.findall(text)) > 1:
        steps = [p.strip() for p in _INLINE_NUMBER.split(text) if p.strip()]
    if not steps:
        first = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
        steps = [first] if first else []
    return [s[:300] for s in steps[:limit]]


_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def mitigation_section(text: str) -> tuple[str, str] | None:
    """``(heading, body)`` of the first Markdown section whose heading names a mitigation,
    remediation, resolution or fix (its body runs to the next heading of the same or a higher level)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = _HEADING.match(line)
        if m and MITIGATION.search(m.group(2)):
            level, body = len(m.group(1)), []
            for rest in lines[i + 1:]:
                n = _HEADING.match(rest)
                if n and len(n.group(1)) <= level:
                    break
                body.append(rest)
            text_ = "\n".join(body).strip()
            return (m.group(2)[:200], text_) if text_ else None
    return None


def _citation(hit: Any, used_for: str) -> Citation:
    return Citation(kind=hit.kind, title=hit.title, section=hit.section, source=hit.source, url=hit.url,
                    score=round(float(hit.score), 4), used_for=used_for)  # type: ignore[arg-type]


@dataclass
class KnowledgeStep:
    """What one run found in its knowledge base (see the module docstring)."""

    team: TeamKnowledge
    bases: KnowledgeBases
    run_id: str = ""
    note: Callable[[dict[str, Any]], None] = lambda data: None
    runbooks: list[Any] = field(default_factory=list)
    mitigation: Citation | None = None      # the best runbook's mitigation section, as a citation
    mitigation_text: str = ""
    incident: Citation | None = None

    async def consult(self, trigger: dict[str, Any], absorbed: list[dict[str, Any]] | None = None) -> None:
        """Search the runbooks and past incidents for the trigger (bounded; problems are notes)."""
        query = query_of(trigger, absorbed)
        if not self.team.enabled or not query:
            return
        try:
            async with asyncio.timeout(CONSULT_TIMEOUT_S):
                found, past = await asyncio.gather(
                    self.bases.search_result(self.team, query, kinds=("runbook", "postmortem")),
                    self.bases.search_result(self.team, query, kinds=("incident",)))
                degraded = found.index.degraded_reason or past.index.degraded_reason
                if degraded:    # BM25-only scores: the floors below were measured on hybrid ones
                    self.note({"knowledge": "degraded", "reason": degraded})
                    return
                runbooks, incidents = found.hits, past.hits
                self.runbooks = [h for h in runbooks if h.score >= MIN_RUNBOOK_SCORE]
                if self.runbooks:
                    self.mitigation = await self._mitigation(self.runbooks[0])
            own = f"incident/{self.run_id}"
            similar = [h for h in incidents if h.source != own and h.score >= MIN_INCIDENT_SCORE]
            if similar:
                self.incident = await self._seen_before(similar)
        except Exception as exc:  # noqa: BLE001 - the investigation goes on without the knowledge base
            log.warning("knowledge base not consulted: %s", type(exc).__name__)
            self.note({"knowledge": "error", "reason": type(exc).__name__})
            return
        self.note({"knowledge": "consulted", "runbooks": [f"{h.title} › {h.section}" for h in self.runbooks[:3]],
                   "seen_before": self.incident.title if self.incident else None})

    async def _mitigation(self, hit: Any) -> Citation | None:
        """The mitigation (remediation, resolution, fix) section of the best runbook, read from the
        document itself, or None."""
        doc = await self.bases.for_team(self.team).get_document(hit.scope, hit.doc_id)
        found = mitigation_section(doc.text) if doc.media_type != "text/html" else None
        if found is None:
            return None
        heading, self.mitigation_text = found
        return Citation(kind=doc.kind if doc.kind != "incident" else "runbook", title=doc.title, section=heading,  # type: ignore[arg-type]
                        source=doc.source, url=doc.url, score=round(float(hit.score), 4), used_for="action")

    async def _seen_before(self, hits: list[Any]) -> Citation:
        """The most similar past incident that succeeded (of the best :data:`MAX_SEEN_READ`
        documents), else the most similar one, which then names no fix (its title says it failed
        or was cancelled). ``fixed_by`` only ever comes from a succeeded run's document."""
        fallback: Citation | None = None
        per_doc: dict[str, Any] = {}
        for h in hits:      # best first: a document's best hit
            per_doc.setdefault(h.doc_id, h)
        for hit in list(per_doc.values())[:MAX_SEEN_READ]:
            cite = _citation(hit, "seen_before")
            try:
                doc = await self.bases.for_team(self.team).get_document(hit.scope, hit.doc_id)
            except Exception as exc:  # noqa: BLE001 - cite what the hit says
                log.warning("past incident not read: %s", type(exc).__name__)
                fallback = fallback or cite
                continue
            meta = doc.metadata or {}
            succeeded = meta.get("status", "succeeded") == "succeeded"   # older documents: succeeded runs only
            when: datetime | None = parse_time(meta.get("when"))
            cite = cite.model_copy(update={"title": doc.title, "url": doc.url or hit.url, "when": when,
                                           "fixed_by": str(meta.get("fixed_by") or "")[:300] if succeeded else ""})
            if succeeded:
                return cite
            fallback = fallback or cite
        return fallback or _citation(hits[0], "seen_before")

    def for_llm(self) -> dict[str, Any] | None:
        """What the LLM planner is shown (as untrusted data) before it starts, or None."""
        if not self.runbooks and self.incident is None:
            return None
        return {"runbook_sections": [{"title": h.title, "section": h.section, "text": h.text[:1200]}
                                     for h in self.runbooks[:MAX_RUNBOOK_CITATIONS]],
                "similar_past_incident": self.incident.model_dump(mode="json") if self.incident else None}

    def apply(self, rca: RCA) -> RCA:
        """Cite what was used and add the runbook's mitigation and the similar incident (module docstring)."""
        cites: list[Citation] = []
        cited_docs: set[str] = set()
        steps = mitigation_steps(self.mitigation_text) if self.mitigation is not None else []
        if self.mitigation is not None and steps:
            where = f"{self.mitigation.title} › {self.mitigation.section}"
            new = [f"{step} (runbook: {where})" for step in steps]
            # After the evidence's own first action, before the rest: the team's documented procedure.
            rest = [a for a in rca.recommended_actions if a not in new]
            rca.recommended_actions = [*rest[:1], *new, *rest[1:]]
            cites.append(self.mitigation)
            cited_docs.add(self.runbooks[0].doc_id)
        for hit in self.runbooks:   # one citation per document: its best-matching section
            if len(cites) >= MAX_RUNBOOK_CITATIONS:
                break
            if hit.doc_id not in cited_docs:
                cited_docs.add(hit.doc_id)
                cites.append(_citation(hit, "context"))
        if self.incident is not None:
            cites.append(self.incident)
        rca.citations = [*rca.citations, *cites]
        return rca

    async def remember(self, sessions: Any, *, public_url: str = "") -> bool:
        """Write the run's past-incident document (bounded, never raises)."""
        from actors.engine.past_incidents import remember_run

        if not self.team.enabled or not self.team.past_incidents:
            return False
        try:
            async with asyncio.timeout(REMEMBER_TIMEOUT_S):
                done = await remember_run(sessions, self.bases, run_id=self.run_id, public_url=public_url,
                                          team=self.team)
        except TimeoutError:
            log.warning("past-incident document of run %s not written in time", self.run_id)
            done = False
        self.note({"knowledge": "remembered" if done else "not remembered"})
        return done

    def remember_later(self, sessions: Any, *, public_url: str = "") -> asyncio.Task[bool]:
        """:meth:`remember` in a background task (a cancelled run: its cancellation goes on at once)."""
        task = asyncio.create_task(self.remember(sessions, public_url=public_url))
        _REMEMBERING.add(task)
        task.add_done_callback(_REMEMBERING.discard)
        return task


def warm_knowledge(cfg: Any, *, bases: KnowledgeBases | None = None) -> None:
    """Start loading the team's embedder in the background (only if one of its scopes has a built
    tree), so the run's consult does not wait for the model (:meth:`KnowledgeBases.warm`)."""
    try:
        team = TeamKnowledge.from_config(cfg)
        if team.enabled:
            (bases or process_knowledge_bases()).warm(team)
    except Exception as exc:  # noqa: BLE001 - an optimisation: the consult meets (and notes) the problem
        log.warning("knowledge embedder not preloaded: %s", type(exc).__name__)


def knowledge_step(cfg: Any, *, run_id: str, bases: KnowledgeBases | None = None,
                   note: Callable[[dict[str, Any]], None] | None = None) -> KnowledgeStep:
    """The run's :class:`KnowledgeStep` from its config snapshot (``cfg``: a TeamConfig)."""
    return KnowledgeStep(team=TeamKnowledge.from_config(cfg), bases=bases or process_knowledge_bases(),
                         run_id=run_id, note=note or (lambda data: None))
