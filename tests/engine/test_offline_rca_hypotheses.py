"""The offline planner end to end over a fake fan-out (no Ray): the RCA lists the follow-up hypotheses
with what each call found, and a spent time budget is said in its notes (a fake clock, no sleeps)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from actors.engine.offline_planner import plan_offline
from actors.engine.outcomes import SubAgentStatus
from actors.engine.subagent_worker import SubAgentResult
from incidentfox.evidence import EvidenceBundle, LogLine, ObjectState

NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)
POD = "ledger-api-6d5f8c7b9-x2x4z"


@dataclass
class Fanout:
    """Playbooks find a crash-looping pod; a follow-up's previous logs say why."""

    config: dict[str, Any]
    window: Any = None
    latency_statistics: tuple[str, ...] = ()
    results: dict[str, SubAgentResult] = field(default_factory=dict)
    asked: list[list[tuple[str, dict[str, Any]]]] = field(default_factory=list)

    async def run_all(self, agents: list[str], *, mode: str) -> dict[str, SubAgentResult]:
        self.results["kubernetes"] = SubAgentResult(
            agent="kubernetes", status=SubAgentStatus.OK, tool_count=4,
            evidence=EvidenceBundle(objects=[ObjectState(namespace="ledger", kind="Pod", name=POD, restarts=7,
                                                         reasons=["CrashLoopBackOff"], owner="deployment/ledger-api")]))
        return self.results

    async def run_one(self, agent: str, *, mode: str, steps: list[tuple[str, dict[str, Any]]]) -> SubAgentResult:
        self.asked.append(steps)
        logs = [LogLine(entity=f"ledger/pod/{POD}", level="fatal", text="panic: missing env LEDGER_DSN", at=NOW)]
        prev = self.results[agent]
        self.results[agent] = SubAgentResult(
            agent=agent, status=SubAgentStatus.OK, tool_count=prev.tool_count + len(steps),
            evidence=prev.evidence.merge(EvidenceBundle(logs=logs)),
            report="\n".join(f"{tool}: 1 log line from {POD}, 1 error" if tool.endswith("logs") else f"{tool}: ok"
                             for tool, _ in steps))
        return self.results[agent]

    def evidence(self) -> EvidenceBundle:
        out = EvidenceBundle()
        for r in self.results.values():
            out = out.merge(r.evidence)
        return out


def config(**investigation: Any) -> dict[str, Any]:
    return {"integrations": {"kubernetes": {"host": "https://k8s.example", "token": "t"}},
            "investigation": {"followup_rounds": 3, **investigation}}


def run(fanout: Fanout, clock: Any) -> Any:
    rca, _ = asyncio.run(plan_offline(fanout, subagents=["kubernetes"], tool_count=5,  # type: ignore[arg-type]
                                      trigger={"title": "ledger-api restarting", "services": ["ledger-api"]},
                                      absorbed=[], now=NOW, started=0.0, clock=clock))
    return rca


def test_the_rca_lists_each_hypothesis_with_what_its_call_found() -> None:
    fanout = Fanout(config(time_budget_s=60))
    rca = run(fanout, clock=lambda: 1.0)
    assert fanout.asked and rca.hypotheses
    logs = next(h for h in rca.hypotheses if h.tool == "kubernetes_get_pod_logs")
    assert logs.round == 1 and f"ledger/{POD} is crash-looping (7 restarts)" in logs.hypothesis
    assert logs.found == f"1 log line from {POD}, 1 error"
    assert not any("budget" in n for n in rca.notes)
    assert rca.model_dump(mode="json")["hypotheses"][0]["tool"] == rca.hypotheses[0].tool


def test_a_spent_time_budget_ranks_what_the_playbooks_found_and_says_so() -> None:
    fanout = Fanout(config(time_budget_s=30))
    rca = run(fanout, clock=lambda: 31.0)
    assert fanout.asked == [] and rca.hypotheses == []
    assert any("time budget (investigation.time_budget_s = 30 s) after 0 round(s)" in n for n in rca.notes)
    assert rca.root_causes and "ledger-api" in rca.root_causes[0].entity
