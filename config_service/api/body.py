"""Request bodies are read *after* authorisation, by the route, through :func:`read_json`.

FastAPI parses declared body parameters before any dependency runs, which would answer a
forbidden request with bad JSON 400/422 instead of 403. Routes therefore take the raw request,
authorise, then call :func:`read_json` (size-limited by the middleware, parsed by the pure
:func:`config_service.core.jsondoc.parse_json`, validated by a pydantic model). The models' JSON
schemas are still published in OpenAPI through :func:`body_doc`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from config_service.core.jsondoc import parse_json
from incidentfox.errors import BadRequest, Unprocessable

M = TypeVar("M", bound=BaseModel)


async def read_body_json(request: Request, *, allow_empty: bool = False) -> Any:
    raw = await request.body()
    if not raw.strip():
        if allow_empty:
            return {}
        raise BadRequest("request body is empty; expected a JSON object", code="empty_body")
    return parse_json(raw)


async def read_json(request: Request, model: type[M], *, allow_empty: bool = False) -> M:
    doc = await read_body_json(request, allow_empty=allow_empty)
    if not isinstance(doc, dict):
        raise Unprocessable("request body must be a JSON object", code="validation_error")
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type", "")}
                  for e in exc.errors(include_input=False, include_url=False)]
        raise Unprocessable("request failed validation", code="validation_error",
                            details={"errors": errors}) from None


def body_doc(model: type[BaseModel] | dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON request body (models here have no nested ``$defs``)."""
    schema = model if isinstance(model, dict) else model.model_json_schema()
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}
