"""Pure JSON edge: parse request bodies into plain trees we are willing to store.

:func:`parse_json` raises only :class:`incidentfox.errors.IncidentFoxError` subclasses:

* ``malformed_json`` (400): not JSON, not UTF-8, ``NaN``/``Infinity`` (not JSON, and PostgreSQL's
  JSON type refuses them), or a number Python cannot parse;
* ``too_deep`` (422): nesting deeper than ``max_depth`` (the C parser's recursion limit included);
* ``invalid_string`` (422): a NUL character or a lone surrogate, which PostgreSQL text and JSON
  columns refuse, so accepting them would turn bad input into a 500 at commit time;
* ``invalid_number`` (422): a number too large for a float (``1e999`` parses as infinity).
"""

from __future__ import annotations

import json
import math
from typing import Any

from incidentfox.errors import BadRequest, Unprocessable

MAX_DEPTH = 32
MAX_DB_INT = 2**31 - 1  # ids and versions compared in SQL must fit an INTEGER column


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("request body is not UTF-8", code="malformed_json") from None
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        raise BadRequest("request body is not valid JSON", code="malformed_json",
                         details={"reason": str(exc)[:200]}) from None
    check_tree(doc, max_depth=max_depth)
    return doc


def check_tree(doc: Any, *, max_depth: int = MAX_DEPTH) -> None:
    """Refuse trees deeper than ``max_depth`` and strings PostgreSQL cannot store."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise _too_deep(max_depth)
            for key, value in node.items():
                check_string(key)
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise _too_deep(max_depth)
            stack.extend((value, depth + 1) for value in node)
        elif isinstance(node, str):
            check_string(node)
        elif isinstance(node, float) and not math.isfinite(node):
            raise Unprocessable("numbers must be finite", code="invalid_number")


def check_string(value: str) -> None:
    """Refuse (422 ``invalid_string``) strings PostgreSQL cannot store: NUL, lone surrogates."""
    if "\x00" in value:
        raise Unprocessable("strings must not contain NUL characters", code="invalid_string")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Unprocessable("strings must be valid Unicode (no lone surrogates)",
                            code="invalid_string") from None


def _too_deep(max_depth: int) -> Unprocessable:
    return Unprocessable(f"JSON nesting deeper than {max_depth} levels", code="too_deep",
                         details={"max_depth": max_depth})
