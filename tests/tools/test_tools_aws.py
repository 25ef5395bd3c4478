"""AWS tools on boto3 against moto's server (CloudWatch metrics and logs, ECS, RDS, EC2).

moto is the operator's endpoint (``AWS_ENDPOINT_URL``): tenants cannot pick one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto_kit import free_port, moto_server

from actors.tools.base import ToolContext, ToolResult
from actors.tools.execute import execute
from actors.tools.registry import TOOLS

REGION = "us-east-1"
CREDS = {"access_key_id": "AKIATENANTKEY0001", "secret_access_key": "testing-secret-key"}


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        _seed(url)
        yield url


def _client(url: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=url, aws_access_key_id="testing",
                        aws_secret_access_key="testing-secret-key")


def _seed(url: str) -> None:
    now = datetime.now(UTC)
    cw = _client(url, "cloudwatch")
    cw.put_metric_data(Namespace="AWS/RDS", MetricData=[
        {"MetricName": "DatabaseConnections", "Value": value, "Timestamp": now - timedelta(minutes=minutes),
         "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "postgres"}]}
        for minutes, value in ((20, 60.0), (10, 80.0), (2, 95.0))])
    logs = _client(url, "logs")
    logs.create_log_group(logGroupName="/shop/checkout")
    logs.create_log_stream(logGroupName="/shop/checkout", logStreamName="pod-1")
    logs.put_log_events(logGroupName="/shop/checkout", logStreamName="pod-1", logEvents=[
        {"timestamp": int((now - timedelta(minutes=3)).timestamp() * 1000), "message": "INFO order placed"},
        {"timestamp": int((now - timedelta(minutes=2)).timestamp() * 1000),
         "message": "ERROR could not obtain DB connection: pool exhausted"}])
    ecs = _client(url, "ecs")
    ecs.create_cluster(clusterName="shop")
    ecs.register_task_definition(family="checkout", containerDefinitions=[
        {"name": "checkout", "image": "reg/checkout:v2.14.0", "memory": 512}])
    ecs.create_service(cluster="shop", serviceName="checkout", taskDefinition="checkout", desiredCount=2)
    rds = _client(url, "rds")
    rds.create_db_instance(DBInstanceIdentifier="postgres", Engine="postgres", DBInstanceClass="db.m6g.large",
                           AllocatedStorage=100, MasterUsername="shop", MasterUserPassword="not-a-real-pass")
    ec2 = _client(url, "ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="t3.small")


@pytest.fixture(autouse=True)
def operator_endpoint(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)


def ctx(url: str) -> ToolContext:
    return ToolContext(integrations={"aws": {"region": REGION, **CREDS}}, org_id="acme", team_id="sre")


async def run(tool: str, args: dict[str, Any], c: ToolContext) -> ToolResult:
    return await execute(TOOLS[tool], args, c, backoff_s=0.001)


async def test_cloudwatch_metric(moto_url: str) -> None:
    result = await run("aws_cloudwatch_metric", {
        "namespace": "AWS/RDS", "metric_name": "DatabaseConnections", "statistic": "Maximum",
        "dimensions": [{"name": "DBInstanceIdentifier", "value": "postgres"}], "period_seconds": 60}, ctx(moto_url))
    assert result.ok, result.message
    series = result.evidence.metrics[0]
    assert series.entity == "postgres" and series.metric == "DatabaseConnections" and series.statistic == "Maximum"
    assert series.values == [60.0, 80.0, 95.0] and series.timestamps == sorted(series.timestamps)
    assert "max=95" in result.summary


async def test_cloudwatch_metric_without_data(moto_url: str) -> None:
    result = await run("aws_cloudwatch_metric", {"namespace": "AWS/RDS", "metric_name": "FreeStorageSpace"},
                       ctx(moto_url))
    assert result.ok and all(not s.values for s in result.evidence.metrics)


async def test_cloudwatch_logs(moto_url: str) -> None:
    result = await run("aws_cloudwatch_logs", {"log_group": "/shop/checkout", "since_minutes": 30}, ctx(moto_url))
    assert result.ok, result.message
    newest = result.evidence.logs[0]
    assert newest.entity == "checkout" and newest.level == "error" and "pool exhausted" in newest.text
    assert len(result.evidence.logs) == 2 and "1 errors" in result.summary


async def test_cloudwatch_logs_missing_group_is_not_found(moto_url: str) -> None:
    result = await run("aws_cloudwatch_logs", {"log_group": "/shop/nope"}, ctx(moto_url))
    assert result.error == "not_found" and result.attempts == 1


async def test_ecs_services(moto_url: str) -> None:
    result = await run("aws_ecs_services", {"cluster": "shop"}, ctx(moto_url))
    assert result.ok, result.message
    svc = result.evidence.objects[0]
    assert (svc.kind, svc.namespace, svc.name) == ("ECSService", "shop", "checkout")
    assert svc.ready.endswith("/2")
    every = await run("aws_ecs_services", {}, ctx(moto_url))
    assert every.ok and [o.name for o in every.evidence.objects] == ["checkout"]


async def test_ecs_unknown_cluster(moto_url: str) -> None:
    result = await run("aws_ecs_services", {"cluster": "nope"}, ctx(moto_url))
    assert result.error == "not_found"


async def test_rds_instances(moto_url: str) -> None:
    result = await run("aws_rds_instances", {}, ctx(moto_url))
    assert result.ok
    db = result.evidence.objects[0]
    assert (db.kind, db.name, db.status, db.reasons) == ("DBInstance", "postgres", "available", [])
    assert result.data[0]["engine"] == "postgres"
    missing = await run("aws_rds_instances", {"identifier": "ghost"}, ctx(moto_url))
    assert missing.error == "not_found"


async def test_ec2_instance_status(moto_url: str) -> None:
    result = await run("aws_ec2_instance_status", {}, ctx(moto_url))
    assert result.ok and len(result.evidence.objects) == 2
    assert {o.status for o in result.evidence.objects} == {"running"}
    impaired = await run("aws_ec2_instance_status", {"only_impaired": True}, ctx(moto_url))
    assert impaired.ok and impaired.evidence.objects == []
    bad = await run("aws_ec2_instance_status", {"instance_ids": ["i-0123456789abcdef0"]}, ctx(moto_url))
    assert bad.error == "not_found"


@pytest.mark.parametrize("tool, args", [
    ("aws_cloudwatch_metric", {"namespace": "AWS/RDS", "metric_name": "CPUUtilization"}),
    ("aws_cloudwatch_logs", {"log_group": "/shop/checkout"}),
    ("aws_ecs_services", {}),
    ("aws_rds_instances", {}),
    ("aws_ec2_instance_status", {}),
])
async def test_unreachable_endpoint_is_retried_then_unavailable(tool: str, args: dict,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    c = ToolContext(integrations={"aws": {"region": REGION, **CREDS}})
    result = await run(tool, args, c)
    assert result.error == "unavailable" and result.attempts == TOOLS[tool].retries + 1
    assert "testing-secret-key" not in result.message


async def test_assumed_role_reads_with_the_roles_keys(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from incidentfox.settings import get_settings

    iam = _client(moto_url, "iam")
    role = iam.create_role(RoleName="incidentfox-tools-read", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}),
    )["Role"]["Arn"]
    monkeypatch.setenv("INCIDENTFOX_AWS_ASSUMER_ACCESS_KEY_ID", "AKIAASSUMER00000001")
    monkeypatch.setenv("INCIDENTFOX_AWS_ASSUMER_SECRET_ACCESS_KEY", "assumer-secret-key")
    get_settings.cache_clear()
    try:
        c = ToolContext(integrations={"aws": {"region": REGION, "role_arn": role, "external_id": "ext-7f3c"}},
                        org_id="acme", team_id="sre")
        result = await run("aws_rds_instances", {}, c)
        assert result.ok, result.message
        assert [o.name for o in result.evidence.objects] == ["postgres"]
        # Without an org there is no scoped external id: refused before any call.
        anonymous = await run("aws_rds_instances", {}, ToolContext(integrations=c.integrations))
        assert anonymous.error == "not_configured" and "known org" in anonymous.message
    finally:
        get_settings.cache_clear()


async def test_role_without_an_assumer_identity_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    from incidentfox.settings import get_settings

    for name in ("ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "PROFILE"):
        monkeypatch.delenv(f"INCIDENTFOX_AWS_ASSUMER_{name}", raising=False)
    get_settings.cache_clear()
    try:
        c = ToolContext(integrations={"aws": {"role_arn": "arn:aws:iam::123456789012:role/r",
                                              "external_id": "ext-1"}}, org_id="acme")
        result = await run("aws_rds_instances", {}, c)
        assert result.error == "not_configured" and "INCIDENTFOX_AWS_ASSUMER_" in result.message
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("block, path", [
    ({"region": REGION}, "integrations.aws.access_key_id"),
    ({"region": REGION, "endpoint_url": "http://169.254.169.254", **CREDS}, "integrations.aws.endpoint_url"),
    ({"access_key_id": "AKIATENANTKEY0001"}, "integrations.aws.secret_access_key"),
    ({"role_arn": "arn:aws:iam::123456789012:role/r"}, "integrations.aws.external_id"),
])
async def test_blocks_the_tools_refuse(block: dict, path: str) -> None:
    result = await run("aws_rds_instances", {}, ToolContext(integrations={"aws": block}, org_id="acme"))
    assert result.error == "not_configured" and result.message.startswith(path + ":")
    assert result.attempts == 1
