"""boto3 plumbing for the AWS tools: cached clients and typed error mapping.

boto3 is synchronous, so calls run in ``asyncio.to_thread``; botocore's own timeouts end the thread
and its retries are off (``execute()`` owns retries). Clients are cached per (credentials, region,
endpoint, service): creating one costs tens of milliseconds, and botocore clients are thread-safe.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from actors.tools.base import ToolContext, ToolError, TransientToolError

T = TypeVar("T")
TIMEOUT_S = 25.0
_THROTTLE = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "SlowDown",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalError",
}
_AUTH = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "AuthFailure",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
}
_clients: OrderedDict[tuple, Any] = OrderedDict()
_clients_lock = threading.Lock()
_MAX_CLIENTS = 32


def _client(config: dict[str, Any], service: str) -> Any:
    key = (
        service,
        config.get("region"),
        config.get("endpoint_url"),
        config.get("access_key_id"),
        config.get("secret_access_key"),
        config.get("session_token"),
    )
    with _clients_lock:
        if key in _clients:
            _clients.move_to_end(key)
            return _clients[key]
    session = boto3.session.Session(
        aws_access_key_id=config.get("access_key_id") or None,
        aws_secret_access_key=config.get("secret_access_key") or None,
        aws_session_token=config.get("session_token") or None,
        region_name=config.get("region") or "us-east-1",
    )
    client = session.client(
        service,
        endpoint_url=config.get("endpoint_url") or None,
        config=Config(
            connect_timeout=5, read_timeout=TIMEOUT_S, retries={"max_attempts": 1, "mode": "standard"}
        ),
    )
    with _clients_lock:
        _clients[key] = client
        while len(_clients) > _MAX_CLIENTS:
            _clients.popitem(last=False)
    return client


def map_client_error(exc: bexc.ClientError) -> ToolError:
    err = exc.response.get("Error", {})
    code = str(err.get("Code", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    detail = f"aws {exc.operation_name}: {code}: {str(err.get('Message', ''))[:300]}"
    if code in _THROTTLE or status == 429 or status >= 500:
        return TransientToolError(
            "rate_limited" if status == 429 or "Thrott" in code else "upstream_unavailable", detail
        )
    if code in _AUTH or status == 401:
        return ToolError("unauthorized", detail)
    if "AccessDenied" in code or status == 403:
        return ToolError("forbidden", detail)
    if "NotFound" in code or status == 404:
        return ToolError("not_found", detail)
    return ToolError("bad_request", detail)


async def call(ctx: ToolContext, service: str, fn: Callable[[Any], T]) -> T:
    config = ctx.integration("aws")

    def run() -> T:
        return fn(_client(config, service))

    try:
        return await asyncio.to_thread(run)
    except bexc.ClientError as exc:
        raise map_client_error(exc) from exc
    except (
        bexc.EndpointConnectionError,
        bexc.ConnectTimeoutError,
        bexc.ReadTimeoutError,
        bexc.ConnectionClosedError,
    ) as exc:
        raise TransientToolError("connection_error", f"aws {service}: {type(exc).__name__}") from exc
    except (bexc.NoCredentialsError, bexc.PartialCredentialsError) as exc:
        raise ToolError("not_configured", "integrations.aws has no usable credentials") from exc
    except bexc.ParamValidationError as exc:
        raise ToolError("invalid_arguments", str(exc)[:300]) from exc
