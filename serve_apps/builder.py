"""Typed application builders: the one way every IncidentFox Serve application is built.

``serve_apps/serve_config.yaml`` names a builder per application (``import_path``) and its ``args``;
Serve (``serve deploy``/KubeRay) and ``incidentfox up`` (:func:`deploy_config`, the same controller
path) both call these builders with those args, validated by the builder's pydantic model. ``@serve.deployment`` holds
defaults only; whatever differs per environment is an arg, and secrets/database URLs come from the
environment, never from the Serve config.

Applications (all on one HTTP port):

* ``config``  at ``/``               - the config service (also serves ``/health``, and the web console's
  static files under ``/ui``: :mod:`serve_apps.console`); its replicas keep the
  worker-group reconciler actor running on Kubernetes (:mod:`cluster.reconcile_loop`);
* ``gateway`` at ``/webhooks``       - :class:`serve_apps.gateway.Gateway` + :class:`serve_apps.router.Router`;
* ``agent``   at ``/api/v1/agent``   - :class:`serve_apps.agent_api.AgentAPI`;
* ``tools``   at ``/api/v1/tools``   - the tool catalog (:mod:`serve_apps.tools_api`);
* ``sandbox`` at ``/api/v1/sandbox`` - built by ``serve_apps.sandbox.api:build_app`` (sandbox owner);
* ``reports`` at ``/api/v1/reports`` - built by ``serve_apps.reports_api:build_app`` (scheduler owner).

Pluggable apps (sandbox, reports) are built by their owners' modules; :func:`build_sandbox` and
:func:`build_reports` delegate to them and raise :class:`AppUnavailable` while the module is absent,
which ``incidentfox up`` reports and skips.

No ``from __future__ import annotations`` here: Serve reads each builder's parameter annotation as a
class to validate ``args``.
"""

import copy
import importlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from ray import serve
from ray.serve import Application

SERVE_CONFIG = Path(__file__).resolve().parent / "serve_config.yaml"
RunnerName = Literal["investigation", "complete", "null"]


class AppUnavailable(RuntimeError):
    """An application's module is not part of this build (yet)."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigArgs(_Args):
    max_ongoing_requests: int = Field(default=200, ge=1)


class RouterArgs(_Args):
    config_url: str = Field(default="", description="Config service base URL; empty: $INCIDENTFOX_CONFIG_URL, "
                                                    "else http://127.0.0.1:8000 (same port under `up`).")
    epoch_poll_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=2.0, gt=0)


class GatewayArgs(_Args):
    runner: RunnerName = "investigation"
    route_memo_s: float = Field(default=1.0, ge=0)
    sweep_interval_s: float = Field(default=10.0, gt=0)
    org_secret_overrides: bool = True
    store_payload: bool = True
    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=4, ge=1)
    max_ongoing_requests: int = Field(default=256, ge=1)
    router: RouterArgs = Field(default_factory=RouterArgs)


class AgentArgs(_Args):
    runner: RunnerName = "investigation"
    sse_poll_s: float = Field(default=0.5, gt=0)
    sse_max_s: float = Field(default=900.0, gt=0)
    sweep_interval_s: float = Field(default=10.0, gt=0)


class ToolsArgs(_Args):
    pass


def _as(model: type[_Args], args: Any) -> Any:
    return args if isinstance(args, model) else model.model_validate(args or {})


# --- config ---------------------------------------------------------------------------------------

async def _sandbox_health() -> dict[str, Any]:
    """Whether sandbox Bash can be isolated on this node, and why not (a one-off probe, off the loop)."""
    import asyncio

    from actors.sandbox.backends import isolation_status
    from incidentfox.settings import get_settings

    status = await asyncio.to_thread(isolation_status, get_settings())
    return {"available": status.available, "mode": status.mode, "reason": status.reason}


def _config_asgi_app() -> Any:
    """The config service, whose ``/health`` is the platform's: it also reports sandbox isolation,
    and whose ``/api/openapi.json`` is the whole platform's merged OpenAPI document."""
    from config_service import create_app
    from incidentfox.logs import configure_process_logging
    from incidentfox.settings import Settings
    from serve_apps.api_docs import merged_document
    from serve_apps.console import with_console

    configure_process_logging()   # this runs in the replica: it is the deployment's __init__
    settings = Settings()
    _ensure_worker_group_reconciler(settings)
    # The web console's static files answer /ui on the same app (serve_apps/console.py): no extra
    # replica, and the same origin as the API.
    return with_console(create_app(settings, health_checks={"sandbox": _sandbox_health},
                                   platform_openapi=merged_document))


