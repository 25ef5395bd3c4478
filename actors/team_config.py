"""A typed, read-only view of the parts of a team's effective config the engine reads.

The config service returns the merged org → unit → team document (secrets decrypted for the
engine). The engine reads these keys; all are optional and fall back to the defaults shown:

```yaml
deployment: {mode: shared}                # or dedicated → Ray resource team_<org>_<team>
slack: {default_channel: null}            # where to post when the trigger has no thread
integrations:
  slack: {bot_token: xoxb-…}              # secret; never leaves the SlackReporter's client
  demo: {enabled: true}                   # investigate the seeded demo world
  <integration>: {…}                      # tool backends, see actors/tools/
investigation:
  deadline_s: 300                         # the run ends with what it has
  correlation_window_s: 600
  planner: auto                           # auto | offline | llm (auto: llm when a provider is set)
llm:
  provider: null                          # openai | openai_compatible | anthropic; null → offline
  model: gpt-4.1
  base_url: null                          # openai_compatible / anthropic (or a local test server)
  api_key: …                              # secret
  request_timeout_s: 60
  max_turns: 20                           # default max_turns for the planner and sub-agents
subagents: {kubernetes: true, …}          # enabled sub-agents (absent → enabled)
agents:                                   # optional per-agent overrides
  planner: {instructions: null, max_turns: null, model: null}
  kubernetes | metrics | logs | changes | cloud: {same, plus
    playbook: [{tool: …, args: {…}}, …]}  # the offline planner's calls (absent → built-in playbook)
tools: {<tool name>: true|false}          # the team's tool allow-list (absent → catalogue default)
quotas: {max_concurrent_runs: 4}          # runs of this team dispatched at once (pool, scheduler)
```

The view never exposes secrets through ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SUBAGENTS: tuple[str, ...] = ("kubernetes", "metrics", "logs", "changes", "cloud")
PROVIDERS: tuple[str, ...] = ("openai", "openai_compatible", "anthropic")
DEFAULT_DEADLINE_S = 300.0
DEFAULT_CORRELATION_WINDOW_S = 600.0
DEFAULT_MAX_CONCURRENT_RUNS = 4


def max_concurrent_runs(doc: Mapping[str, Any] | None, default: int = DEFAULT_MAX_CONCURRENT_RUNS) -> int:
    """``quotas.max_concurrent_runs`` (≥ 1), or ``default`` when absent or not an integer.

    The one reader of the quota: the pool's dispatcher and the scheduler's batches both use it."""
    try:
        return max(1, int(_get(doc, "quotas", "max_concurrent_runs", default=default)))
    except (TypeError, ValueError):
        return default


def _get(doc: Mapping[str, Any] | None, *path: str, default: Any = None) -> Any:
    node: Any = doc or {}
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return default
        node = node[key]
    return default if node is None else node


def _playbook(value: Any) -> list[tuple[str, dict[str, Any]]] | None:
    if not isinstance(value, list):
        return None
    steps = [(str(v["tool"]), dict(v.get("args") or {})) for v in value
             if isinstance(v, Mapping) and isinstance(v.get("tool"), str)]
    return steps or None


@dataclass(frozen=True)
class LLMSettings:
    provider: str
    model: str
    base_url: str | None
    api_key: str | None
    request_timeout_s: float

    def __repr__(self) -> str:
        return f"LLMSettings(provider={self.provider!r}, model={self.model!r}, base_url={self.base_url!r})"


@dataclass(frozen=True)
class AgentSettings:
    name: str
    enabled: bool
    instructions: str | None
    max_turns: int
    model: str | None
    playbook: list[tuple[str, dict[str, Any]]] | None = None


class TeamConfig:
    """Accessors over one effective-config snapshot (a plain dict, secrets included)."""

    def __init__(self, doc: Mapping[str, Any] | None, *, org_id: str = "", team_id: str = "") -> None:
        self.doc: dict[str, Any] = dict(doc or {})
        self.org_id = org_id
        self.team_id = team_id

    def __repr__(self) -> str:
        return f"TeamConfig(org={self.org_id!r}, team={self.team_id!r}, keys={sorted(self.doc)!r})"

    # placement ------------------------------------------------------------
    @property
    def deployment_mode(self) -> str:
        mode = _get(self.doc, "deployment", "mode", default="shared")
        return mode if mode in ("shared", "dedicated") else "shared"

    @property
    def max_concurrent_runs(self) -> int:
        return max_concurrent_runs(self.doc)

    # slack ----------------------------------------------------------------
    @property
    def slack_bot_token(self) -> str | None:
        tok = _get(self.doc, "integrations", "slack", "bot_token")
        return tok if isinstance(tok, str) and tok else None

    @property
    def slack_default_channel(self) -> str | None:
        ch = _get(self.doc, "slack", "default_channel")
        return ch if isinstance(ch, str) and ch else None

    # investigation --------------------------------------------------------
    @property
    def deadline_s(self) -> float:
        try:
            value = float(_get(self.doc, "investigation", "deadline_s", default=DEFAULT_DEADLINE_S))
        except (TypeError, ValueError):
            return DEFAULT_DEADLINE_S
        return value if value > 0 else DEFAULT_DEADLINE_S

    @property
    def correlation_window_s(self) -> float:
        try:
            return float(_get(self.doc, "investigation", "correlation_window_s",
                              default=DEFAULT_CORRELATION_WINDOW_S))
        except (TypeError, ValueError):
            return DEFAULT_CORRELATION_WINDOW_S

    @property
    def integrations(self) -> dict[str, Any]:
        value = _get(self.doc, "integrations", default={})
        return dict(value) if isinstance(value, Mapping) else {}

    @property
    def llm(self) -> LLMSettings | None:
        """The configured provider, or None (→ the offline planner)."""
        provider = _get(self.doc, "llm", "provider")
        if provider not in PROVIDERS:
            return None
        return LLMSettings(
            provider=provider,
            model=str(_get(self.doc, "llm", "model", default="gpt-4.1")),
            base_url=_get(self.doc, "llm", "base_url"),
            api_key=_get(self.doc, "llm", "api_key"),
            request_timeout_s=float(_get(self.doc, "llm", "request_timeout_s", default=60.0)),
        )

    @property
    def planner_mode(self) -> str:
        """``offline`` or ``llm``: ``investigation.planner`` (auto → llm iff a provider is set)."""
        mode = _get(self.doc, "investigation", "planner", default="auto")
        if mode == "offline" or self.llm is None:
            return "offline"
        return "llm"

    def agent(self, name: str) -> AgentSettings:
        node = _get(self.doc, "agents", name, default={})
        node = node if isinstance(node, Mapping) else {}
        default_turns = _get(self.doc, "investigation", "max_turns", default=20)
        try:
            max_turns = max(1, int(node.get("max_turns") or default_turns))
        except (TypeError, ValueError):
            max_turns = 20
        switches = _get(self.doc, "subagents", default={})
        enabled = bool(switches.get(name, True)) if isinstance(switches, Mapping) else True
        return AgentSettings(name=name, enabled=enabled and bool(node.get("enabled", True)),
                             instructions=node.get("instructions") or None, max_turns=max_turns,
                             model=node.get("model") or None, playbook=_playbook(node.get("playbook")))

    @property
    def enabled_subagents(self) -> list[str]:
        return [n for n in SUBAGENTS if self.agent(n).enabled]

    @property
    def tool_switches(self) -> dict[str, bool]:
        """The team's ``tools: {id: bool}`` allow-list overrides."""
        value = _get(self.doc, "tools", default={})
        return {str(k): bool(v) for k, v in value.items()} if isinstance(value, Mapping) else {}
