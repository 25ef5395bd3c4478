"""CLI commands: ``incidentfox cluster render|provision|reconcile`` (KubeRay manifests, dedicated groups)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from cli.errors import fail
from cli.progress import QuietOpt, progress

cluster = typer.Typer(no_args_is_help=True, help="KubeRay manifests and dedicated worker groups.")


class Overlay(str, Enum):
    eks = "eks"
    local_kind = "local-kind"


def _kube_api(context: str | None) -> Any:
    from kubernetes import client, config

    from incidentfox.settings import Settings

    try:
        # KUBECONFIG is read here (a fresh Settings), not at import time, so a changed environment
        # is honoured (the kubernetes client reads it once, when imported).
        config.load_kube_config(config_file=Settings().kubeconfig, context=context)
    except config.ConfigException:
        try:
            config.load_incluster_config()
        except config.ConfigException as exc:
            fail(f"no kube config and not running in a cluster: {exc}")
    return client.CustomObjectsApi()


@cluster.command("render")
def render_cmd(
    overlay: Annotated[Overlay, typer.Option(help="Which overlay to build.")],
    out: Annotated[Path, typer.Option(help="Directory to write the manifests into.")],
    serve_config: Annotated[Path | None, typer.Option(
        help="Serve config to embed as serveConfigV2 (default: serve_apps/serve_config.yaml).")] = None,
    live: Annotated[Path | None, typer.Option(
        help="Live RayService as YAML/JSON (kubectl get rayservice incidentfox -o yaml): keep its "
             "worker groups.")] = None,
    from_cluster: Annotated[bool, typer.Option(
        help="Read the live RayService from the current kube context instead of --live.")] = False,
    namespace: Annotated[str, typer.Option(help="Namespace of the live RayService.")] = "incidentfox",
    context: Annotated[str | None, typer.Option(help="kube context for --from-cluster.")] = None,
    compact: Annotated[bool, typer.Option(
        help="Drop retired and unknown worker groups. Rolls out a NEW Ray cluster: planned upgrades "
             "only.")] = False,
    validate: Annotated[bool, typer.Option(
        help="Validate the result offline (kubernetes-validate, jsonschema).")] = False,
) -> None:
    """Render the RayService, report job and overlay objects into OUT (one file each, plus a
    kustomization.yaml), with serveConfigV2 taken from the one Serve config.

    Apply with: kubectl apply --server-side --field-manager=incidentfox-render -k OUT
    """
    from cluster import render as r

    live_obj = None
    if live is not None and from_cluster:
        raise typer.BadParameter("use either --live or --from-cluster", param_hint="--live")
    try:
        if live is not None:
            live_obj = yaml.safe_load(live.read_text())
        elif from_cluster:
            from kubernetes.client.exceptions import ApiException

            from cluster.provisioner import GROUP, PLURAL, VERSION

            try:
                live_obj = _kube_api(context).get_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, r.RAYSERVICE_NAME, _request_timeout=10)
            except ApiException as exc:
                fail(f"cannot read rayservice/{namespace}/{r.RAYSERVICE_NAME}: {exc.status} {exc.reason}")
        objects = r.render(overlay=overlay.value, serve_config=serve_config or r.DEFAULT_SERVE_CONFIG,
                           live=live_obj, compact=compact)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        fail(str(exc))
    if validate:
        from cluster.validate import validate_objects

        problems = validate_objects(objects)
        if problems:
            fail("rendered manifests are invalid: " + "; ".join(problems))
    for path in r.write(objects, out):
        typer.echo(str(path))


def _effective_config(org: str, team: str, config_file: Path | None, config_url: str | None,
                      token: str | None) -> dict[str, Any]:
    if config_file is not None:
        data = yaml.safe_load(config_file.read_text()) or {}
    elif config_url:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            resp = httpx.get(f"{config_url.rstrip('/')}/api/v1/orgs/{org}/nodes/{team}/config/effective",
                             headers=headers, timeout=10.0)
        except httpx.HTTPError as exc:
            fail(f"config service unreachable: {config_url}: {type(exc).__name__}: {exc}")
        if resp.status_code != 200:
            fail(f"config service answered {resp.status_code} for {org}/{team}")
        data = resp.json()
    else:
        raise typer.BadParameter("give --config-file or --config-url (or INCIDENTFOX_CONFIG_URL)",
                                 param_hint="--config-file")
    if not isinstance(data, dict):
        fail(f"the effective config of {org}/{team} is not an object")
    # Accept the bare effective config or an envelope around it.
    for key in ("effective", "config"):
        if isinstance(data.get(key), dict):
            data = data[key]
    return data


@cluster.command("provision")
def provision_cmd(
    org: Annotated[str, typer.Option(help="Org id.")],
    team: Annotated[str, typer.Option(help="Team id.")],
    config_file: Annotated[Path | None, typer.Option(
        help="The team's effective config as YAML/JSON (its `deployment` section is used).")] = None,
    config_url: Annotated[str | None, typer.Option(
        help="Config service base URL to read the effective config (default: INCIDENTFOX_CONFIG_URL).")] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of the RayService.")] = "incidentfox",
    name: Annotated[str, typer.Option(help="RayService name.")] = "incidentfox",
    drain_seconds: Annotated[float, typer.Option(
        help="How long a replaced group drains before it is scaled to zero.")] = 900.0,
    context: Annotated[str | None, typer.Option(help="kube context (default: current).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and the patch; change nothing.")] = False,
    quiet: QuietOpt = False,
) -> None:
    """Reconcile a team's dedicated worker group with its effective `deployment` config.

    Prints one JSON audit record per committed action (nothing when already in line). On the
    RayService the worker-group reconciler does this for every team on its own (`cluster reconcile`).
    """
    from cluster.placement import DeploymentConfig, PlacementError
    from cluster.provisioner import Provisioner, ProvisionError
    from incidentfox.settings import Settings

    settings = Settings()
    try:
        with progress(f"reading the effective config of {org}/{team}", quiet=quiet) as step:
            deployment = DeploymentConfig.from_effective(_effective_config(
                org, team, config_file, config_url or settings.config_url or None,
                settings.admin_token.get_secret_value() if settings.admin_token else None))
            step("connecting to Kubernetes")
            prov = Provisioner(_kube_api(context), namespace=namespace, name=name,
                               drain_s=drain_seconds, dry_run=dry_run)
            step(f"reconciling rayservice/{namespace}/{name}")
            result = prov.provision(org=org, team=team, deployment=deployment)
    except (OSError, yaml.YAMLError, ValueError, PlacementError, ProvisionError) as exc:
        fail(str(exc))
    for rec in result.actions:
        typer.echo(json.dumps(rec.as_dict(), sort_keys=True))
    if dry_run:
        typer.echo(json.dumps({"patch": result.patch}, indent=1))


@cluster.command("reconcile")
def reconcile_cmd(
    once: Annotated[bool, typer.Option(help="One pass, then exit (1 when a team failed).")] = False,
    interval: Annotated[float | None, typer.Option(
        help="Seconds between passes (default: INCIDENTFOX_WORKER_GROUPS_RECONCILE_S).")] = None,
    namespace: Annotated[str | None, typer.Option(
        help="Namespace of the RayService (default: INCIDENTFOX_WORKER_GROUPS_NAMESPACE).")] = None,
    name: Annotated[str | None, typer.Option(
        help="RayService name (default: INCIDENTFOX_WORKER_GROUPS_RAYSERVICE).")] = None,
    drain_seconds: Annotated[float | None, typer.Option(
        help="How long a replaced group drains (default: INCIDENTFOX_WORKER_GROUPS_DRAIN_S).")] = None,
    context: Annotated[str | None, typer.Option(help="kube context (default: current).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Plan only: change nothing, audit nothing.")] = False,
) -> None:
    """Bring every team's dedicated worker group in line with its `deployment.mode`, reading the
    teams' configs from the platform database (INCIDENTFOX_DATABASE_URL) and writing the audit log.

    The RayService does this on its own (the worker-group reconciler actor); run it by hand to see a
    pass's outcome at once. Prints one JSON line per team changed or failed, then a summary line.
    """
    import asyncio

    from cluster.reconcile import ReconcileResult
    from cluster.reconcile_loop import ReconcileLoop, build_reconciler
    from incidentfox.settings import Settings

    settings = Settings()
    overrides = {k: v for k, v in (("worker_groups_namespace", namespace), ("worker_groups_rayservice", name),
                                   ("worker_groups_drain_s", drain_seconds)) if v is not None}
    settings = settings.model_copy(update=overrides)
    every = interval if interval is not None else settings.worker_groups_reconcile_s
    if not once and not every > 0:
        raise typer.BadParameter("must be above 0 (or use --once)", param_hint="--interval")

    def show(result: ReconcileResult) -> None:
        for outcome in result.outcomes:
            if outcome.status != "unchanged":
                typer.echo(json.dumps(outcome.as_dict(), sort_keys=True))
        typer.echo(json.dumps(result.summary(), sort_keys=True))

    async def main() -> ReconcileResult | None:
        reconciler, close = build_reconciler(settings, api_client=_kube_api(context).api_client,
                                             dry_run=dry_run)
        try:
            if once:
                return await reconciler.run_once()
            await ReconcileLoop(reconciler.run_once, interval_s=every, on_result=show).run()
            return None
        finally:
            await close()

    result = asyncio.run(main())
    if result is not None:
        show(result)
        if not result.ok:
            raise typer.Exit(code=1)


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(cluster, name="cluster")
