"""The demo world's incidents, as data.

One small shop (namespace ``shop``): ``frontend`` calls ``checkout`` and ``cart``; ``checkout`` calls
``payments`` and ``postgres``; ``payments`` calls ``postgres`` (an RDS instance). Each
:class:`Scenario` says what broke, when (minutes before the world's ``now``), and which signals
show it. :mod:`actors.tools.demo.world` turns a scenario into concrete evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NAMESPACE = "shop"
SERVICES = ("frontend", "checkout", "payments", "cart")  # Kubernetes deployments
DATABASE = "postgres"  # the RDS instance
TOPOLOGY = (
    ("frontend", "checkout"),
    ("frontend", "cart"),
    ("checkout", "payments"),
    ("checkout", "postgres"),
    ("payments", "postgres"),
)
REPLICAS = {"frontend": 3, "checkout": 3, "payments": 3, "cart": 2}
# Normal operation per (service, metric). Latencies in seconds, error_rate as a ratio, memory in MiB.
BASELINE: dict[str, dict[str, float]] = {
    "frontend": {"latency_p99": 0.25, "error_rate": 0.003, "requests": 120.0, "cpu": 0.40, "memory": 300.0},
    "checkout": {"latency_p99": 0.18, "error_rate": 0.002, "requests": 40.0, "cpu": 0.30, "memory": 350.0},
    "payments": {"latency_p99": 0.22, "error_rate": 0.001, "requests": 35.0, "cpu": 0.25, "memory": 280.0},
    "cart": {"latency_p99": 0.05, "error_rate": 0.001, "requests": 80.0, "cpu": 0.20, "memory": 220.0},
    "postgres": {
        "latency_p99": 0.004,
        "error_rate": 0.0,
        "connections": 60.0,
        "cpu": 22.0,
        "free_storage_gb": 38.0,
    },
}
# Version history per service: (version, days ago). The newest is what runs unless a scenario deploys.
HISTORY = {
    "frontend": (("v5.2.0", 12.0), ("v5.3.0", 4.0), ("v5.3.1", 2.1)),
    "checkout": (("v2.12.0", 9.0), ("v2.13.0", 5.0), ("v2.13.1", 3.0)),
    "payments": (("v3.1.0", 14.0), ("v3.1.4", 6.0), ("v3.2.0", 2.5)),
    "cart": (("v1.8.0", 20.0), ("v1.8.1", 11.0), ("v1.8.2", 6.0)),
}
REGISTRY = "registry.example.com/shop"


@dataclass(frozen=True)
class Anomaly:
    service: str
    metric: str
    value: float  # level after onset
    shape: str = "step"  # step | sawtooth (climb to value, drop, repeat)
    onset_min: float | None = None  # minutes before now; default: the scenario's incident onset


@dataclass(frozen=True)
class Deploy:
    service: str
    version: str
    minutes_ago: float
    change: str  # change-cause / commit message
    author: str
    image: str | None = None  # image override (e.g. a tag that does not exist)


@dataclass(frozen=True)
class Event:
    service: str
    kind: str  # Pod | Deployment | ReplicaSet
    type: str
    reason: str
    message: str
    minutes_ago: float
    count: int = 1


@dataclass(frozen=True)
class PodTrouble:
    service: str
    status: str = "Running"
    reasons: tuple[str, ...] = ()
    restarts: int = 0
    ready: bool = True
    message: str = ""
    pods: int | None = None  # how many of the service's pods (None: all); new-revision pods for deploys
    new_revision: bool = False  # the troubled pods belong to the newest ReplicaSet


@dataclass(frozen=True)
class LogPattern:
    service: str
    level: str
    text: str
    every_s: float
    onset_min: float | None = None  # None: the incident onset; a number: minutes before now
    until_min: float = 0.0


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    root_cause: str  # expected root-cause entity (a service name)
    onset_min: float  # incident onset, minutes before now
    alert_title: str
    alert_entity: str
    alert_metric: str
    alert_min: float  # when the alert fired, minutes before now
    anomalies: tuple[Anomaly, ...] = ()
    deploys: tuple[Deploy, ...] = ()
    events: tuple[Event, ...] = ()
    pods: tuple[PodTrouble, ...] = ()
    logs: tuple[LogPattern, ...] = ()
    rds_status: str = "available"
    slack: tuple[str, ...] = ()
    deployment_reasons: dict[str, tuple[str, ...]] = field(default_factory=dict)


# Background noise every scenario shares: an old, recurring warning that is not the incident.
NOISE_LOGS = (
    LogPattern("cart", "warning", "cache hit ratio below 0.8 for key prefix promo:", 600.0, onset_min=120.0),
    LogPattern("frontend", "info", "GET /healthz 200", 300.0, onset_min=120.0),
    LogPattern("checkout", "info", "order placed order_id={n} items=3", 240.0, onset_min=120.0),
    LogPattern(
        "payments", "info", "charge authorised provider=stripe latency_ms=180", 240.0, onset_min=120.0
    ),
)

BAD_DEPLOY = Scenario(
    name="bad_deploy",
    title="checkout v2.14.0 shrank its DB connection pool: pool exhaustion, 5xx and latency",
    root_cause="checkout",
    onset_min=12.5,
    alert_title="High 5xx rate on frontend /checkout",
    alert_entity="frontend",
    alert_metric="error_rate",
    alert_min=9.0,
    deploys=(
        Deploy(
            "checkout",
            "v2.14.0",
            14.0,
            "checkout: read DB pool settings from new config (DB_POOL_MAX=5)",
            "dana",
        ),
    ),
    anomalies=(
        Anomaly("checkout", "latency_p99", 4.8),
        Anomaly("checkout", "error_rate", 0.21),
        Anomaly("frontend", "error_rate", 0.074),
        Anomaly("frontend", "latency_p99", 1.9),
        Anomaly("payments", "requests", 26.0),
        Anomaly("postgres", "connections", 18.0),
        Anomaly("checkout", "cpu", 0.45),
    ),
    events=(
        Event(
            "checkout",
            "Pod",
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            10.0,
            14,
        ),
        Event(
            "checkout", "Deployment", "Normal", "ScalingReplicaSet", "Scaled up replica set {rs} to 3", 14.0
        ),
    ),
    logs=(
        LogPattern(
            "checkout",
            "error",
            "HikariPool-1 - Connection is not available, request timed out after "
            "5000ms (total=5, active=5, idle=0, waiting=37)",
            9.0,
        ),
        LogPattern(
            "checkout",
            "error",
            "POST /api/checkout 503: could not obtain DB connection: pool exhausted (max=5)",
            14.0,
        ),
        LogPattern(
            "checkout", "info", "config loaded: DB_POOL_MAX=5 DB_POOL_TIMEOUT_MS=5000", 3600.0, onset_min=13.5
        ),
        LogPattern(
            "frontend", "error", "upstream checkout returned 503 Service Unavailable for POST /checkout", 11.0
        ),
    ),
    slack=(
        "checkout is failing for a lot of customers, started ~10 min ago",
        "seeing 503s from checkout in the frontend dashboards",
    ),
)

OOM_KILL = Scenario(
    name="oom_kill",
    title="cart leaks memory and is OOM-killed in a crash loop",
    root_cause="cart",
    onset_min=26.0,
    alert_title="cart availability below SLO",
    alert_entity="cart",
    alert_metric="availability",
    alert_min=15.0,
    anomalies=(
        Anomaly("cart", "memory", 512.0, shape="sawtooth"),
        Anomaly("cart", "error_rate", 0.12),
        Anomaly("frontend", "error_rate", 0.03),
        Anomaly("cart", "latency_p99", 0.9),
    ),
    pods=(
        PodTrouble(
            "cart",
            status="Running",
            reasons=("CrashLoopBackOff", "OOMKilled"),
            restarts=7,
            ready=False,
            message="back-off 2m40s restarting failed container=cart",
        ),
    ),
    events=(
        Event(
            "cart",
            "Pod",
            "Warning",
            "BackOff",
            "Back-off restarting failed container cart in pod {pod}",
            4.0,
            21,
        ),
        Event(
            "cart",
            "Pod",
            "Warning",
            "OOMKilling",
            "Memory cgroup out of memory: Killed process 4121 (node) total-vm:1843212kB",
            6.0,
            7,
        ),
    ),
    logs=(
        LogPattern(
            "cart",
            "fatal",
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
            210.0,
        ),
        LogPattern(
            "cart", "warning", "session cache size 1.8M entries, eviction disabled", 120.0, onset_min=40.0
        ),
        LogPattern("frontend", "error", "upstream cart connection refused (GET /cart)", 25.0),
    ),
    slack=("cart page is flaky, sometimes empty",),
)

IMAGE_PULL = Scenario(
    name="image_pull",
    title="payments v3.2.1 references an image tag that does not exist; its rollout is stuck",
    root_cause="payments",
    onset_min=10.0,
    alert_title="KubeDeploymentRolloutStuck: shop/payments",
    alert_entity="payments",
    alert_metric="availability",
    alert_min=3.0,
    deploys=(
        Deploy(
            "payments",
            "v3.2.1",
            10.5,
            "payments: bump to v3.2.1",
            "lee",
            image=f"{REGISTRY}/payments:v3.2.1-rc",
        ),
    ),
    pods=(
        PodTrouble(
            "payments",
            status="Pending",
            reasons=("ImagePullBackOff", "ErrImagePull"),
            ready=False,
            message=f'Back-off pulling image "{REGISTRY}/payments:v3.2.1-rc"',
            pods=1,
            new_revision=True,
        ),
    ),
    deployment_reasons={"payments": ("ProgressDeadlineExceeded",)},
    anomalies=(
        Anomaly("payments", "latency_p99", 0.41),
        Anomaly("payments", "cpu", 0.38),
        Anomaly("checkout", "latency_p99", 0.31),
    ),
    events=(
        Event(
            "payments",
            "Pod",
            "Warning",
            "Failed",
            f'Failed to pull image "{REGISTRY}/payments:v3.2.1-rc": manifest unknown: manifest tagged by '
            f'"v3.2.1-rc" is not found',
            9.5,
            6,
        ),
        Event("payments", "Pod", "Warning", "Failed", "Error: ImagePullBackOff", 9.0, 30),
        Event(
            "payments",
            "Deployment",
            "Warning",
            "ProgressDeadlineExceeded",
            "ReplicaSet {rs} has timed out progressing.",
            0.5,
        ),
    ),
    logs=(LogPattern("payments", "warning", "worker saturation 92%, queueing requests", 60.0),),
)

DEPENDENCY_FAILURE = Scenario(
    name="dependency_failure",
    title="the postgres RDS instance ran out of storage; writes fail in checkout and payments",
    root_cause="postgres",
    onset_min=18.0,
    alert_title="checkout and payments error rate high",
    alert_entity="checkout",
    alert_metric="error_rate",
    alert_min=14.0,
    rds_status="storage-full",
    deploys=(Deploy("cart", "v1.8.3", 52.0, "cart: copy tweaks on empty-cart page", "sam"),),
    anomalies=(
        Anomaly("postgres", "free_storage_gb", 0.0),
        Anomaly("postgres", "latency_p99", 0.9),
        Anomaly("postgres", "connections", 95.0),
        Anomaly("checkout", "error_rate", 0.16),
        Anomaly("payments", "error_rate", 0.19),
        Anomaly("checkout", "latency_p99", 1.4),
        Anomaly("payments", "latency_p99", 1.6),
        Anomaly("frontend", "error_rate", 0.05),
    ),
    logs=(
        LogPattern(
            "checkout",
            "error",
            'psycopg.errors.DiskFull: could not extend file "base/16384/24576": No space left on device',
            12.0,
        ),
        LogPattern(
            "payments",
            "error",
            'ERROR: could not write to file "pg_wal/xlogtemp.88": No space left on device (SQLSTATE 53100)',
            10.0,
        ),
        LogPattern(
            "postgres",
            "fatal",
            'PANIC: could not write to file "pg_wal/xlogtemp.88": No space left on device',
            45.0,
        ),
        LogPattern("frontend", "error", "upstream checkout returned 500 Internal Server Error", 20.0),
    ),
    slack=("payments and checkout both erroring, DB related?",),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (BAD_DEPLOY, OOM_KILL, IMAGE_PULL, DEPENDENCY_FAILURE)}
DEFAULT_SCENARIO = BAD_DEPLOY.name
