"""Parse recorded ``kubectl`` text output into evidence: ``describe``, ``get`` tables, ``events``.

Pure functions over text. ``describe`` output is an indentation tree (``Key:  value`` lines, deeper
lines belong to the last shallower key) with column-aligned tables under ``Events:`` and
``Conditions:``; tables are sliced at the header's column positions, as kubectl aligns them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from actors.ranking.entities import workload_of_owner
from incidentfox.evidence import K8sEvent, ObjectState

_KEY = re.compile(r"^(\s*)([^:\s][^:]*?):(?:\s+(.*))?$")
_BENIGN = {"", "Running", "Completed", "Succeeded", "PodInitializing", "ContainerCreating", "Terminated"}
_COUNT = re.compile(r"\(x(\d+) over")


@dataclass
class Node:
    key: str | None
    value: str
    indent: int
    raw: str
    children: list[Node] = field(default_factory=list)

    def get(self, key: str) -> Node | None:
        return next((c for c in self.children if c.key == key), None)

    def val(self, key: str, default: str = "") -> str:
        c = self.get(key)
        return c.value if c is not None else default

    def sub(self, *keys: str) -> str:
        node: Node | None = self
        for k in keys:
            node = node.get(k) if node is not None else None
        return node.value if node is not None else ""


def unescape(text: str) -> str:
    """Some recordings keep JSON escapes in the raw output (``\\"``)."""
    return text.replace('\\"', '"')


def parse_tree(text: str) -> Node:
    """Indentation tree of ``Key: value`` lines. Keys with two inner spaces are table rows, not keys."""
    root = Node(None, "", -1, "")
    stack = [root]
    for raw in text.splitlines():
        if not raw.strip():
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        m = _KEY.match(raw)
        is_key = bool(m) and "  " not in m.group(2)
        node = Node(m.group(2).strip() if is_key else None, (m.group(3) or "").strip() if is_key else raw.strip(),
                    indent, raw)
        while len(stack) > 1 and stack[-1].indent >= indent:
            stack.pop()
        stack[-1].children.append(node)
        if is_key:
            stack.append(node)
    return root


def parse_table(lines: list[str]) -> list[dict[str, str]]:
    """Rows of a column-aligned table whose first line is the header (``----`` lines skipped)."""
    lines = [ln for ln in lines if ln.strip() and not set(ln.strip()) <= {"-", " "}]
    if not lines:
        return []
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+(?: \S+)*", header)]
    names = [header[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    rows = []
    for ln in lines[1:]:
        cells = [ln[s:e].strip() if e is not None else ln[s:].strip()
                 for s, e in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(names, cells, strict=True)))
    return rows


def _events(node: Node | None, namespace: str, kind: str, name: str) -> list[K8sEvent]:
    if node is None:
        return []
    out = []
    for row in parse_table([c.raw for c in node.children]):
        if row.get("Type") not in ("Normal", "Warning"):
            continue
        m = _COUNT.search(row.get("Age", ""))
        out.append(K8sEvent(namespace=namespace, kind=kind, name=name, type=row["Type"],
                            reason=row.get("Reason", ""), message=unescape(row.get("Message", "")),
                            count=int(m.group(1)) if m else 1))
    return out


def _container(node: Node) -> dict[str, object]:
    def lines(key: str) -> list[str]:
        c = node.get(key)
        return [x.value if x.key is None else x.raw.strip() for x in c.children] if c else []

    def limits(key: str) -> dict[str, str]:
        c = node.get(key)
        return {x.key: x.value for x in c.children if x.key} if c else {}

    return {
        "name": node.key, "image": node.val("Image"),
        "state": node.val("State"), "reason": node.sub("State", "Reason"),
        "message": unescape(node.sub("State", "Message")),
        "last_state": node.val("Last State"), "last_reason": node.sub("Last State", "Reason"),
        "last_message": unescape(node.sub("Last State", "Message")),
        "exit_code": node.sub("Last State", "Exit Code"),
        "ready": node.val("Ready"), "restarts": int(node.val("Restart Count", "0") or 0),
        "limits": limits("Limits"), "requests": limits("Requests"),
        "command": lines("Command"), "args": lines("Args"),
    }


def _containers(parent: Node, *sections: str) -> list[dict[str, object]]:
    out = []
    for section in sections:
        sec = parent.get(section)
        for c in sec.children if sec else ():
            if c.key and c.children:
                info = _container(c)
                info["init"] = section.startswith("Init")
                out.append(info)
    return out


def parse_describe(text: str, *, kind: str = "", namespace: str = "") -> tuple[list[ObjectState], list[K8sEvent]]:
    """``kubectl describe <kind> <name>`` → the object's state and its events."""
    tree = parse_tree(text)
    name = tree.val("Name")
    if not name:
        return [], []
    namespace = tree.val("Namespace", namespace)
    kind = (kind or ("pod" if tree.get("Containers") and tree.get("Controlled By") else
                     "job" if tree.get("Completions") else
                     "deployment" if tree.get("Replicas") else "pod")).lower()
    events = _events(tree.get("Events"), namespace, kind, name)
    if kind == "pod":
        obj = _pod(tree, namespace, name)
    elif kind == "deployment":
        obj = _deployment(tree, namespace, name)
    elif kind == "job":
        obj = _job(tree, namespace, name, events)
    else:
        obj = ObjectState(namespace=namespace, kind=kind, name=name, status=tree.val("Status"))
    obj.extra["source"] = "describe"
    return [obj], events


def _pod(tree: Node, namespace: str, name: str) -> ObjectState:
    containers = _containers(tree, "Init Containers", "Containers")
    reasons: list[str] = []
    for c in containers:
        for r in (c["reason"], c["last_reason"]):
            if r not in _BENIGN and r not in reasons:
                reasons.append(str(r))
    bad = [c for c in containers if c["reason"] not in _BENIGN or c["last_reason"] not in _BENIGN]
    focus = bad[0] if bad else (containers[0] if containers else {})
    main = [c for c in containers if not c["init"]]
    ready = f"{sum(1 for c in main if c['ready'] == 'True')}/{len(main)}" if main else ""
    cond = tree.get("Conditions")
    return ObjectState(
        namespace=namespace, kind="pod", name=name, status=tree.val("Status"), ready=ready,
        restarts=max((int(c["restarts"]) for c in containers), default=0), reasons=reasons,
        image=str(focus.get("image", "")),
        message=str(focus.get("last_message") or focus.get("message") or ""),
        owner=workload_of_owner(tree.val("Controlled By")),
        extra={"containers": containers,
               "conditions": {r["Type"]: r.get("Status", "") for r in parse_table([c.raw for c in cond.children])}
               if cond else {},
               "claims": _claims(tree)},
    )


def _claims(tree: Node) -> list[str]:
    """The PersistentVolumeClaims a pod mounts (``Volumes:`` entries with a ``ClaimName``)."""
    vols = tree.get("Volumes")
    return [v.val("ClaimName") for v in (vols.children if vols else ()) if v.val("ClaimName")]


def parse_describe_pod(text: str, *, namespace: str = "") -> tuple[ObjectState, list[K8sEvent]] | None:
    """``kubectl describe pod`` → the pod as the live ``kubernetes_describe_pod`` tool sees it
    (:func:`actors.tools.kubernetes_describe.describe_state`: kind ``Pod``, phase, ready and restarts
    of the main containers, reasons of every waiting or non-``Completed`` terminated state, and
    ``extra`` with ``containers`` in that tool's keys, ``conditions`` as a list, ``qos_class``,
    ``node``…) and its events; None when the text describes no pod (no ``Name`` or no ``Containers``)."""
    tree = parse_tree(text)
    name = tree.val("Name")
    if not name or tree.get("Containers") is None:
        return None
    namespace = tree.val("Namespace", namespace)
    containers = [_live_container(c) for c in _containers(tree, "Init Containers", "Containers")]
    main = [c for c in containers if not c["init"]]
    reasons: list[str] = []
    messages: list[str] = []
    for c in containers:
        for st, reason, message in ((c["state"], c["reason"], c["message"]),
                                    (c["last_state"], c["last_reason"], c["last_message"])):
            if reason and not (st == "Terminated" and reason == "Completed"):
                reasons.append(reason)
                messages.append(message)
    if tree.val("Reason"):
        reasons.append(tree.val("Reason"))
    cond = tree.get("Conditions")
    conditions = [{"type": r.get("Type", ""), "status": r.get("Status", ""), "reason": r.get("Reason", ""),
                   "message": r.get("Message", "")[:300]} for r in parse_table([c.raw for c in cond.children])
                  if r.get("Type")] if cond else []
    node = tree.val("Node").split("/")[0]
    state = ObjectState(
        namespace=namespace, kind="Pod", name=name, status=tree.val("Status"),
        ready=f"{sum(1 for c in main if c['ready'])}/{len(main)}", restarts=sum(int(c["restarts"]) for c in main),
        reasons=list(dict.fromkeys(reasons)), image=str(main[0]["image"]) if main else "",
        message="; ".join(m for m in dict.fromkeys(messages) if m)[:500] or unescape(tree.val("Message")),
        owner=workload_of_owner(tree.val("Controlled By")),
        extra={"node": None if node in ("", "<none>") else node, "labels": _labels(tree.get("Labels")),
               "started_at": _rfc2822(tree.val("Start Time")), "claims": _claims(tree),
               "containers": containers, "conditions": conditions, "qos_class": tree.val("QoS Class")},
    )
    return state, _events(tree.get("Events"), namespace, "Pod", name)


def _live_container(c: dict[str, object]) -> dict[str, object]:
    """A parsed container in the live tool's keys (:func:`actors.tools.kubernetes_describe.container_details`)."""
    return {"name": c["name"], "init": c["init"], "image": c["image"], "requests": c["requests"],
            "limits": c["limits"], "state": c["state"], "reason": c["reason"], "message": str(c["message"])[:500],
            "last_state": c["last_state"], "last_reason": c["last_reason"],
            "last_message": str(c["last_message"])[:500], "exit_code": c["exit_code"], "restarts": c["restarts"],
            "ready": c["ready"] == "True", "command": [*c["command"], *c["args"]]}


def _labels(node: Node | None) -> dict[str, str]:
    """``Labels:`` (one ``key=value`` on the key's line, the rest on the lines under it)."""
    if node is None:
        return {}
    pairs = [node.value, *(c.raw.strip() for c in node.children)]
    return dict(p.split("=", 1) for p in pairs if "=" in p)


def _rfc2822(value: str) -> str | None:
    """``Start Time: Mon, 01 Jan 2024 10:00:00 +0000`` as ISO 8601, None when absent or unreadable."""
    try:
        return parsedate_to_datetime(value).isoformat() if value else None
    except (TypeError, ValueError):
        return None


def _deployment(tree: Node, namespace: str, name: str) -> ObjectState:
    replicas = tree.val("Replicas")
    nums = {k: int(v) for v, k in re.findall(r"(\d+)\s+(\w+)", replicas)}
    cond = tree.get("Conditions")
    rows = parse_table([c.raw for c in cond.children]) if cond else []
    reasons = [r.get("Reason", "") for r in rows if r.get("Status") == "False" and r.get("Reason")]
    template = tree.get("Pod Template") or tree
    containers = _containers(template, "Containers")
    return ObjectState(
        namespace=namespace, kind="deployment", name=name,
        status="Available" if not reasons else "Unavailable",
        ready=f"{nums.get('available', 0)}/{nums.get('desired', 0)}" if nums else "", reasons=reasons,
        image=str(containers[0]["image"]) if containers else "",
        message="; ".join(f"{r['Type']}={r.get('Status', '')} ({r.get('Reason', '')})" for r in rows),
        extra={"containers": containers, "replicas": nums},
    )


def _job(tree: Node, namespace: str, name: str, events: list[K8sEvent]) -> ObjectState:
    statuses = tree.val("Pods Statuses")
    nums = {k.lower(): int(v) for v, k in re.findall(r"(\d+)\s+(Active|Succeeded|Failed)", statuses)}
    failed_events = [e.reason for e in events if e.type == "Warning" and e.reason in
                     ("BackoffLimitExceeded", "DeadlineExceeded", "Failed")]
    failed = bool(failed_events) or (nums.get("failed", 0) > 0 and nums.get("active", 0) == 0
                                      and nums.get("succeeded", 0) == 0)
    template = tree.get("Pod Template") or tree
    containers = _containers(template, "Containers")
    return ObjectState(
        namespace=namespace, kind="job", name=name, status="Failed" if failed else "Running",
        reasons=failed_events, image=str(containers[0]["image"]) if containers else "",
        message=f"Pods Statuses: {statuses}; Backoff Limit: {tree.val('Backoff Limit')}",
        extra={"pods": nums, "backoff_limit": tree.val("Backoff Limit"), "containers": containers},
    )


def _owner_from_labels(name: str, labels: str) -> str:
    pairs = dict(kv.split("=", 1) for kv in labels.split(",") if "=" in kv)
    if "job-name" in pairs:
        return f"job/{pairs['job-name']}"
    h = pairs.get("pod-template-hash")
    if h and f"-{h}-" in name:
        return f"deployment/{name.split(f'-{h}-')[0]}"
    return ""


def parse_get_table(text: str, *, kind: str, namespace: str = "") -> list[ObjectState]:
    """``kubectl get <kind> -o wide --show-labels`` → one state per row (pods and workloads)."""
    kind = kind.lower().rstrip("s")
    if kind not in ("pod", "deployment", "statefulset", "daemonset", "job", "replicaset"):
        return []
    out = []
    for row in parse_table(text.splitlines()):
        name = row.get("NAME", "")
        if not name:
            continue
        restarts = re.match(r"\d+", row.get("RESTARTS", "") or "0")
        status = row.get("STATUS", "")
        out.append(ObjectState(
            namespace=row.get("NAMESPACE", namespace), kind=kind, name=name, status=status,
            ready=row.get("READY", ""), restarts=int(restarts.group()) if restarts else 0,
            reasons=[status.split(":")[-1]] if status and status not in _BENIGN else [],
            image=row.get("IMAGES", "").split(",")[0],
            owner=_owner_from_labels(name, row.get("LABELS", "")),
            extra={"source": "listing"},
        ))
    return out


def parse_events_table(text: str, *, namespace: str = "") -> list[K8sEvent]:
    """``kubectl events`` / ``kubectl get events`` → events (``OBJECT`` is ``Kind/name``)."""
    out = []
    for row in parse_table(text.splitlines()):
        obj = row.get("OBJECT", "")
        kind, _, name = obj.partition("/")
        if not row.get("REASON"):
            continue
        out.append(K8sEvent(namespace=row.get("NAMESPACE", namespace), kind=kind.lower(), name=name,
                            type=row.get("TYPE", "Normal"), reason=row["REASON"],
                            message=unescape(row.get("MESSAGE", ""))))
    return out
