"""Long knowledge work reports typed progress (``incidentfox.knowledge.Progress``) to a callback, and
the CLI draws it on stderr only: determinate bars on a terminal, plain lines (no ANSI) elsewhere."""

from __future__ import annotations

import io
from pathlib import Path

from kb_fakes import HashEmbedder
from rich.console import Console

from cli.progress import stage_bars
from incidentfox.knowledge import KnowledgeBase, Progress, Scope
from incidentfox.knowledge.ingest import ingest_folder
from incidentfox.knowledge.raptor import RaptorParams
from incidentfox.object_store import LocalObjectStore

ACME = Scope(org="acme")
TOPICS = ["disk full logs volume", "memory leak oom killer", "certificate expired tls renew",
          "dns resolution failing coredns", "database connection pool exhausted", "queue backlog consumers lag",
          "cpu throttling limits cgroup", "network packet loss interface errors"]


def folder(tmp_path: Path) -> Path:
    root = tmp_path / "runbooks"
    root.mkdir()
    for i, topic in enumerate(TOPICS):
        (root / f"{i}.md").write_text(f"# Runbook {i}\n\n## Meaning\n\nThe {topic} problem hurts service {i}.\n\n"
                                      f"## Mitigation\n\nFix the {topic} issue by following step {i}.\n")
    (root / "empty.md").write_text("   ")       # skipped, still counted as read
    return root


async def test_ingest_and_rebuild_report_every_step_in_order(tmp_path: Path) -> None:
    kb = KnowledgeBase(LocalObjectStore(tmp_path / "objects"), embedder=HashEmbedder(),
                       params=RaptorParams(max_cluster=4, top_size=2))
    seen: list[Progress] = []
    report = await ingest_folder(kb, ACME, folder(tmp_path), progress=seen.append)
    assert [(e.stage, e.done, e.total) for e in seen] == [("files", i, 9) for i in range(1, 10)]
    assert len(report.documents) == 8 and len(report.skipped) == 1

    seen.clear()
    info = await kb.rebuild(ACME, progress=seen.append)
    leaves = sum(1 for n in (await kb.tree(ACME)).nodes if n.level == 0)
    embed = [e for e in seen if e.stage == "embed"]
    assert embed and embed[-1].done == embed[-1].total == leaves
    assert [e.done for e in embed] == sorted(e.done for e in embed)
    built = [e.level for e in seen if e.stage == "level"]
    assert built == list(range(1, info.levels)) and info.levels >= 2       # every level above the leaves
    for level in built:      # each level's clusters are counted up to their total before it is built
        summ = [e for e in seen if e.stage == "summarise" and e.level == level]
        assert [e.done for e in summ] == list(range(1, summ[0].total + 1))
        assert seen.index(summ[-1]) < next(i for i, e in enumerate(seen) if e.stage == "level" and e.level == level)
    assert seen.index(embed[-1]) < seen.index(next(e for e in seen if e.stage == "summarise"))


EVENTS = [Progress("files", 1, 3), Progress("files", 2, 3), Progress("files", 3, 3), Progress("embed", 64, 70),
          Progress("embed", 70, 70), Progress("summarise", 1, 2, 1), Progress("summarise", 2, 2, 1),
          Progress("level", 1, 4, 1)]


def test_a_terminal_gets_determinate_bars() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100, color_system=None)
    with stage_bars("ingesting runbooks", console=console) as shown:
        for e in EVENTS:
            shown(e)
    out = buf.getvalue()
    assert "files parsed" in out and "3/3" in out and "chunks embedded" in out and "70/70" in out
    assert "level 1 built" in out and "━" in out       # a bar, not a spinner


def test_not_a_terminal_gets_plain_lines_without_ansi() -> None:
    buf = io.StringIO()
    with stage_bars("ingesting runbooks", console=Console(file=buf, force_terminal=False)) as shown:
        for e in EVENTS:
            shown(e)
    assert buf.getvalue().splitlines() == ["ingesting runbooks", "files parsed: 3/3", "chunks embedded: 70/70",
                                           "level 1: clusters summarised: 2/2", "level 1 built (2 clusters)"]


def test_quiet_draws_nothing() -> None:
    buf = io.StringIO()
    with stage_bars("x", quiet=True, console=Console(file=buf, force_terminal=True)) as shown:
        shown(EVENTS[0])
    assert buf.getvalue() == ""
