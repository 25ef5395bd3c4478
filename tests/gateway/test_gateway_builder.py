"""The one Serve config is valid for Serve, every application in it builds through its typed
builder, and args are validated (unknown keys refused)."""

from __future__ import annotations

import pydantic
import pytest
from ray.serve import Application

from serve_apps import builder


def test_serve_config_validates_and_every_app_builds():
    config = builder.load_serve_config()
    names = [a["name"] for a in config["applications"]]
    assert names[:3] == ["config", "gateway", "agent"]
    prefixes = {a["name"]: a["route_prefix"] for a in config["applications"]}
    assert prefixes["config"] == "/" and prefixes["gateway"] == "/webhooks" and prefixes["agent"] == "/api/v1/agent"
    for app in config["applications"]:
        assert isinstance(builder.build_application(app), Application), app["name"]


def test_gateway_deployment_has_autoscaling_and_max_ongoing_requests():
    from serve_apps.gateway import Gateway

    assert Gateway._deployment_config.max_ongoing_requests > 0
    assert Gateway._deployment_config.autoscaling_config is not None
    app = builder.build_gateway(builder.GatewayArgs(runner="null", max_replicas=3))
    deployment = app._bound_deployment
    assert deployment._deployment_config.autoscaling_config.max_replicas == 3


def test_builder_args_are_typed_and_strict():
    with pytest.raises(pydantic.ValidationError):
        builder.GatewayArgs.model_validate({"runner": "bogus"})
    with pytest.raises(pydantic.ValidationError):
        builder.GatewayArgs.model_validate({"database_url": "sqlite://"})   # env only, never args
    assert builder.AgentArgs.model_validate({}).runner == "investigation"


def test_pluggable_apps_report_absence_clearly(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **kw):
        if name == "serve_apps.reports_api":
            raise ModuleNotFoundError(name=name)
        return real(name, *a, **kw)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(builder.AppUnavailable):
        builder.build_reports({})


def test_local_config_applies_runner_and_single_writer_and_keeps_cluster_entries():
    skipped = []
    config = builder.local_config(port=18999, overrides={"gateway": {"runner": "complete"}},
                                  single_writer=True, on_skip=lambda n, why: skipped.append(n))
    assert config["http_options"]["port"] == 18999
    apps = {a["name"]: a for a in config["applications"]}
    assert apps["gateway"]["args"]["runner"] == "complete"
    for app, dep in (("gateway", "Gateway"), ("agent", "AgentAPI")):   # one replica per run writer
        found = [d for d in apps[app].get("deployments", []) if d["name"] == dep]
        assert found and all(d["autoscaling_config"]["max_replicas"] == 1 for d in found), app
    original = {a["name"]: a for a in builder.load_serve_config()["applications"]}
    assert original["gateway"].get("deployments") == builder.load_serve_config()["applications"][1].get(
        "deployments"), "the committed file is not modified"
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(config)


def test_runner_names_in_serve_args_match_the_registry() -> None:
    """The Serve args' runner choices are exactly the composition root's registry; an unknown name is
    a typed error naming the registered ones (no import by string anywhere)."""
    import typing

    from incidentfox.runs.runner import NullRunner, UnknownRunner
    from serve_apps.runners import RUNNERS, make_runner

    assert set(typing.get_args(builder.RunnerName)) == set(RUNNERS)
    assert isinstance(make_runner("null", database_url=""), NullRunner)
    with pytest.raises(UnknownRunner, match="registered: complete, investigation, null"):
        make_runner("actors.engine.runner:InvestigationRunner", database_url="")
