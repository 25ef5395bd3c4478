"""The replay backend: tool calls answered from recorded responses instead of a live system.

A :class:`ReplayStore` holds recordings; each names a ``tool``, the ``match`` parameters it answers
and the recorded ``result`` (the :class:`~actors.tools.base.ToolResult` fields: ``ok``, ``data``,
``evidence``, ``summary``, ``error``, ``message``). A call matches a recording of its tool when every
``match`` key equals the call's argument of that name (keys the recording leaves out match
anything, so a recording without ``match`` answers every call of its tool); the most specific match
wins, then the first recorded. A call that matches nothing answers like an empty backend: ``ok`` with
no data and the summary ``no data: …``, never an error, so replaying an incident that never recorded
a tool looks like a quiet system, not a broken one.

It serves any declared tool. :func:`actors.tools.execute.resolve_backend` uses it, ahead of live
integrations and the demo world, when the caller put a store in ``ToolContext.replay`` (the
evaluation harness, tests, a recorded demo): the store comes from the process, never from team
config, so a tenant cannot point a tool at the platform's files.

On disk (:meth:`ReplayStore.from_dir`): every ``*.json`` file under a directory, in path order, holds
one recording object or a list of them. :func:`recording` turns a live call and its result into one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actors.tools.base import ToolContext, ToolFn, ToolResult

RESULT_FIELDS = ("ok", "data", "error", "message", "evidence", "summary")


class ReplayError(ValueError):
    """A recording file that is not a recording (names the file and the problem)."""


@dataclass(frozen=True)
class Recording:
    tool: str
    match: Mapping[str, Any]
    result: ToolResult

    def matches(self, tool: str, args: Mapping[str, Any]) -> bool:
        return tool == self.tool and all(_same(args.get(k), v) for k, v in self.match.items())


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def parse_recording(doc: Any, *, where: str = "recording") -> Recording:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("tool"), str) or not doc["tool"]:
        raise ReplayError(f"{where}: a recording is an object with a 'tool' name")
    match = {} if doc.get("match") is None else doc["match"]
    result = {} if doc.get("result") is None else doc["result"]
    if not isinstance(match, Mapping) or not isinstance(result, Mapping):
        raise ReplayError(f"{where}: 'match' and 'result' must be objects")
    fields = {k: result[k] for k in RESULT_FIELDS if k in result}
    fields.setdefault("ok", fields.get("error") is None)
    try:
        return Recording(doc["tool"], dict(match), ToolResult.model_validate(fields))
    except ValueError as exc:
        raise ReplayError(f"{where}: result does not fit a tool result ({type(exc).__name__})") from None


@dataclass(frozen=True)
class ReplayStore:
    recordings: tuple[Recording, ...] = field(default_factory=tuple)

    @classmethod
    def from_records(cls, docs: Iterable[Any]) -> ReplayStore:
        return cls(tuple(parse_recording(d, where=f"recording {i}") for i, d in enumerate(docs)))

    @classmethod
    def from_dir(cls, path: Path) -> ReplayStore:
        out: list[Recording] = []
        for file in sorted(Path(path).rglob("*.json")):
            try:
                doc = json.loads(file.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise ReplayError(f"{file.name}: not JSON ({type(exc).__name__})") from None
            docs = doc if isinstance(doc, list) else [doc]
            out.extend(parse_recording(d, where=f"{file.name}[{i}]") for i, d in enumerate(docs))
        return cls(tuple(out))

    def lookup(self, tool: str, args: Mapping[str, Any]) -> Recording | None:
        """The most specific recording answering ``tool(args)`` (first recorded on a tie), or None."""
        best: Recording | None = None
        for rec in self.recordings:
            if rec.matches(tool, args) and (best is None or len(rec.match) > len(best.match)):
                best = rec
        return best

    def answer(self, tool: str, args: Mapping[str, Any]) -> ToolResult:
        rec = self.lookup(tool, args)
        if rec is None:
            return ToolResult.success(None, summary=f"no data: nothing recorded for {tool} with these arguments")
        # A shallow copy: the recorded evidence is shared, never mutated (tool results are immutable
        # values; the executor bounds and masks them into new copies). A deep copy of a large
        # recording (hundreds of spans) cost more than the ranking of it.
        return rec.result.model_copy()

    def backend(self, tool: str) -> ToolFn:
        """An async backend for ``tool`` that answers from this store."""

        async def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
            return self.answer(tool, args)

        run.__name__ = f"replay_{tool}"
        return run


def recording(tool: str, args: Mapping[str, Any], result: ToolResult, *,
              match_keys: Iterable[str] | None = None) -> dict[str, Any]:
    """A JSON-able recording of one call: ``match`` is ``args`` narrowed to ``match_keys`` (None: all
    non-null arguments, e.g. ``service`` and ``query`` but not the window, to match any window)."""
    keys = list(match_keys) if match_keys is not None else [k for k, v in args.items() if v is not None]
    return {"tool": tool, "match": {k: args.get(k) for k in keys},
            "result": result.model_dump(mode="json", include=set(RESULT_FIELDS))}
