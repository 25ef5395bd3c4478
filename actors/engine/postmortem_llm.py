"""A richer postmortem draft: the team's model rewrites the offline draft into prose.

The model gets the offline draft (:func:`actors.engine.postmortem.draft_postmortem`) as untrusted
data and is told to keep every section and add no fact that is not in it. It is built by the same
provider plumbing as the planner (:func:`actors.engine.agents.providers.build_model`: the team's
``llm`` config, its base URL through the egress policy) and bounded by ``llm.request_timeout_s``.
Its answer is used only when it still has the draft's sections; otherwise, and on any model
failure, the caller keeps the offline draft and says why (:class:`Refined`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from actors.engine.agents.untrusted import as_data, with_notice
from config_service import LLMConfig

REQUIRED_SECTIONS = ("## Summary", "## Impact window", "## Timeline", "## Root cause", "## Evidence",
                     "## Actions taken", "## Follow-ups")
MAX_CHARS = 40_000

INSTRUCTIONS = (
    "You are the postmortem writer of an SRE team. You receive a postmortem draft that was generated "
    "from an incident investigation's record. Rewrite it as a clear, blameless postmortem in Markdown: "
    "keep the title line and every section heading exactly (" + ", ".join(REQUIRED_SECTIONS) + "), keep "
    "every timestamp in UTC, write the summary and root cause as short paragraphs, and turn the "
    "follow-ups into concrete, owner-ready action items. Use only facts present in the draft; where "
    "the draft says something is unknown, say so. Answer with the Markdown document only.")


@dataclass(frozen=True)
class Refined:
    markdown: str
    source: str               # llm | offline
    note: str = ""            # why the offline draft was kept


def usable(text: str) -> bool:
    return bool(text.strip()) and all(h in text for h in REQUIRED_SECTIONS)


async def refine_postmortem(draft: str, llm: LLMConfig, *, policy: object = None) -> Refined:
    """The model's rewrite of ``draft``, or ``draft`` itself with the reason it was kept."""
    from agents import Agent, ModelSettings, RunConfig, Runner

    from actors.engine.agents.providers import build_model, record_usage

    agent = Agent(name="postmortem_writer", instructions=with_notice(INSTRUCTIONS),
                  model=build_model(llm, policy=policy), model_settings=ModelSettings())
    try:
        async with asyncio.timeout(float(llm.request_timeout_s) * 2):
            result = await Runner.run(agent, as_data("postmortem_draft", draft), max_turns=1,
                                      run_config=RunConfig(workflow_name="incidentfox-postmortem"))
    except TimeoutError:
        return Refined(draft, "offline", "the model did not answer in time")
    except Exception as exc:  # noqa: BLE001 - any model/provider failure keeps the offline draft
        return Refined(draft, "offline", f"the model failed: {type(exc).__name__}")
    record_usage(llm, None, result)
    text = str(result.final_output or "").strip()
    if not usable(text):
        return Refined(draft, "offline", "the model's answer dropped sections of the draft")
    return Refined(text[:MAX_CHARS] + "\n", "llm")
