"""Run one tool call safely: validate, gate, bound in time, retry transients, bound in size.

:func:`execute` is the only way agents and the offline planner call a tool. Contract:

* arguments are validated against ``spec.parameters`` (JSON schema); omitted nullable arguments are
  filled with ``null`` first, so playbooks and models may leave optional ones out → otherwise
  ``invalid_arguments``;
* a mutating tool runs only with ``approved=True``; without it the result is ``approval_required``
  and nothing is called;
* the backend is the caller's replay store when ``ctx.replay`` is set, else the live integration
  when the team configured it, else the demo world when ``integrations.demo`` is on, else
  ``not_configured``;
* each attempt is bounded by ``spec.timeout_s`` (→ ``timeout``, not retried: a slow upstream would
  only eat the run's deadline again); ``TransientToolError``, httpx transport errors and HTTP
  5xx/429 are retried ``spec.retries`` times with jittered exponential backoff (→ ``unavailable``);
* cancellation propagates: ``CancelledError`` is never swallowed;
* a backend bug becomes a typed ``internal_error`` result, so one tool cannot sink an investigation;
* ``data`` and ``evidence`` are bounded (:mod:`actors.tools.bounds`), and credentials are masked in
  error messages. :func:`mask_arguments` is what the run record stores for arguments.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

import httpx
import jsonschema
from tenacity import AsyncRetrying

from actors.tools.base import (
    BUILTIN_INTEGRATION,
    KNOWLEDGE_INTEGRATION,
    ToolContext,
    ToolError,
    ToolFn,
    ToolResult,
    ToolSpec,
    TransientToolError,
    is_secret_key,
)
from actors.tools.bounds import MAX_DATA_BYTES, bound_data, bound_evidence
from actors.tools.httpcall import raise_for_status
from actors.tools.schema import nullable_properties
from incidentfox.retry import backoff

log = logging.getLogger(__name__)

MASK = "***"
MAX_BACKOFF_S = 5.0
# Credential shapes worth masking wherever they appear in a string.
_TOKEN_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]{6,}"),  # Slack tokens
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),  # AWS access key ids
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
]

# id(schema) → (schema, validator); the schema is kept so a reused id can never hit a stale entry.
_validators: dict[int, tuple[dict[str, Any], jsonschema.protocols.Validator]] = {}


def _mask_text(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def secret_forms(secret: str) -> set[str]:
    """The ways an error message may quote ``secret``: as it is, without the blanks around it (a key
    pasted with a newline), and escaped as Python's ``repr`` of the text or of its bytes and as JSON
    would (``Illegal header value b'…\\n'``, where the newline is two characters)."""
    forms = {secret, secret.strip()}
    for form in list(forms):
        forms |= {repr(form)[1:-1], repr(form.encode())[2:-1], json.dumps(form)[1:-1]}
    return {f for f in forms if len(f) >= 4}


def _ordered(secrets: Iterable[str]) -> list[str]:
    """Every form of every secret, longest first (so a longer form is masked before a part of it)."""
    return sorted({f for s in secrets if s for f in secret_forms(s)}, key=len, reverse=True)


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with known credential values in any of their quoted forms (:func:`secret_forms`),
    longest first, and token shapes replaced by ``***``."""
    return _mask_text(text, _ordered(secrets))


