"""Process settings, read from ``INCIDENTFOX_*`` environment variables.

One ``Settings`` object describes a process. Local starts call :func:`ensure_local_secrets`, which
generates the token pepper and the Fernet key into ``./.incidentfox/`` on first start, so the
embedded default needs no manual setup. Nothing here logs a secret: secret fields are ``SecretStr``.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from incidentfox.client_identity import parse_trusted_proxies
from incidentfox.egress.policy import EgressPolicy, split_list

# A comma-separated environment variable read as a list.
CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INCIDENTFOX_", extra="ignore")

    home: Path = Field(default=Path(".incidentfox"), description="Local state directory.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in `home`.")
    admin_token: SecretStr | None = None
    token_pepper: SecretStr | None = None
    secret_key: SecretStr | None = Field(
        default=None, description="Comma-separated Fernet keys, newest first (MultiFernet)."
    )
    impersonation_ttl_s: int = Field(default=900, le=900)

    # Investigation runtime (issue: investigation engine).
    pool_min_actors: int = 1
    pool_max_actors: int = 4
    actor_max_concurrency: int = 200
    run_deadline_s: float = 300.0
    lease_s: float = 30.0
    subagent_workers: int = 1      # SubAgentWorker actors per placement key (async: many sub-agents each)
    tool_executors: int = 1        # ToolExecutor actors per placement key (async: many tool calls each)
    # `incidentfox gc`: runs, events, tool calls and raw webhook payloads older than this are purged.
    retention_days: float = 30.0

    # Sandbox sessions (issue: sandbox). Limits and the rest live in actors/sandbox/config.py.
    sandbox_root: Path | None = Field(default=None, description="Workspace root; default `home`/sandboxes.")
    sandbox_allow_rlimit_only: bool = Field(
        default=False, description="Run sandbox Bash with rlimits only when bubblewrap is unavailable (weaker).")
    sandbox_ttl_s: float = 7200.0
    sandbox_sessions_per_host: int = 64
    # Where a session's commands run (docs/sandbox.md, "Backends"): `bwrap` on this node (local
    # default), or `pod`: a pod per session in `sandbox_namespace` through the Kubernetes API.
    sandbox_backend: Literal["bwrap", "pod"] = "bwrap"
    sandbox_namespace: str = Field(default="incidentfox-sandbox", description="Namespace of session pods.")
    sandbox_pod_image: str = Field(default="debian:bookworm-slim",
                                   description="Image of session pods (needs sh, tar, base64, timeout).")
    sandbox_pod_service_account: str = "incidentfox-sandbox-session"
    sandbox_runtime_class: str = Field(default="", description="runtimeClassName of session pods, e.g. gvisor.")
    sandbox_pod_cpu: str = "1"
    sandbox_pod_memory: str = "2Gi"
    sandbox_pod_ephemeral_storage: str = "4Gi"
    sandbox_pod_start_timeout_s: float = 120.0
    # Workspace snapshots in the object store: saved after every turn, restored on resume.
    sandbox_persist_workspaces: bool = True

    # The platform's object store (incidentfox/object_store.py): a folder under `home` by default,
    # S3 in production. The S3 endpoint defaults to boto3's own (AWS_ENDPOINT_URL, else AWS).
    object_store: Literal["local", "s3"] = "local"
    object_store_root: Path | None = Field(default=None, description="Local store folder; default `home`/objects.")
    object_store_bucket: str = ""
    object_store_prefix: str = ""
    object_store_endpoint_url: str = ""
    object_store_region: str = ""
    object_store_access_key_id: SecretStr | None = None       # S3-compatible stores with static keys
    object_store_secret_access_key: SecretStr | None = None

    # The dedicated AWS identity that assumes tenants' roles (`integrations.aws.role_arn`); its IAM
    # policy allows sts:AssumeRole and nothing else (docs/security.md). Static keys, or a named
    # profile (e.g. a web-identity role of its own on EKS). Never the process's default chain.
    aws_assumer_access_key_id: SecretStr | None = None
    aws_assumer_secret_access_key: SecretStr | None = None
    aws_assumer_profile: str | None = None

    # The `incidentfox orgs|teams|tokens|routing|config|init` commands talk to this HTTP API (the
    # install's base URL: `incidentfox up` serves it on :8000) with this bearer token; without one
    # they use `admin_token`, then the `home`/admin_token file `incidentfox up` writes.
    config_url: str = Field(default="", description="Config service base URL; empty: http://127.0.0.1:8000.")
    token: SecretStr | None = Field(default=None, description="Bearer token the CLI's API commands send.")

    # Where outbound Slack calls go; tests and the demo point this at a local recorder. Operator-set:
    # platform traffic, not checked by the egress policy (a tenant's `slack.base_url` is).
    slack_api_url: str = "https://slack.com/api/"

    # Egress policy for calls made on a tenant's behalf (incidentfox/egress; docs/security.md).
    egress_allow: CommaList = Field(default_factory=list, description=(
        "Allow-list entries admitted besides the global admin's: host[:port] or CIDR[:port], comma-separated."))
    egress_cluster_cidrs: CommaList = Field(default_factory=list, description=(
        "The cluster's pod/service CIDRs, refused like private ranges even where they are public."))
    egress_cluster_domains: CommaList = Field(default_factory=list, description=(
        "Extra cluster DNS domains refused by name (svc, cluster.local, local, internal always are)."))
    egress_allowlist_ttl_s: float = Field(default=15.0, gt=0, description=(
        "How long a process uses the database allow-list before re-reading it."))

    # Inbound rate limits on /api and /webhooks (incidentfox/rate_limit.py; docs/security.md, "Rate
    # limits"). Per Serve replica / process; a rate or burst of 0 turns that limit off.
    rate_limit_api_token_per_s: float = Field(default=100.0, ge=0, description=(
        "Sustained requests a second one bearer token may make to an /api app (per replica)."))
    rate_limit_api_token_burst: int = Field(default=1000, ge=0, description=(
        "Requests one bearer token may make to an /api app at once, before the sustained rate applies."))
    rate_limit_api_ip_per_s: float = Field(default=200.0, ge=0, description=(
        "Sustained requests a second one client IP (an IPv6 /64) may make to an /api app (per replica)."))
    rate_limit_api_ip_burst: int = Field(default=2000, ge=0, description=(
        "Requests one client IP may make to an /api app at once."))
    rate_limit_webhooks_token_per_s: float = Field(default=100.0, ge=0, description=(
        "Sustained webhook requests a second per bearer token, for senders that send one (per replica)."))
    rate_limit_webhooks_token_burst: int = Field(default=1000, ge=0, description=(
        "Webhook requests one bearer token may send at once."))
    rate_limit_webhooks_ip_per_s: float = Field(default=200.0, ge=0, description=(
        "Sustained webhook requests a second per sender IP (per replica). Slack, GitHub and PagerDuty "
        "send every tenant's events from shared addresses, so this is a flood guard, not a quota."))
    rate_limit_webhooks_ip_burst: int = Field(default=2000, ge=0, description=(
        "Webhook requests one sender IP may send at once."))
    rate_limit_max_keys: int = Field(default=100_000, ge=1, description=(
        "Tokens or IPs each limit remembers per process; the least recently seen is forgotten first."))
    trusted_proxies: CommaList = Field(default_factory=list, description=(
        "Addresses or CIDRs of the reverse proxies in front of the platform (ingress controller, load "
        "balancer), comma-separated. X-Forwarded-For is read only from these; empty: it is never read "
        "and the TCP peer is the client."))

    @field_validator("egress_allow", "egress_cluster_cidrs", "egress_cluster_domains", "trusted_proxies",
                     mode="before")
    @classmethod
    def _split(cls, value: object) -> list[str]:
        return split_list(value)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _egress_valid(self) -> Settings:
        # A malformed entry fails the process at start, naming the entry, not at the first call.
        EgressPolicy.build(allow=self.egress_allow, cluster_cidrs=self.egress_cluster_cidrs,
                           cluster_domains=self.egress_cluster_domains)
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_valid(cls, value: list[str]) -> list[str]:
        parse_trusted_proxies(value)   # a typo fails the process at start, naming the entry
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'incidentfox.db').resolve()}"


def read_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret stored at ``path``, generating it once (file created 0600) when absent."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    # Create with 0600 before writing so the secret is never world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def ensure_local_secrets(settings: Settings) -> Settings:
    """Fill the pepper and Fernet key from ``home`` (generating them once) when the env has none.

    Also exports them to the environment so child processes (Ray workers, Serve replicas) agree.
    """
    updates: dict[str, SecretStr] = {}
    if settings.token_pepper is None:
        pepper = read_or_create_secret(settings.home / "token_pepper", lambda: secrets.token_hex(32))
        updates["token_pepper"] = SecretStr(pepper)
        os.environ["INCIDENTFOX_TOKEN_PEPPER"] = pepper
    if settings.secret_key is None:
        key = read_or_create_secret(
            settings.home / "secret_key", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()
        )
        updates["secret_key"] = SecretStr(key)
        os.environ["INCIDENTFOX_SECRET_KEY"] = key
    return settings.model_copy(update=updates) if updates else settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
