"""An openai-agents ``Model`` that speaks the Anthropic Messages API through the ``anthropic`` SDK.

openai-agents reaches Anthropic only through its LiteLLM extension, which would pull LiteLLM into
every worker; this adapter is the small direct route instead: the SDK's input items are converted
to chat messages by the SDK's own converter, then to Anthropic ``messages`` (``tool_use`` /
``tool_result`` blocks, system prompt apart), and the reply's ``text`` / ``tool_use`` blocks come
back as Responses-format output items the runner understands. Parallel tool use is Anthropic's
default (several ``tool_use`` blocks in one reply), so the planner's sub-agent calls still fan out.

A structured ``output_type`` is requested by describing its JSON schema in the system prompt
(the Messages API has no JSON mode); the runner validates the answer as usual.
Streaming is not implemented (the engine never streams); it raises ``NotImplementedError``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anthropic
from agents.agent_output import AgentOutputSchemaBase
from agents.exceptions import ModelBehaviorError
from agents.handoffs import Handoff
from agents.items import ModelResponse, TResponseInputItem, TResponseStreamEvent
from agents.model_settings import ModelSettings
from agents.models.chatcmpl_converter import Converter
from agents.models.interface import Model, ModelTracing
from agents.tool import FunctionTool, Tool
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

DEFAULT_MAX_TOKENS = 4096


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict):
            parts.append(part.get("text") or part.get("refusal") or "")
        else:
            parts.append(str(part))
    return "".join(parts)


def to_anthropic_messages(items: str | list[TResponseInputItem]) -> tuple[str, list[dict[str, Any]]]:
    """``(system, messages)`` for the Messages API from the SDK's input items.

    Consecutive same-role turns are merged (the API wants user/assistant alternation), and tool
    outputs become ``tool_result`` blocks in a user turn.
    """
    system_parts: list[str] = []
    out: list[dict[str, Any]] = []

    def push(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": list(blocks)})

    for msg in Converter.items_to_messages(items):
        role = msg.get("role")
        if role in ("system", "developer"):
            system_parts.append(_text_of(msg.get("content")))
        elif role == "user":
            text = _text_of(msg.get("content"))
            push("user", [{"type": "text", "text": text or "(empty)"}])
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = _text_of(msg.get("content"))
            if text:
                blocks.append({"type": "text", "text": text})
            for call in msg.get("tool_calls") or []:
                fn = call.get("function", {})
                try:
                    args = json.loads(fn.get("arguments") or "{}")
                except json.JSONDecodeError:
                    args = {}
                blocks.append({"type": "tool_use", "id": call["id"], "name": fn.get("name", ""), "input": args})
            push("assistant", blocks)
        elif role == "tool":
            push("user", [{"type": "tool_result", "tool_use_id": msg.get("tool_call_id", ""),
                           "content": _text_of(msg.get("content"))}])
    if out and out[0]["role"] != "user":
        out.insert(0, {"role": "user", "content": [{"type": "text", "text": "(begin)"}]})
    return "\n\n".join(p for p in system_parts if p), out


def to_anthropic_tools(tools: list[Tool]) -> list[dict[str, Any]]:
    result = []
    for tool in tools:
        if not isinstance(tool, FunctionTool):
            raise ModelBehaviorError(f"the anthropic provider supports function tools only, not {type(tool).__name__}")
        result.append({"name": tool.name, "description": tool.description,
                       "input_schema": tool.params_json_schema})
    return result


def from_anthropic_content(content: list[Any]) -> list[Any]:
    """Responses-format output items for a Messages API reply's content blocks."""
    output: list[Any] = []
    texts: list[str] = []
    for block in content:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "tool_use":
            output.append(ResponseFunctionToolCall(
                type="function_call", id=f"fc_{uuid.uuid4().hex[:12]}", call_id=block.id, name=block.name,
                arguments=json.dumps(block.input or {}), status="completed"))
    if texts:
        output.insert(0, ResponseOutputMessage(
            type="message", id=f"msg_{uuid.uuid4().hex[:12]}", role="assistant", status="completed",
            content=[ResponseOutputText(type="output_text", text="".join(texts), annotations=[])]))
    return output


class AnthropicModel(Model):
    """``Model`` over ``anthropic.AsyncAnthropic`` (``base_url`` may point at any Messages-API server)."""

    def __init__(self, model: str, client: anthropic.AsyncAnthropic) -> None:
        self.model = model
        self._client = client

    async def get_response(
        self,
        system_instructions: str | None,
        input: str | list[TResponseInputItem],
        model_settings: ModelSettings,
        tools: list[Tool],
        output_schema: AgentOutputSchemaBase | None,
        handoffs: list[Handoff],
        tracing: ModelTracing,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        prompt: Any | None = None,
        **_: Any,
    ) -> ModelResponse:
        if handoffs:
            raise ModelBehaviorError("the anthropic provider does not support handoffs")
        system, messages = to_anthropic_messages(input)
        system = "\n\n".join(p for p in (system_instructions, system) if p)
        if output_schema is not None and not output_schema.is_plain_text():
            system += ("\n\nWhen you give your final answer, reply with only a JSON object (no prose, no code "
                       "fence) matching this JSON schema:\n" + json.dumps(output_schema.json_schema()))
        kwargs: dict[str, Any] = {
            "model": self.model,
            "max_tokens": model_settings.max_tokens or DEFAULT_MAX_TOKENS,
            "messages": messages,
        }
        if system:
            kwargs["system"] = system
        if tools:
            kwargs["tools"] = to_anthropic_tools(tools)
            if model_settings.parallel_tool_calls is False:
                kwargs["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
        if model_settings.temperature is not None:
            kwargs["temperature"] = model_settings.temperature
        reply = await self._client.messages.create(**kwargs)
        usage = Usage(requests=1, input_tokens=reply.usage.input_tokens, output_tokens=reply.usage.output_tokens,
                      total_tokens=reply.usage.input_tokens + reply.usage.output_tokens)
        return ModelResponse(output=from_anthropic_content(reply.content), usage=usage, response_id=None,
                             request_id=getattr(reply, "_request_id", None))

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[TResponseStreamEvent]:
        raise NotImplementedError("the engine does not stream model responses")

    async def close(self) -> None:
        await self._client.close()
