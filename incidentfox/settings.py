"""Process settings: the ONE reader of this process's environment variables.

Every environment variable the platform reads is a field of :class:`Settings` (a test fails on an
``os.environ``/``os.getenv`` read anywhere else in production code): ``INCIDENTFOX_<FIELD>``, or,
for the few names that predate the prefix or belong to a standard (``SLACK_SIGNING_SECRET``,
``AWS_ENDPOINT_URL``, ``KUBECONFIG``, ``RAY_ADDRESS`` …), the name given as the field's
``validation_alias``. Each field's ``description`` is its documentation: ``docs/configuration.md``
is generated from this class (``incidentfox docs config``).

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
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from incidentfox.client_identity import parse_trusted_proxies
from incidentfox.egress.policy import EgressPolicy, split_list
from incidentfox.links import check_public_url

# A comma-separated environment variable read as a list.
CommaList = Annotated[list[str], NoDecode]
ENV_PREFIX = "INCIDENTFOX_"


def _secret(alias: str, description: str) -> Any:
    """A secret read from the un-prefixed variable ``alias`` (a name that predates the prefix)."""
    return Field(default=None, validation_alias=alias, description=description)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = Field(default=Path(".incidentfox"), description="Local state directory.")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in `home`.")
    db_pool_size: int = Field(default=5, ge=1, description=(
        "PostgreSQL connections each platform process keeps open (every Serve replica and actor has "
        "its own pool; docs/operations.md, \"Database connections\"). Not used on SQLite."))
    db_pool_overflow: int = Field(default=0, ge=0, description=(
        "Connections a process may open beyond `db_pool_size` at peak, closed again when returned. "
        "All processes' `db_pool_size + db_pool_overflow` together must stay under PostgreSQL's "
        "`max_connections`."))
    admin_token: SecretStr | None = Field(default=None, description=(
        "The global admin bearer token (every org and team). `incidentfox up` generates one into "
        "`home`/admin_token when unset."))
    token_pepper: SecretStr | None = Field(default=None, description=(
        "HMAC key of stored token hashes and impersonation tokens; generated into `home` on a local "
        "start. Rotating it voids every token."))
    secret_key: SecretStr | None = Field(
        default=None, description="Comma-separated Fernet keys, newest first (MultiFernet).")
    impersonation_ttl_s: int = Field(default=900, le=900, description=(
        "Default lifetime of a minted impersonation token, in seconds (at most 900)."))

    # Investigation runtime (issue: investigation engine).
    pool_min_actors: int = Field(default=1, description="Investigation actors the pool keeps running.")
    pool_max_actors: int = Field(default=4, description="Most investigation actors the pool starts.")
    actor_max_concurrency: int = Field(default=200, description="Concurrent runs one investigation actor hosts.")
    # Read by nothing today: a run's deadline is its team's `investigation.deadline_s` (default 300).
    # Kept so a deployment that sets the variable still starts; say so in the generated docs.
    run_deadline_s: float = Field(default=300.0, description=(
        "Unused (a run's deadline is the team config's `investigation.deadline_s`); accepted for compatibility."))
    lease_s: float = Field(default=30.0, description=(
        "Run lease length, in seconds: a run whose actor stops renewing it is requeued after this."))
    subagent_workers: int = Field(default=1, description=(
        "SubAgentWorker actors per placement key (async: many sub-agents each)."))
    tool_executors: int = Field(default=1, description=(
        "ToolExecutor actors per placement key (async: many tool calls each)."))
    retention_days: float = Field(default=30.0, description=(
        "`incidentfox gc` purges runs, events, tool calls and raw webhook payloads older than this."))
    knowledge_sweep_s: float = Field(default=30.0, ge=0, description=(
        "How often the knowledge app looks for knowledge-base scopes whose documents changed and "
        "rebuilds them once they have settled (unchanged since the previous sweep, or waiting 10 minutes), "
        "each at most once per its team's `knowledge.rebuild_interval_s`; 0 turns the "
        "sweep off (indexes then change only on `POST /api/v1/knowledge/rebuild` or `incidentfox kb rebuild`)."))
    embedder_runtime: Literal["onnx", "torch"] = Field(default="onnx", description=(
        "What runs the offline embedder (all-MiniLM-L6-v2): `onnx`, ONNX Runtime over a model made once "
        "from the packaged weights (falls back to torch, with a warning, when it cannot be made or "
        "loaded), or `torch`, sentence-transformers; both give the same vectors (docs/knowledge.md)."))
    model_cache: Path | None = Field(default=None, description=(
        "Folder for the offline embedder's ONNX model (made there by `make install` or on first use); "
        "unset: `share/incidentfox/models` of the Python environment, else `~/.cache/incidentfox/models`."))
    agent_tracing: bool = Field(default=False, description=(
        "Export the openai-agents SDK's traces to its tracing service (off: nothing leaves the process)."))

    # Sandbox sessions (issue: sandbox). Limits and the rest live in actors/sandbox/config.py.
    sandbox_root: Path | None = Field(default=None, description=(
        "Workspace root; every parent must be traversable by other users (the session UIDs). Default "
        "`home`/sandboxes, or /var/lib/incidentfox/sandboxes/<digest of home> when a parent of that is not."))
    sandbox_allow_rlimit_only: bool = Field(
        default=False, description="Run sandbox Bash with rlimits only when bubblewrap is unavailable (weaker).")
    sandbox_ttl_s: float = Field(default=7200.0, description=(
        "Idle lifetime of a sandbox session when its team sets no `sandbox.ttl_s`, in seconds."))
    sandbox_sessions_per_host: int = Field(default=64, description="Open sandbox sessions one host holds.")
    # Where a session's commands run (docs/sandbox.md, "Backends").
    sandbox_backend: Literal["bwrap", "pod"] = Field(default="bwrap", description=(
        "Where a session's commands run: `bwrap` on this node, or `pod`: a pod per session in "
        "`sandbox_namespace` through the Kubernetes API."))
    sandbox_namespace: str = Field(default="incidentfox-sandbox", description="Namespace of session pods.")
    sandbox_pod_image: str = Field(default="debian:bookworm-slim",
                                   description="Image of session pods (needs sh, tar, base64, timeout).")
    sandbox_pod_service_account: str = Field(default="incidentfox-sandbox-session",
                                             description="Service account of session pods.")
    sandbox_runtime_class: str = Field(default="", description="runtimeClassName of session pods, e.g. gvisor.")
    sandbox_pod_cpu: str = Field(default="1", description="CPU request and limit of a session pod.")
    sandbox_pod_memory: str = Field(default="2Gi", description="Memory request and limit of a session pod.")
    sandbox_pod_ephemeral_storage: str = Field(default="4Gi", description=(
        "Ephemeral storage request and limit of a session pod."))
    sandbox_pod_start_timeout_s: float = Field(default=120.0, description=(
        "How long a session waits for its pod to run, in seconds."))
    sandbox_persist_workspaces: bool = Field(default=True, description=(
        "Snapshot workspaces to the object store after every turn and restore them on resume."))

    # The platform's object store (incidentfox/object_store.py): a folder under `home` by default,
    # S3 in production.
    object_store: Literal["local", "s3"] = Field(default="local", description=(
        "The platform's object store: `local` (a folder) or `s3`."))
    object_store_root: Path | None = Field(default=None, description="Local store folder; default `home`/objects.")
    object_store_bucket: str = Field(default="", description="S3 bucket of the object store.")
    object_store_prefix: str = Field(default="", description="Key prefix inside the bucket.")
    object_store_endpoint_url: str = Field(default="", description=(
        "S3 endpoint; empty: boto3's own (`AWS_ENDPOINT_URL`, else AWS)."))
    object_store_region: str = Field(default="", description="S3 region; empty: boto3's default.")
    object_store_access_key_id: SecretStr | None = Field(default=None, description=(
        "Static key id for S3-compatible stores; unset: boto3's default credential chain."))
    object_store_secret_access_key: SecretStr | None = Field(default=None, description=(
        "Static secret key for S3-compatible stores."))

    # The dedicated AWS identity that assumes tenants' roles (`integrations.aws.role_arn`); its IAM
    # policy allows sts:AssumeRole and nothing else (docs/security.md). Never the default chain.
    aws_assumer_access_key_id: SecretStr | None = Field(default=None, description=(
        "Key id of the AWS identity that assumes tenants' roles (sts:AssumeRole only)."))
    aws_assumer_secret_access_key: SecretStr | None = Field(default=None, description=(
        "Secret key of the assumer identity."))
    aws_assumer_profile: str | None = Field(default=None, description=(
        "Named AWS profile of the assumer identity instead of static keys (e.g. its own web-identity role)."))
    # Read by boto3 too; the AWS tools read it here so that it is the one endpoint a tenant's calls
    # may go to (a tenant cannot set one: docs/security.md).
    aws_endpoint_url: str = Field(default="", validation_alias="AWS_ENDPOINT_URL", description=(
        "The operator's AWS endpoint for the AWS tools and the assumer (a VPC endpoint; moto in tests)."))

    # The `incidentfox orgs|teams|tokens|routing|config|init` commands talk to this HTTP API (the
    # install's base URL: `incidentfox up` serves it on :8000) with this bearer token; without one
    # they use `admin_token`, then the `home`/admin_token file `incidentfox up` writes.
    config_url: str = Field(default="", description=(
        "Config service base URL (the CLI's API commands, the gateway's router); empty: http://127.0.0.1:8000."))
    token: SecretStr | None = Field(default=None, description=(
        "Bearer token the CLI's API commands send; unset: `admin_token`, then `home`/admin_token."))

    # Where outbound Slack calls go; tests and the demo point this at a local recorder. Operator-set:
    # platform traffic, not checked by the egress policy (a tenant's `slack.base_url` is).
    slack_api_url: str = Field(default="https://slack.com/api/", description=(
        "Base URL of outbound Slack Web API calls (a local recorder in tests and the demo)."))

    # The shared (single-tenant) webhook URLs' secrets: `POST /webhooks/<source>` verifies with
    # these (serve_apps/webhooks/registry.py names one per source); unset → 401 secret_not_configured.
    slack_signing_secret: SecretStr | None = _secret(
        "SLACK_SIGNING_SECRET", "Slack signing secret of the shared `/webhooks/slack` URL.")
    github_webhook_secret: SecretStr | None = _secret(
        "GITHUB_WEBHOOK_SECRET", "GitHub webhook secret of the shared `/webhooks/github` URL.")
    pagerduty_webhook_secret: SecretStr | None = _secret(
        "PAGERDUTY_WEBHOOK_SECRET", "PagerDuty webhook signing secret of the shared `/webhooks/pagerduty` URL.")
    incidentio_webhook_secret: SecretStr | None = _secret(
        "INCIDENTIO_WEBHOOK_SECRET", "incident.io webhook secret of the shared `/webhooks/incidentio` URL.")
    alertmanager_webhook_token: SecretStr | None = _secret(
        "ALERTMANAGER_WEBHOOK_TOKEN", "Bearer token Alertmanager sends to the shared `/webhooks/alertmanager` URL.")
    grafana_webhook_secret: SecretStr | None = _secret(
        "GRAFANA_WEBHOOK_SECRET", "HMAC secret of the shared `/webhooks/grafana` URL.")
    public_url: Annotated[str, AfterValidator(check_public_url)] = Field(default="", description=(
        "The install's public base URL, e.g. https://incidentfox.example.com: Slack messages link runs and "
        "reports under it (incidentfox/links.py). Empty: messages carry no links."))

    # Dedicated worker groups (cluster/reconcile.py, docs/operations.md "dedicated mode"): a detached
    # actor brings the RayService's team groups in line with every team's `deployment.mode`.
    worker_groups_reconcile_s: float = Field(default=60.0, ge=0, description=(
        "Seconds between reconcile passes of dedicated worker groups; 0 turns the loop off. It starts "
        "only inside a Kubernetes pod (in-cluster credentials), never on a laptop's kube context."))
    worker_groups_namespace: str = Field(default="incidentfox", description="Namespace of the RayService.")
    worker_groups_rayservice: str = Field(default="incidentfox", description="Name of the RayService.")
    worker_groups_drain_s: float = Field(default=900.0, ge=0, description=(
        "How long a replaced dedicated group drains before the reconciler scales it to zero."))

    # Egress policy for calls made on a tenant's behalf (incidentfox/egress; docs/security.md).
    egress_allow: CommaList = Field(default_factory=list, description=(
        "Allow-list entries admitted besides the global admin's: host[:port] or CIDR[:port], comma-separated."))
    egress_cluster_cidrs: CommaList = Field(default_factory=list, description=(
        "The cluster's pod/service CIDRs, refused like private ranges even where they are public."))
    egress_cluster_domains: CommaList = Field(default_factory=list, description=(
        "Extra cluster DNS domains refused by name (svc, cluster.local, local, internal always are)."))
    egress_allowlist_ttl_s: float = Field(default=15.0, gt=0, description=(
        "How long a process uses the database allow-list before re-reading it."))

    # Operator tools: where `incidentfox cluster` and `incidentfox eval` connect.
    kubeconfig: str | None = Field(default=None, validation_alias="KUBECONFIG", description=(
        "Kubeconfig file(s) of `incidentfox cluster` (kubectl's variable; unset: ~/.kube/config, else "
        "the in-cluster config)."))
    debug: bool = Field(default=False, description=(
        "`incidentfox` commands re-raise a failure with its traceback instead of the one-line `error: …`."))
    kubernetes_service_host: str = Field(default="", validation_alias="KUBERNETES_SERVICE_HOST", description=(
        "Set by Kubernetes in every pod (read only to know the process runs in a cluster: the worker-group "
        "reconcile loop starts only there)."))
    ray_address: str = Field(default="", validation_alias="RAY_ADDRESS", description=(
        "Ray cluster `incidentfox eval` joins (Ray's variable); empty: a private local Ray."))
    # Tests and benchmarks (incidentfox/throwaway_db.py): never read by a running platform.
    test_pg: str = Field(default="postgresql://postgres@127.0.0.1:5432/postgres", description=(
        "Admin DSN of the PostgreSQL server tests and benchmarks create throwaway databases on."))

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

    def process_secrets(self) -> list[str]:
        """Every secret this process was given (each ``SecretStr`` field; each Fernet key of
        ``secret_key`` on its own), for log redaction."""
        values: list[str] = []
        for name in type(self).model_fields:
            secret = getattr(self, name)
            if isinstance(secret, SecretStr):
                value = secret.get_secret_value()
                parts = value.split(",") if name == "secret_key" else [value]
                values += [v.strip() for v in parts if v.strip()]
        return values

    def shared_webhook_secrets(self) -> dict[str, str]:
        """The shared webhook URLs' secrets that are set, by variable name (``SLACK_SIGNING_SECRET`` …)."""
        out: dict[str, str] = {}
        for name in WEBHOOK_SECRET_FIELDS:
            value = getattr(self, name)
            if value is not None and value.get_secret_value():
                out[env_name(name)] = value.get_secret_value()
        return out


WEBHOOK_SECRET_FIELDS = ("slack_signing_secret", "github_webhook_secret", "pagerduty_webhook_secret",
                         "incidentio_webhook_secret", "alertmanager_webhook_token", "grafana_webhook_secret")


def env_name(field: str) -> str:
    """The environment variable a :class:`Settings` field is read from."""
    alias = Settings.model_fields[field].validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + field.upper()


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