def mask_arguments(args: Any, *, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``args`` safe to record: values under secret-looking keys become ``"***"``, and
    known credential values (``secrets``) or token shapes inside strings are replaced."""
    return _mask_value(args, _ordered(secrets))


def _mask_value(args: Any, secrets: list[str]) -> Any:
    if isinstance(args, dict):
        return {
            k: (
                MASK
                if is_secret_key(str(k)) and v not in (None, "", False)
                else _mask_value(v, secrets)
            )
            for k, v in args.items()
        }
    if isinstance(args, (list, tuple)):
        return [_mask_value(v, secrets) for v in args]
    if isinstance(args, str):
        return _mask_text(args, secrets)
    return args


def _validator(spec: ToolSpec) -> jsonschema.protocols.Validator:
    cached = _validators.get(id(spec.parameters))
    if cached is not None and cached[0] is spec.parameters:
        return cached[1]
    cls = jsonschema.validators.validator_for(spec.parameters, default=jsonschema.Draft202012Validator)
    validator = cls(spec.parameters)
    if len(_validators) > 1024:  # only synthetic specs (tests) could grow it; declared tools are ~30
        _validators.clear()
    _validators[id(spec.parameters)] = (spec.parameters, validator)
    return validator


def prepare_arguments(spec: ToolSpec, args: Any) -> dict[str, Any]:
    """Validated arguments with omitted nullable ones set to ``None``; ``ToolError`` otherwise."""
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ToolError("invalid_arguments", "arguments must be a JSON object")
    full = {name: None for name in nullable_properties(spec.parameters)} | args
    error = jsonschema.exceptions.best_match(_validator(spec).iter_errors(full))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(arguments)"
        raise ToolError("invalid_arguments", f"{where}: {error.message[:300]}")
    return full


def resolve_backend(spec: ToolSpec, ctx: ToolContext) -> ToolFn:
    """The replay store when the caller set one (:mod:`actors.tools.replay`), else the live backend
    when its integration is configured, else the demo world, else not_configured."""
    if ctx.replay is not None:
        return ctx.replay.backend(spec.name)
    # A demo team's built-in tools answer from its world (it has no recorded deliveries); an MCP
    # tool's server is its backend.
    # The knowledge base is the team's own, in demo teams too (the demo seeds runbooks).
    if (ctx.enabled(spec.integration) and not (spec.integration == BUILTIN_INTEGRATION and ctx.enabled("demo"))) \
            or spec.integration in ("mcp", KNOWLEDGE_INTEGRATION):
        return spec.fn
    if ctx.enabled("demo"):
        from actors.tools.demo.backend import demo_backend

        fn = demo_backend(spec.name)
        if fn is not None:
            return fn
    raise ToolError(
        "not_configured",
        f"tool {spec.name!r} needs integrations.{spec.integration}, which this team has not set",
    )


def _as_transient(exc: BaseException) -> TransientToolError | None:
    if isinstance(exc, TransientToolError):
        return exc
    if isinstance(exc, httpx.TransportError):
        return TransientToolError("connection_error", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, httpx.HTTPStatusError):
        code = exc.response.status_code
        if code == 429 or code >= 500:
            return TransientToolError("upstream_unavailable", f"HTTP {code}")
    return None


def _retry_after(exc: BaseException) -> float | None:
    transient = _as_transient(exc)
    return transient.retry_after if transient is not None else None


async def execute(
    spec: ToolSpec,
    args: Any,
    ctx: ToolContext,
    *,
    approved: bool = False,
    backoff_s: float = 0.25,
    max_bytes: int = MAX_DATA_BYTES,
) -> ToolResult:
    """Run ``spec`` with ``args`` in ``ctx`` and return a :class:`ToolResult` (never raises, except
    ``CancelledError``)."""
    started = time.monotonic()
    secrets = _ordered(ctx.secret_values())
    attempts = 0
    try:
        call_args = prepare_arguments(spec, args)
        if spec.mutating and not approved:
            result = ToolResult(
                ok=False,
                error="approval_required",
                message=f"{spec.name} changes the system and needs explicit approval",
                data={"tool": spec.name, "arguments": _mask_value(call_args, secrets)},
                summary=f"{spec.name} is waiting for approval (Slack button or API)",
            )
            return _finish(result, started, attempts, max_bytes, secrets)
        backend = resolve_backend(spec, ctx)

        async def attempt() -> ToolResult:
            nonlocal attempts
            attempts += 1
            try:
                async with asyncio.timeout(spec.timeout_s):
                    return await backend(call_args, ctx)
            except TimeoutError:
                return ToolResult.failure("timeout", f"{spec.name} took longer than {spec.timeout_s:g}s")

        retrying = AsyncRetrying(**backoff(retry_on=lambda exc: _as_transient(exc) is not None,
                                           attempts=spec.retries + 1, first_s=backoff_s, max_s=MAX_BACKOFF_S,
                                           wait_hint=_retry_after))
        try:
            result = await retrying(attempt)
        except (ToolError, httpx.HTTPError) as exc:
            transient = _as_transient(exc)
            if transient is None:
                raise
            raise ToolError(
                "unavailable", f"{transient.reason} after {attempts} attempts: {transient.message}"
            ) from exc
        return _finish(result, started, attempts, max_bytes, secrets)
    except ToolError as exc:
        return _finish(ToolResult.failure(exc.reason, exc.message), started, attempts, max_bytes, secrets)
    except httpx.HTTPError as exc:  # a backend let an httpx error escape: map it like httpcall does
        failure = ToolResult.failure("upstream_error", type(exc).__name__)
        if isinstance(exc, httpx.HTTPStatusError):
            try:
                raise_for_status(exc.response, service=spec.integration)
            except ToolError as mapped:
                failure = ToolResult.failure(mapped.reason, mapped.message)
        return _finish(failure, started, attempts, max_bytes, secrets)
    except Exception as exc:  # a backend bug: typed failure, logged with its traceback
        log.exception("tool %s failed unexpectedly", spec.name)
        return _finish(
            ToolResult.failure("internal_error", f"{type(exc).__name__}: {exc}"),
            started,
            attempts,
            max_bytes,
            secrets,
        )


def _finish(
    result: ToolResult, started: float, attempts: int, max_bytes: int, secrets: list[str]
) -> ToolResult:
    data, cut_data, size = bound_data(result.data, max_bytes)
    evidence, cut_ev = bound_evidence(result.evidence)
    return result.model_copy(
        update={
            "data": data,
            "evidence": evidence,
            "message": _mask_text(result.message, secrets),
            "summary": _mask_text(result.summary, secrets),
            "truncated": result.truncated or cut_data or cut_ev,
            "result_size": size,
            "attempts": attempts,
            "duration_s": round(time.monotonic() - started, 4),
        }
    )
