"""Model construction from a team's ``llm`` config: ``openai``, ``openai_compatible``, ``anthropic``.

* ``openai``: the Responses API (``OpenAIResponsesModel``); ``base_url`` may override the endpoint.
* ``openai_compatible``: Chat Completions at ``base_url`` (vLLM, Ollama, LiteLLM proxy…).
* ``anthropic``: the Messages API through the ``anthropic`` SDK (:mod:`actors.engine.agents.anthropic_model`).

Every client is bounded: ``request_timeout_s`` per request and one SDK-level retry, so an upstream
that hangs or errors turns into an exception the run reports, never a hang. Tracing to external
services is off unless ``INCIDENTFOX_AGENT_TRACING=1`` (:func:`configure_tracing`, through ``Settings``).

A team's own ``base_url`` is tenant egress: the client's HTTP goes through the egress policy
(:func:`tenant_http_client`), so a loopback, link-local or private endpoint is refused before any
byte is sent, and redirects are re-checked. Without ``base_url`` the SDK's endpoint (or the
operator's ``OPENAI_BASE_URL``/``ANTHROPIC_BASE_URL``) is platform traffic and not checked.
"""

from __future__ import annotations

from typing import Any

from config_service import LLMConfig

MAX_CLIENT_RETRIES = 1
_TRACING_CONFIGURED = False


def configure_tracing() -> None:
    """Disable the SDK's trace export unless the operator opted in (idempotent, per process)."""
    global _TRACING_CONFIGURED
    if _TRACING_CONFIGURED:
        return
    from agents import set_tracing_disabled

    from incidentfox.settings import Settings

    set_tracing_disabled(not Settings().agent_tracing)
    _TRACING_CONFIGURED = True


def tenant_http_client(sdk: Any, base_url: str | None, *, policy: Any = None, resolver: Any = None) -> Any:
    """The ``http_client`` for an SDK client (``sdk``: the ``openai`` or ``anthropic`` module): one
    through the egress policy when the team set ``base_url``, else None (the SDK's default)."""
    if not base_url:
        return None
    import httpx2

    from incidentfox.egress.transport import egress_client

    return egress_client(httpx2, policy=policy, resolver=resolver, client_cls=sdk.DefaultAsyncHttpxClient)


def build_model(llm: LLMConfig, model_name: str | None = None, *, policy: Any = None, resolver: Any = None):
    """A ``Model`` for ``llm`` (``model_name`` overrides ``llm.model`` for one agent). ``policy`` and
    ``resolver`` override the process's egress policy and DNS (tests)."""
    configure_tracing()
    name = model_name or llm.model
    if llm.provider == "anthropic":
        import anthropic

        from actors.engine.agents.anthropic_model import AnthropicModel

        client = anthropic.AsyncAnthropic(api_key=llm.reveal_api_key() or "unset", base_url=llm.base_url or None,
                                          timeout=llm.request_timeout_s, max_retries=MAX_CLIENT_RETRIES,
                                          http_client=tenant_http_client(anthropic, llm.base_url, policy=policy,
                                                                         resolver=resolver))
        return AnthropicModel(name, client)
    import openai
    from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel

    client = openai.AsyncOpenAI(api_key=llm.reveal_api_key() or "unset", base_url=llm.base_url or None,
                                timeout=llm.request_timeout_s, max_retries=MAX_CLIENT_RETRIES,
                                http_client=tenant_http_client(openai, llm.base_url, policy=policy, resolver=resolver))
    if llm.provider == "openai_compatible":
        return OpenAIChatCompletionsModel(model=name, openai_client=client)
    return OpenAIResponsesModel(model=name, openai_client=client)


def record_usage(llm: LLMConfig, model_name: str | None, result: object) -> None:
    """Count an openai-agents ``RunResult``'s tokens (``context_wrapper.usage``, summed over the run's
    model calls) under ``incidentfox_llm_tokens_total``."""
    from incidentfox.metrics import record_llm_tokens

    usage = getattr(getattr(result, "context_wrapper", None), "usage", None)
    if usage is not None:
        record_llm_tokens(provider=llm.provider, model=model_name or llm.model,
                          input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)
