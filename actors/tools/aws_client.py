"""boto3 plumbing for the AWS tools: the tenant's credentials only, cached clients, typed errors.

Credentials come from :func:`incidentfox.aws_credentials.aws_integration`: the tenant's own keys, or
a role assumed (``sts:AssumeRole`` with ``ExternalId = <org_id>:<external_id>``) by the operator's
dedicated assumer identity (``INCIDENTFOX_AWS_ASSUMER_*``). Every boto3 session is created with
explicit keys, so the process's default credential chain (environment, shared files, instance or
pod role: the platform's own identity) is never consulted for a tenant. The endpoint is the
operator's ``AWS_ENDPOINT_URL`` when set, never a tenant's.

boto3 is synchronous, so calls run in ``asyncio.to_thread``; botocore's own timeouts end the thread
and its retries are off (``execute()`` owns retries). Clients are cached per (service, region,
endpoint, digest of the keys): creating one costs tens of milliseconds, and botocore clients are
thread-safe. Assumed-role keys are cached until five minutes before they expire.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from actors.tools.base import ToolContext, ToolError, TransientToolError
from incidentfox.aws_credentials import (
    AssumeRole,
    AwsCredentialsError,
    AwsIntegration,
    StaticKeys,
    aws_integration,
    scoped_external_id,
    session_name,
)
from incidentfox.settings import Settings, get_settings

T = TypeVar("T")
TIMEOUT_S = 25.0
ASSUMED_TTL_S = 900
_REFRESH_MARGIN = timedelta(minutes=5)
# Credential sources that are the host's ambient identity, never an assumer of its own.
_AMBIENT_METHODS = frozenset({"env", "iam-role", "container-role"})
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
_assumed: dict[tuple, tuple[StaticKeys, datetime]] = {}
_lock = threading.Lock()
_MAX_CLIENTS = 32


def operator_endpoint() -> str | None:
    """``AWS_ENDPOINT_URL`` from the operator's environment (a VPC endpoint; moto in tests), read per
    call (``Settings.aws_endpoint_url``) so the client cache is keyed on the endpoint in force."""
    return Settings().aws_endpoint_url or None


def _botocore_config() -> Config:
    return Config(connect_timeout=5, read_timeout=TIMEOUT_S, retries={"max_attempts": 1, "mode": "standard"})


def _digest(*parts: str | None) -> str:
    return hashlib.sha256("\0".join(p or "" for p in parts).encode()).hexdigest()


def explicit_session(keys: StaticKeys, region: str) -> boto3.session.Session:
    """A boto3 session holding exactly ``keys``: its credential resolver is never reached."""
    return boto3.session.Session(aws_access_key_id=keys.access_key_id,
                                 aws_secret_access_key=keys.secret_access_key,
                                 aws_session_token=keys.session_token, region_name=region)


def assumer_session(settings: Settings, region: str) -> boto3.session.Session:
    """The operator's assumer identity, or ``not_configured``; never the default chain."""
    key_id, secret = settings.aws_assumer_access_key_id, settings.aws_assumer_secret_access_key
    if key_id is not None and secret is not None:
        return explicit_session(StaticKeys(key_id.get_secret_value(), secret.get_secret_value()), region)
    if settings.aws_assumer_profile:
        try:
            session = boto3.session.Session(profile_name=settings.aws_assumer_profile, region_name=region)
        except bexc.ProfileNotFound:
            raise ToolError("not_configured", "INCIDENTFOX_AWS_ASSUMER_PROFILE names no profile") from None
        creds = session.get_credentials()
        # A profile without credentials of its own falls through to the instance or pod role.
        if creds is None or creds.method in _AMBIENT_METHODS:
            raise ToolError("not_configured", "INCIDENTFOX_AWS_ASSUMER_PROFILE has no credentials of its own")
        return session
    raise ToolError("not_configured", "integrations.aws.role_arn needs the operator's AWS assumer identity "
                                      "(INCIDENTFOX_AWS_ASSUMER_*), which is not configured")