def _ensure_worker_group_reconciler(settings: Any) -> None:
    """Keep the detached worker-group reconciler running (cluster/reconcile_loop.py): it turns each
    team's ``deployment.mode`` into its dedicated worker group. Only inside a Kubernetes pod with
    ``INCIDENTFOX_WORKER_GROUPS_RECONCILE_S`` > 0; a failure here never stops the config service."""
    import logging

    from cluster.reconcile_loop import ensure_reconciler

    try:
        ensure_reconciler(settings=settings)
    except Exception:
        logging.getLogger("incidentfox.reconciler").exception("starting the worker-group reconciler failed")


def build_config(args: ConfigArgs) -> Application:
    """The config service FastAPI app as a Serve ingress (settings from the environment)."""
    a = _as(ConfigArgs, args)
    deployment = serve.deployment(serve.ingress(_config_asgi_app)(), name="ConfigService",
                                  ray_actor_options={"num_cpus": 0}, max_ongoing_requests=200)
    return deployment.options(max_ongoing_requests=a.max_ongoing_requests).bind()


# --- gateway + router -----------------------------------------------------------------------------

def build_gateway(args: GatewayArgs) -> Application:
    from serve_apps.gateway import Gateway
    from serve_apps.router import Router

    a = _as(GatewayArgs, args)
    router = Router.bind(config_url=a.router.config_url, epoch_poll_s=a.router.epoch_poll_s,
                         timeout_s=a.router.timeout_s)
    autoscaling = {"min_replicas": a.min_replicas, "max_replicas": max(a.max_replicas, a.min_replicas),
                   "target_ongoing_requests": 64, "upscale_delay_s": 5, "downscale_delay_s": 60}
    return Gateway.options(autoscaling_config=autoscaling, max_ongoing_requests=a.max_ongoing_requests).bind(
        router, runner=a.runner, route_memo_s=a.route_memo_s,
        sweep_interval_s=a.sweep_interval_s, org_secret_overrides=a.org_secret_overrides,
        store_payload=a.store_payload)


# --- agent API ------------------------------------------------------------------------------------

def build_agent(args: AgentArgs) -> Application:
    from serve_apps.agent_api import AgentAPI

    a = _as(AgentArgs, args)
    return AgentAPI.bind(runner=a.runner, sse_poll_s=a.sse_poll_s, sse_max_s=a.sse_max_s,
                         sweep_interval_s=a.sweep_interval_s)


# --- tools catalog --------------------------------------------------------------------------------

def _tools_asgi_app() -> Any:
    from incidentfox.logs import configure_process_logging
    from serve_apps.tools_api import create_tools_app

    configure_process_logging()   # this runs in the replica: it is the deployment's __init__
    return create_tools_app()


def build_tools(args: ToolsArgs) -> Application:
    _as(ToolsArgs, args)
    try:
        importlib.import_module("actors.tools.registry")
    except ImportError as exc:
        raise AppUnavailable(f"actors.tools.registry is not importable ({exc})") from None
    deployment = serve.deployment(serve.ingress(_tools_asgi_app)(), name="ToolsCatalog",
                                  ray_actor_options={"num_cpus": 0}, max_ongoing_requests=100)
    return deployment.bind()


# --- pluggable apps (owned elsewhere) -------------------------------------------------------------

def _delegate(module: str, args: Any) -> Application:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name == module:
            raise AppUnavailable(f"{module} is not present in this build") from None
        raise
    return mod.build_app(args or {})


def build_sandbox(args: dict) -> Application:
    """``/api/v1/sandbox``: built by ``serve_apps.sandbox.api.build_app(args)`` (sandbox owner)."""
    return _delegate("serve_apps.sandbox.api", args)


def build_reports(args: dict) -> Application:
    """``/api/v1/reports``: built by ``serve_apps.reports_api.build_app(args)`` (scheduler owner)."""
    return _delegate("serve_apps.reports_api", args)


