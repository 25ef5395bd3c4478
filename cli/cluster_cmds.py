"""CLI commands: ``incidentfox cluster render|provision`` (KubeRay manifests, dedicated groups)."""

from __future__ import annotations

import json
import os
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

cluster = typer.Typer(no_args_is_help=True, help="KubeRay manifests and dedicated worker groups.")


class Overlay(str, Enum):
    eks = "eks"
    local_kind = "local-kind"


def _kube_api(context: str | None) -> Any:
    from kubernetes import client, config

    try:
        # KUBECONFIG is read here, not at import time, so a changed environment is honoured.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"), context=context)
    except config.ConfigException:
        try:
            config.load_incluster_config()
        except config.ConfigException as exc:
            _fail(f"no kube config and not running in a cluster: {exc}")
    return client.CustomObjectsApi()


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


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
        _fail("use either --live or --from-cluster")
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
                _fail(f"cannot read rayservice/{namespace}/{r.RAYSERVICE_NAME}: {exc.status} {exc.reason}")
        objects = r.render(overlay=overlay.value, serve_config=serve_config or r.DEFAULT_SERVE_CONFIG,
                           live=live_obj, compact=compact)
    except (OSError, yaml.YAMLError, ValueError) as exc:
        _fail(str(exc))
    if validate:
        from cluster.validate import validate_objects

        problems = validate_objects(objects)
        if problems:
            _fail("rendered manifests are invalid:\n  " + "\n  ".join(problems))
    for path in r.write(objects, out):
        typer.echo(str(path))


def _effective_config(org: str, team: str, config_file: Path | None, config_url: str | None,
                      token: str | None) -> dict[str, Any]:
    if config_file is not None:
        data = yaml.safe_load(config_file.read_text()) or {}
    elif config_url:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        resp = httpx.get(f"{config_url.rstrip('/')}/api/v1/orgs/{org}/nodes/{team}/config/effective",
                         headers=headers, timeout=10.0)
        if resp.status_code != 200:
            _fail(f"config service answered {resp.status_code} for {org}/{team}")
        data = resp.json()
    else:
        _fail("give --config-file or --config-url (or INCIDENTFOX_CONFIG_URL)")
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
        envvar="INCIDENTFOX_CONFIG_URL", help="Config service base URL to read the effective config.")] = None,
    namespace: Annotated[str, typer.Option(help="Namespace of the RayService.")] = "incidentfox",
    name: Annotated[str, typer.Option(help="RayService name.")] = "incidentfox",
    drain_seconds: Annotated[float, typer.Option(
        help="How long a replaced group drains before it is scaled to zero.")] = 900.0,
    context: Annotated[str | None, typer.Option(help="kube context (default: current).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the plan and the patch; change nothing.")] = False,
) -> None:
    """Reconcile a team's dedicated worker group with its effective `deployment` config.

    Prints one JSON audit record per committed action (nothing when already in line). Run it again
    after the drain window to retire a replaced group.
    """
    from cluster.placement import DeploymentConfig, PlacementError
    from cluster.provisioner import Provisioner, ProvisionError

    try:
        deployment = DeploymentConfig.from_effective(_effective_config(
            org, team, config_file, config_url, os.environ.get("INCIDENTFOX_ADMIN_TOKEN")))
        prov = Provisioner(_kube_api(context), namespace=namespace, name=name,
                           drain_s=drain_seconds, dry_run=dry_run)
        result = prov.provision(org=org, team=team, deployment=deployment)
    except (OSError, yaml.YAMLError, ValueError, PlacementError, ProvisionError) as exc:
        _fail(str(exc))
    for rec in result.actions:
        typer.echo(json.dumps(rec.as_dict(), sort_keys=True))
    if dry_run:
        typer.echo(json.dumps({"patch": result.patch}, indent=1))


def register(app: typer.Typer) -> None:
    """Attach this module's commands to the root app."""
    app.add_typer(cluster, name="cluster")
