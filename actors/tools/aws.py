"""AWS tools on ``boto3``: CloudWatch metrics and logs, ECS services, RDS instances, EC2 status, and
X-Ray traces (:mod:`actors.tools.xray`, same credentials).

Calls go through :mod:`actors.tools.aws_client` (threads, cached clients, typed errors).
``integrations.aws``: ``region`` (default ``us-east-1``) and the tenant's own credentials, either
``access_key_id`` + ``secret_access_key`` (optional ``session_token``) or ``role_arn`` +
``external_id``: a role in the tenant's account that the operator's assumer identity assumes with
``sts:ExternalId`` ``<org_id>:<external_id>`` (docs/security.md, "Tenant credentials"). A block with
neither is refused: the platform's own AWS identity is never used for a tenant. The endpoint is the
operator's ``AWS_ENDPOINT_URL`` (a VPC endpoint; moto in tests), never set per tenant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from actors.tools import aws_client, xray
from actors.tools import schema as s
from actors.tools.base import ToolContext, ToolResult, ToolSpec, spec_builder
from actors.tools.convert import error_count, iso, logs_result, normalise_level
from incidentfox.evidence import ChangeEvent, EvidenceBundle, LogLine, MetricSeries, ObjectState

TIMEOUT_S = aws_client.TIMEOUT_S
_call = aws_client.call


def _ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


async def cloudwatch_metric(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    start, end = ctx.window(args["since_minutes"])
    dims = [{"Name": d["name"], "Value": d["value"]} for d in (args["dimensions"] or [])]
    stat = args["statistic"] or "Average"
    period = args["period_seconds"] or 60
    query = [
        {
            "Id": "m0",
            "ReturnData": True,
            "MetricStat": {
                "Metric": {
                    "Namespace": args["namespace"],
                    "MetricName": args["metric_name"],
                    "Dimensions": dims,
                },
                "Period": period,
                "Stat": stat,
            },
        }
    ]
    resp = await _call(
        ctx,
        "cloudwatch",
        lambda c: c.get_metric_data(
            MetricDataQueries=query, StartTime=start, EndTime=end, ScanBy="TimestampAscending"
        ),
    )
    entity = dims[0]["Value"] if dims else args["namespace"]
    series, data = [], []
    for r in resp.get("MetricDataResults", []):
        pairs = sorted(zip(r.get("Timestamps", []), r.get("Values", [])), key=lambda p: p[0])
        series.append(
            MetricSeries(
                entity=entity,
                metric=args["metric_name"],
                statistic=stat,
                timestamps=[t.timestamp() for t, _ in pairs],
                values=[v for _, v in pairs],
            )
        )
        data.append(
            {
                "label": r.get("Label"),
                "status": r.get("StatusCode"),
                "points": [[iso(t), v] for t, v in pairs],
            }
        )
    vals = [v for sr in series for v in sr.values]
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(metrics=series),
        summary=f"{args['namespace']} {args['metric_name']} {stat} on {entity}: "
        + (f"{len(vals)} points, last={vals[-1]:.4g}, max={max(vals):.4g}" if vals else "no datapoints"),
    )


async def cloudwatch_logs(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    start, end = ctx.window(args["since_minutes"])
    kw: dict[str, Any] = {
        "logGroupName": args["log_group"],
        "startTime": _ms(start),
        "endTime": _ms(end),
        "limit": args["limit"] or 100,
    }
    if args["filter_pattern"]:
        kw["filterPattern"] = args["filter_pattern"]
    resp = await _call(ctx, "logs", lambda c: c.filter_log_events(**kw))
    entity = args["log_group"].rstrip("/").split("/")[-1]
    lines = [
        LogLine(
            entity=entity,
            text=str(e.get("message", ""))[:2000],
            level=normalise_level(None, str(e.get("message", ""))),
            at=datetime.fromtimestamp(e["timestamp"] / 1000, tz=start.tzinfo),
        )
        for e in resp.get("events", [])
    ]
    lines.sort(key=lambda ln: ln.at, reverse=True)
    summary = f"{len(lines)} events from {args['log_group']}, {error_count(lines)} errors"
    return logs_result(lines, summary, service=False)


async def ecs_services(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    since, _ = ctx.window(args["since_minutes"], default=24 * 60)

    def run(c: Any) -> list[tuple[str, dict[str, Any]]]:
        clusters = (
            [args["cluster"]] if args["cluster"] else c.list_clusters(maxResults=10).get("clusterArns", [])
        )
        found = []
        for cluster in clusters[:5]:
            names = args["services"] or c.list_services(cluster=cluster, maxResults=10).get("serviceArns", [])
            for i in range(0, len(names), 10):
                for svc in c.describe_services(cluster=cluster, services=names[i : i + 10]).get(
                    "services", []
                ):
                    found.append((cluster.split("/")[-1], svc))
        return found

    found = await _call(ctx, "ecs", run)
    objects, changes, data = [], [], []
    for cluster, svc in found:
        name = svc.get("serviceName", "")
        deployments = svc.get("deployments", [])
        reasons = [
            f"Rollout{d['rolloutState'].title()}" for d in deployments if d.get("rolloutState") in ("FAILED",)
        ]
        if svc.get("runningCount", 0) < svc.get("desiredCount", 0):
            reasons.append("BelowDesiredCount")
        recent = [e.get("message", "") for e in svc.get("events", [])[:3]]
        objects.append(
            ObjectState(
                namespace=cluster,
                kind="ECSService",
                name=name,
                status=svc.get("status", ""),
                ready=f"{svc.get('runningCount', 0)}/{svc.get('desiredCount', 0)}",
                reasons=reasons,
                message="; ".join(recent)[:500],
                extra={"task_definition": svc.get("taskDefinition", "")},
            )
        )
        for d in deployments:
            at = d.get("createdAt")
            if isinstance(at, datetime) and at >= since:
                changes.append(
                    ChangeEvent(
                        entity=name,
                        kind="deploy",
                        at=at,
                        ref=d.get("taskDefinition", ""),
                        description=f"ECS deployment of {d.get('taskDefinition', '').split('/')[-1]}"
                        f" ({d.get('status', '')}, {d.get('rolloutState', 'n/a')})",
                    )
                )
        data.append(
            {
                "cluster": cluster,
                "service": name,
                "status": svc.get("status"),
                "running": svc.get("runningCount"),
                "desired": svc.get("desiredCount"),
                "task_definition": svc.get("taskDefinition"),
                "events": recent,
            }
        )
    bad = [o.name for o in objects if o.reasons]
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(objects=objects, changes=changes),
        summary=f"{len(objects)} ECS services" + (f", unhealthy: {', '.join(bad)}" if bad else ""),
    )


async def rds_instances(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    kw = {"DBInstanceIdentifier": args["identifier"]} if args["identifier"] else {}
    resp = await _call(ctx, "rds", lambda c: c.describe_db_instances(**kw))
    objects, data = [], []
    for db in resp.get("DBInstances", []):
        status = db.get("DBInstanceStatus", "")
        objects.append(
            ObjectState(
                kind="DBInstance",
                name=db.get("DBInstanceIdentifier", ""),
                status=status,
                reasons=[] if status in ("available", "backing-up") else [status],
                extra={
                    "engine": db.get("Engine"),
                    "class": db.get("DBInstanceClass"),
                    "storage_gb": db.get("AllocatedStorage"),
                    "multi_az": db.get("MultiAZ"),
                },
            )
        )
        data.append(
            {
                "identifier": db.get("DBInstanceIdentifier"),
                "status": status,
                "engine": db.get("Engine"),
                "class": db.get("DBInstanceClass"),
                "storage_gb": db.get("AllocatedStorage"),
                "endpoint": (db.get("Endpoint") or {}).get("Address"),
            }
        )
    bad = [o.name for o in objects if o.reasons]
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(objects=objects),
        summary=f"{len(objects)} RDS instances"
        + (f", not available: {', '.join(bad)}" if bad else ", all available"),
    )


async def ec2_instance_status(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    kw: dict[str, Any] = {"IncludeAllInstances": True}
    if args["instance_ids"]:
        kw["InstanceIds"] = args["instance_ids"]
    resp = await _call(ctx, "ec2", lambda c: c.describe_instance_status(**kw))
    objects, data = [], []
    for st in resp.get("InstanceStatuses", []):
        sys_s = (st.get("SystemStatus") or {}).get("Status", "")
        inst_s = (st.get("InstanceStatus") or {}).get("Status", "")
        state = (st.get("InstanceState") or {}).get("Name", "")
        reasons = [
            f"{label}:{v}"
            for label, v in (("SystemStatus", sys_s), ("InstanceStatus", inst_s))
            if v not in ("ok", "not-applicable", "initializing", "")
        ]
        reasons += [f"ScheduledEvent:{e.get('Code')}" for e in st.get("Events", [])]
        if args["only_impaired"] and not reasons:
            continue
        objects.append(
            ObjectState(
                kind="EC2Instance",
                name=st.get("InstanceId", ""),
                status=state,
                reasons=reasons,
                extra={"az": st.get("AvailabilityZone")},
            )
        )
        data.append(
            {
                "instance_id": st.get("InstanceId"),
                "state": state,
                "system_status": sys_s,
                "instance_status": inst_s,
                "az": st.get("AvailabilityZone"),
                "reasons": reasons,
            }
        )
    bad = [o.name for o in objects if o.reasons]
    return ToolResult.success(
        data,
        evidence=EvidenceBundle(objects=objects),
        summary=f"{len(objects)} EC2 instances, {len(bad)} impaired",
    )


_DIM = s.obj(
    "A CloudWatch dimension.",
    name=s.string("Dimension name, e.g. DBInstanceIdentifier.", max_length=255),
    value=s.string("Dimension value.", max_length=1024),
)


_spec = spec_builder(category="cloud", integration="aws", timeout_s=TIMEOUT_S)


SPECS: list[ToolSpec] = [
    _spec(
        "aws_cloudwatch_metric",
        cloudwatch_metric,
        "Fetch one CloudWatch metric over a recent window (GetMetricData), e.g. namespace AWS/RDS, "
        "metric DatabaseConnections, dimension DBInstanceIdentifier.",
        s.obj(
            namespace=s.string("CloudWatch namespace, e.g. AWS/RDS.", max_length=255),
            metric_name=s.string("Metric name, e.g. CPUUtilization.", max_length=255),
            dimensions=s.array(
                _DIM, "Dimensions identifying the resource (null: none).", nullable=True, max_items=10
            ),
            statistic=s.string(
                "Average, Sum, Maximum, Minimum, SampleCount or pNN (null: Average).",
                nullable=True,
                max_length=20,
            ),
            period_seconds=s.integer(
                "Period in seconds (null: 60).", nullable=True, minimum=1, maximum=86400
            ),
            since_minutes=s.SINCE_MINUTES,
        ),
    ),
    _spec(
        "aws_cloudwatch_logs",
        cloudwatch_logs,
        "Search a CloudWatch Logs group over a recent window (FilterLogEvents), newest first.",
        s.obj(
            log_group=s.string("Log group name, e.g. /ecs/checkout.", max_length=512),
            filter_pattern=s.string(
                "CloudWatch filter pattern, e.g. ERROR (null: everything).", nullable=True, max_length=1024
            ),
            since_minutes=s.SINCE_MINUTES,
            limit=s.LIMIT,
        ),
    ),
    _spec(
        "aws_ecs_services",
        ecs_services,
        "Describe ECS services: running vs desired tasks, recent service events, and deployments "
        "started within the window.",
        s.obj(
            cluster=s.string(
                "Cluster name or ARN (null: the first clusters found).", nullable=True, max_length=512
            ),
            services=s.array(
                s.string("Service name or ARN.", max_length=512),
                "Services (null: all).",
                nullable=True,
                max_items=50,
            ),
            since_minutes=s.integer(
                "Report deployments newer than this many minutes (null: 1440).",
                nullable=True,
                minimum=1,
                maximum=30 * 24 * 60,
            ),
        ),
    ),
    _spec(
        "aws_rds_instances",
        rds_instances,
        "Describe RDS database instances and their status (available, storage-full, rebooting…).",
        s.obj(identifier=s.string("DB instance identifier (null: all).", nullable=True, max_length=255)),
    ),
    _spec(
        "aws_ec2_instance_status",
        ec2_instance_status,
        "EC2 instance state plus system/instance status checks and scheduled events.",
        s.obj(
            instance_ids=s.array(
                s.string("Instance id.", max_length=32),
                "Instance ids (null: all).",
                nullable=True,
                max_items=100,
            ),
            only_impaired=s.boolean(
                "Only instances failing a check or with events (null: false).", nullable=True
            ),
        ),
    ),
]
# X-Ray reads the same integration and credentials; it is declared in its own module.
SPECS += xray.SPECS
