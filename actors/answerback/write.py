"""One answer to write: what the destination modules plan and :mod:`.dispatch` carries out."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from actors.answerback.http import AnswerError


@dataclass(frozen=True)
class Write:
    """``destination`` names the record (``github.comment``, ``pagerduty.note`` …). ``post`` writes
    and returns the destination's id of what it wrote; ``find`` returns the id of an earlier post of
    this run (its marker, or its API-native key) or None: it runs before any ``post`` that follows
    an attempt which may have reached the destination, and before every ``post`` when ``always_find``
    (a status change: the incident may be there already, or past it)."""

    destination: str
    post: Callable[[], Awaitable[str]]
    find: Callable[[], Awaitable[str | None]]
    always_find: bool = False


async def nothing_found() -> str | None:
    """``find`` of a destination whose API deduplicates by itself (an idempotency key)."""
    return None


def parse_block(model: type[BaseModel], raw: Mapping[str, Any] | None, *, name: str) -> Any:
    """``integrations.<name>`` as ``model``, or ``bad_config`` naming each bad path (never a value)."""
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        paths = ", ".join(f"integrations.{name}." + ".".join(str(p) for p in e["loc"]) + f" ({e['msg']})"
                          for e in exc.errors(include_input=False))
        raise AnswerError("bad_config", paths) from None


def require(value: Any, path: str, why: str) -> Any:
    if value in (None, ""):
        raise AnswerError("bad_config", f"{path} is not set; {why}")
    return value


__all__ = ["Write", "nothing_found", "parse_block", "require"]