def _assume(role: AssumeRole, region: str, *, org_id: str, team_id: str, settings: Settings,
            scope: str = "") -> StaticKeys:
    if not org_id:
        raise ToolError("not_configured", "integrations.aws.role_arn is assumed only for a known org")
    external_id = scoped_external_id(org_id, role.external_id)
    name = session_name(org_id, team_id)
    key = (scope, role.role_arn, _digest(external_id), name, region, operator_endpoint())
    now = datetime.now(UTC)
    with _lock:
        hit = _assumed.get(key)
    if hit is not None and hit[1] - now > _REFRESH_MARGIN:
        return hit[0]
    sts = assumer_session(settings, region).client("sts", endpoint_url=operator_endpoint(),
                                                   config=_botocore_config())
    try:
        resp = sts.assume_role(RoleArn=role.role_arn, RoleSessionName=name, ExternalId=external_id,
                               DurationSeconds=ASSUMED_TTL_S)
    except bexc.ClientError as exc:
        err = map_client_error(exc)
        if err.reason in ("forbidden", "unauthorized", "bad_request"):
            raise ToolError("forbidden", f"assuming integrations.aws.role_arn was refused "
                                         f"({exc.response.get('Error', {}).get('Code', '')}): the role's "
                                         "trust policy must allow the IncidentFox assumer with "
                                         f"sts:ExternalId \"{org_id}:<external_id>\"") from None
        raise err from None
    c = resp["Credentials"]
    keys = StaticKeys(c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    expires = c["Expiration"]
    expires = expires if isinstance(expires, datetime) else datetime.fromisoformat(str(expires))
    with _lock:
        _assumed[key] = (keys, expires.astimezone(UTC))
    return keys


def tenant_keys(integration: AwsIntegration, *, org_id: str, team_id: str,
                settings: Settings | None = None, scope: str = "") -> StaticKeys:
    """The keys a tenant's calls are signed with: its own, or its role's (assumed, cached for the
    run ``scope``)."""
    creds = integration.credentials
    if isinstance(creds, StaticKeys):
        return creds
    return _assume(creds, integration.region, org_id=org_id, team_id=team_id,
                   settings=settings or get_settings(), scope=scope)


def forget_run(scope: str) -> int:
    """Drop the cached clients and assumed-role keys of one run (called when the run ends, with the
    rest of its decrypted integrations): tenant keys never outlive the run that used them here.
    Returns how many entries went."""
    with _lock:
        gone = [k for k in _clients if k[0] == scope] + [k for k in _assumed if k[0] == scope]
        for k in gone:
            _clients.pop(k, None)
            _assumed.pop(k, None)
    return len(gone)


def _client(keys: StaticKeys, region: str, service: str, *, scope: str = "") -> Any:
    endpoint = operator_endpoint()
    key = (scope, service, region, endpoint,
           _digest(keys.access_key_id, keys.secret_access_key, keys.session_token))
    with _lock:
        if key in _clients:
            _clients.move_to_end(key)
            return _clients[key]
    client = explicit_session(keys, region).client(service, endpoint_url=endpoint, config=_botocore_config())
    with _lock:
        _clients[key] = client
        while len(_clients) > _MAX_CLIENTS:
            _clients.popitem(last=False)
    return client


def integration(ctx: ToolContext) -> AwsIntegration:
    """``integrations.aws`` validated, or ``not_configured`` naming the refused field."""
    try:
        return aws_integration(ctx.integration("aws"))
    except AwsCredentialsError as exc:
        where = "integrations.aws" + (f".{exc.path}" if exc.path else "")
        raise ToolError("not_configured", f"{where}: {exc.message}") from None


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
    integ = integration(ctx)

    def run() -> T:
        scope = ctx.run_id or ""
        keys = tenant_keys(integ, org_id=ctx.org_id, team_id=ctx.team_id, scope=scope)
        return fn(_client(keys, integ.region, service, scope=scope))

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
        raise ToolError("not_configured", "the AWS assumer identity has no usable credentials") from exc
    except bexc.ParamValidationError as exc:
        raise ToolError("invalid_arguments", str(exc)[:300]) from exc
