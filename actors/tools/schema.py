"""Builders for strict-mode JSON schemas (OpenAI function calling ``strict: true``).

Strict mode wants every object closed (``additionalProperties: false``) and every property listed in
``required``; an optional argument is expressed as nullable (``"type": ["integer", "null"]``) and the
backend applies its default when it receives ``null``.
"""

from __future__ import annotations

from typing import Any


def _typed(kind: str, description: str, nullable: bool, **extra: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [kind, "null"] if nullable else kind, "description": description}
    if extra.get("enum") is not None and nullable:
        extra["enum"] = [*extra["enum"], None]
    schema.update({k: v for k, v in extra.items() if v is not None})
    return schema


def string(
    description: str, *, nullable: bool = False, enum: list[str] | None = None, max_length: int | None = 2000
) -> dict[str, Any]:
    return _typed("string", description, nullable, enum=enum, maxLength=max_length)


def integer(
    description: str, *, nullable: bool = False, minimum: int | None = None, maximum: int | None = None
) -> dict[str, Any]:
    return _typed("integer", description, nullable, minimum=minimum, maximum=maximum)


def number(
    description: str, *, nullable: bool = False, minimum: float | None = None, maximum: float | None = None
) -> dict[str, Any]:
    return _typed("number", description, nullable, minimum=minimum, maximum=maximum)


def boolean(description: str, *, nullable: bool = False) -> dict[str, Any]:
    return _typed("boolean", description, nullable)


def array(
    items: dict[str, Any], description: str, *, nullable: bool = False, max_items: int | None = 50
) -> dict[str, Any]:
    return _typed("array", description, nullable, items=items, maxItems=max_items)


def obj(description: str = "", /, **properties: dict[str, Any]) -> dict[str, Any]:
    """A closed object whose properties are all required (nullable ones may be ``null``)."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def nullable_properties(schema: dict[str, Any]) -> set[str]:
    """Top-level properties that accept ``null`` (the ones a caller may omit)."""
    out: set[str] = set()
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type")
        if kind == "null" or (isinstance(kind, list) and "null" in kind):
            out.add(name)
    return out


# Shared argument shapes (one wording for the model everywhere).
SINCE_MINUTES = integer(
    "How far back to look, in minutes (null: 60).", nullable=True, minimum=1, maximum=7 * 24 * 60
)
LIMIT = integer("Maximum number of items to return (null: 100).", nullable=True, minimum=1, maximum=1000)
