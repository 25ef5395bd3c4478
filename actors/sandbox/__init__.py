"""Interactive sandbox sessions: a Claude-style agent (Anthropic Messages API) with built-in tools
confined to an isolated per-session workspace. See docs/sandbox.md."""
