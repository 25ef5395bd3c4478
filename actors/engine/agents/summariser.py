"""The knowledge base's summaries from a team's model: :class:`LLMSummariser` implements
:class:`incidentfox.knowledge` 's ``Summariser`` protocol with the team's ``llm`` config, through the
same model construction as the planner (:func:`actors.engine.agents.providers.build_model`: the same
providers, timeouts, retries and egress policy). The passages are tenant text, given as untrusted data.

Used when a team's ``knowledge.summaries`` is ``auto`` and it configured ``llm.provider``; any other
team gets the offline extractive summariser.
"""

from __future__ import annotations

from typing import Any

from actors.engine.agents.untrusted import as_data, with_notice
from config_service import LLMConfig

INSTRUCTIONS = ("You summarise passages of an engineering team's runbooks, postmortems and incident "
                "records for a search index. Write one plain paragraph naming the systems, symptoms, "
                "causes and fixes the passages share. No preamble, no lists.")
MAX_INPUT_CHARS = 24_000


class LLMSummariser:
    """Summaries of RAPTOR clusters by the team's model (one model call per cluster, one turn)."""

    def __init__(self, llm: LLMConfig, *, policy: Any = None, resolver: Any = None) -> None:
        self._llm = llm
        self._policy, self._resolver = policy, resolver
        self._model: Any = None
        self.name = f"llm:{llm.provider}:{llm.model}"

    def __repr__(self) -> str:
        return f"LLMSummariser({self.name!r})"

    def _agent(self) -> Any:
        from agents import Agent

        from actors.engine.agents.providers import build_model

        if self._model is None:
            self._model = build_model(self._llm, policy=self._policy, resolver=self._resolver)
        return Agent(name="knowledge_summariser", instructions=with_notice(INSTRUCTIONS), model=self._model)

    async def summarise(self, texts: list[str], max_words: int) -> str:
        from agents import RunConfig, Runner

        from actors.engine.agents.providers import record_usage

        prompt = (f"Summarise these {len(texts)} passages in at most {max_words} words.\n\n"
                  + as_data("knowledge_passages", "\n\n---\n\n".join(texts), max_chars=MAX_INPUT_CHARS))
        result = await Runner.run(self._agent(), prompt, max_turns=1,
                                  run_config=RunConfig(workflow_name="incidentfox-knowledge"))
        record_usage(self._llm, None, result)
        words = str(result.final_output or "").split()
        return " ".join(words[:max_words])


def llm_summariser(llm: LLMConfig | None) -> LLMSummariser | None:
    """The team's model as a summariser, or None (no model: the extractive one)."""
    if llm is None or llm.provider is None:
        return None
    if not llm.model:
        from config_service import ENGINE_DEFAULT_MODEL

        llm = llm.model_copy(update={"model": ENGINE_DEFAULT_MODEL})
    return LLMSummariser(llm)
