"""A tenant's AWS credentials: its own keys, or a role it lets the platform assume; never the platform's.

``integrations.aws`` accepts exactly:

* ``access_key_id`` + ``secret_access_key`` (optional ``session_token``): the tenant's own keys; or
* ``role_arn`` + ``external_id``: a role in the tenant's account, assumed by the operator's dedicated
  assumer identity (``INCIDENTFOX_AWS_ASSUMER_*``, docs/security.md). The ``ExternalId`` sent is
  ``<org_id>:<external_id>`` (:func:`scoped_external_id`): the platform prefixes the caller's org,
  so one org can never make the platform assume a role whose trust policy names another org's id
  (the confused-deputy problem the external id exists for), whatever value it writes;
* ``region`` (default ``us-east-1``) and ``enabled``.

Refused: a block with neither keys nor role (the process's default credential chain — on EKS the
platform's own IRSA role — is never a tenant's), both at once, half a key pair, ``endpoint_url``
(only the operator's ``AWS_ENDPOINT_URL`` applies: a tenant endpoint would receive requests signed
with the tenant's keys from inside the platform's network), and any other field (``profile``,
``credential_process``… name host files or commands).

:func:`check_aws_block` runs at config write (values equal to ``placeholder``, stored secrets the
writer did not send, pass as checked); :func:`aws_integration` at use returns the typed credentials
the AWS tools build their clients from. Both raise :class:`AwsCredentialsError` naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_REGION = "us-east-1"
BLOCK_FIELDS = frozenset({"enabled", "region", "access_key_id", "secret_access_key", "session_token",
                          "role_arn", "external_id"})
_REFUSED = {
    "endpoint_url": "is set by the operator (AWS_ENDPOINT_URL), not per tenant",
    "profile": "names a profile on the platform's host; give keys or role_arn + external_id",
    "credential_process": "runs a command on the platform's host; give keys or role_arn + external_id",
}
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
# Visible ASCII only: nothing that could split a header; AWS itself judges the rest.
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9]{1,128}$")
_SECRET_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
_SESSION_TOKEN_RE = re.compile(r"^[\x21-\x7e]{1,8192}$")
_ROLE_ARN_RE = re.compile(r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
# AWS allows 2-1224 characters of [\w+=,.@:/-]; the org prefix takes some of them.
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1100}$")


class AwsCredentialsError(ValueError):
    """``integrations.aws`` is refused; ``path`` is relative to the block, ``message`` echoes no value."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class StaticKeys:
    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AssumeRole:
    role_arn: str
    external_id: str = field(repr=False)


@dataclass(frozen=True)
class AwsIntegration:
    region: str
    credentials: StaticKeys | AssumeRole


def scoped_external_id(org_id: str, external_id: str) -> str:
    """The ``ExternalId`` sent to STS for ``org_id``; the tenant's trust policy must require it."""
    return f"{org_id}:{external_id}"


def session_name(org_id: str, team_id: str) -> str:
    """``RoleSessionName`` (≤ 64 of ``[\\w+=,.@-]``): who the platform acted for, in the tenant's CloudTrail."""
    raw = f"incidentfox-{org_id}-{team_id}".rstrip("-")
    return re.sub(r"[^\w+=,.@-]", "-", raw)[:64]


def _block(block: Any, placeholder: str | None) -> AwsIntegration | None:
    if placeholder is not None and block == placeholder:
        return None
    if not isinstance(block, Mapping):
        raise AwsCredentialsError("", "must be an object")
    for key in block:
        if key not in BLOCK_FIELDS:
            raise AwsCredentialsError(str(key), _REFUSED.get(str(key), "is not a supported field"))
    hidden = False

    def value(key: str, pattern: re.Pattern[str], message: str) -> str | None:
        nonlocal hidden
        v = block.get(key)
        if v is None:
            return None
        if placeholder is not None and v == placeholder:
            hidden = True
            return placeholder
        if not isinstance(v, str) or not pattern.fullmatch(v.strip()):
            raise AwsCredentialsError(key, message)
        return v.strip()

    if block.get("enabled") is False and not any(block.get(k) is not None for k in BLOCK_FIELDS - {"enabled"}):
        if placeholder is not None:
            return None  # a node switching AWS off needs no credentials
        raise AwsCredentialsError("enabled", "integrations.aws is disabled")
    region = value("region", _REGION_RE, "must be an AWS region such as eu-west-1") or DEFAULT_REGION
    key_id = value("access_key_id", _KEY_ID_RE, "must be an AWS access key id")
    secret = value("secret_access_key", _SECRET_RE, "must be an AWS secret access key")
    token = value("session_token", _SESSION_TOKEN_RE, "must be an AWS session token")
    role = value("role_arn", _ROLE_ARN_RE, "must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    external = value("external_id", _EXTERNAL_ID_RE,
                     "must be 2-1100 characters of letters, digits and _+=,.@:/-")
    has_keys = key_id is not None or secret is not None or token is not None
    has_role = role is not None or external is not None
    if has_keys and has_role:
        raise AwsCredentialsError("role_arn", "give either access keys or role_arn + external_id, not both")
    if has_keys:
        if key_id is None:
            raise AwsCredentialsError("access_key_id", "is required with secret_access_key")
        if secret is None:
            raise AwsCredentialsError("secret_access_key", "is required with access_key_id")
        creds: StaticKeys | AssumeRole = StaticKeys(key_id, secret, token)
    elif has_role:
        if role is None:
            raise AwsCredentialsError("role_arn", "is required with external_id")
        if external is None:
            raise AwsCredentialsError("external_id", "is required with role_arn (the role's trust policy "
                                                     "must require it)")
        creds = AssumeRole(role, external)
    else:
        raise AwsCredentialsError("access_key_id", "integrations.aws needs the tenant's own access keys or "
                                                   "role_arn + external_id; the platform's identity is "
                                                   "never used")
    return None if hidden else AwsIntegration(region=region, credentials=creds)


def aws_integration(block: Any) -> AwsIntegration:
    """The typed credentials of an ``integrations.aws`` block at use, or :class:`AwsCredentialsError`."""
    result = _block(block, None)
    assert result is not None  # without a placeholder every path returns or raises
    return result


def check_aws_block(block: Any, *, placeholder: str) -> None:
    """Write-time check: raise :class:`AwsCredentialsError` for a block the tools would refuse.

    Values equal to ``placeholder`` (stored secrets the writer did not send) count as present.
    """
    _block(block, placeholder)