# --- deploying the one config ----------------------------------------------------------------------

def load_serve_config(path: Path = SERVE_CONFIG) -> dict[str, Any]:
    """The Serve config, validated by Serve's own schema."""
    from ray.serve.schema import ServeDeploySchema

    data = yaml.safe_load(Path(path).read_text())
    ServeDeploySchema.model_validate(data)
    return data


def build_application(app_config: dict[str, Any], *, overrides: dict[str, Any] | None = None) -> Application:
    """Build one application of the config through its builder, with ``overrides`` merged over its
    ``args`` (``incidentfox up --runner`` uses this)."""
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    module, _, attr = app_config["import_path"].replace(":", ".").rpartition(".")
    builder = getattr(importlib.import_module(module), attr)
    args = {**(app_config.get("args") or {}), **(overrides or {})}
    return call_user_app_builder_with_args_if_necessary(builder, args)


# app name → its deployment that writes deliveries/runs; on SQLite each is kept to one replica.
SINGLE_WRITER_APPS = {"gateway": "Gateway", "agent": "AgentAPI"}


def local_config(*, path: Path = SERVE_CONFIG, host: str = "127.0.0.1", port: int = 8000,
                 overrides: dict[str, dict[str, Any]] | None = None, single_writer: bool = False,
                 on_skip: Any = None) -> dict[str, Any]:
    """The Serve config as ``incidentfox up`` deploys it: the committed file, with ``overrides``
    merged into apps' ``args``, the HTTP address set, apps whose module is absent dropped (reported
    to ``on_skip``), and - on SQLite (``single_writer``) - one replica of each deployment that writes
    runs (:data:`SINGLE_WRITER_APPS`): one database writer gains nothing from more, and each extra
    replica is another ~200 MB process on the one node. Every app is test-built here so bad args fail before deploying."""
    config = copy.deepcopy(load_serve_config(path))
    config["http_options"] = {**(config.get("http_options") or {}), "host": host, "port": port}
    apps = []
    for app_config in config["applications"]:
        name = app_config["name"]
        if overrides and name in overrides:
            app_config["args"] = {**(app_config.get("args") or {}), **overrides[name]}
        try:
            build_application(app_config)
        except AppUnavailable as exc:
            if on_skip is not None:
                on_skip(name, str(exc))
            continue
        if single_writer and name in SINGLE_WRITER_APPS:
            for dep in app_config.get("deployments") or []:
                if dep.get("name") == SINGLE_WRITER_APPS[name] and dep.get("autoscaling_config"):
                    dep["autoscaling_config"] = {**dep["autoscaling_config"], "min_replicas": 1,
                                                 "max_replicas": 1}
            if name == "gateway":
                app_config["args"] = {**(app_config.get("args") or {}), "min_replicas": 1, "max_replicas": 1}
        apps.append(app_config)
    config["applications"] = apps
    return config


def deploy_config(config: dict[str, Any], *, timeout_s: float = 300.0) -> list[str]:
    """Deploy a Serve config exactly as ``serve deploy``/KubeRay do (the controller imports each
    builder and applies ``deployments:`` overrides), and wait until every app is RUNNING.
    Raises RuntimeError with Serve's message for an app that fails."""
    import time

    from ray.serve.context import _get_global_client
    from ray.serve.schema import ApplicationStatus, ServeDeploySchema

    schema = ServeDeploySchema.model_validate(config)
    _get_global_client().deploy_apps(schema)
    names = [a.name for a in schema.applications]
    deadline = time.monotonic() + timeout_s
    while True:
        apps = serve.status().applications
        states = {n: apps[n].status if n in apps else ApplicationStatus.NOT_STARTED for n in names}
        failed = {n: apps[n].message for n, st in states.items()
                  if st in (ApplicationStatus.DEPLOY_FAILED, ApplicationStatus.UNHEALTHY)}
        if failed:
            raise RuntimeError("; ".join(f"{n}: {m}" for n, m in failed.items()))
        if all(st == ApplicationStatus.RUNNING for st in states.values()):
            return names
        if time.monotonic() > deadline:
            raise RuntimeError(f"applications not running after {timeout_s:.0f} s: "
                               + ", ".join(f"{n}={st}" for n, st in states.items()))
        time.sleep(0.5)
