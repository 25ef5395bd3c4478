"""The call graph, merged from every source that knows who calls whom.

Sources (each converted by a pure function here, so any tool can use them):

* **traces**: a child span whose service differs from its parent span's is one call
  parent service → child service (:func:`edges_from_spans`; spans as :class:`Span`, or the
  bundle's :class:`~incidentfox.evidence.TraceSpan`);
* **service-graph metrics**: one series per client/server pair, e.g. Tempo's
  ``traces_service_graph_request_total{client=, server=}`` or Istio's
  ``istio_requests_total{source_workload=, destination_workload=}`` (:func:`edges_from_service_graph`);
* **Kubernetes**: services → endpoints → pods → owners (``Service`` objects whose ``extra`` carries
  ``workloads`` and ``pods``, as ``kubernetes_list_services`` returns them). They are not calls; they
  say which names are one workload, so edges from different sources join on the same node.

:class:`CallGraph` merges edges on resolved names: one edge per caller → callee, its ``calls`` and
``errors`` summed over the sources that counted them and its ``sources`` listing each (provenance).
A group of names that are one workload is named after the name the metrics use, else the name the
most edge sources use, else the workload, else the first alphabetically. Self-calls are dropped;
cycles are kept (the ranker walks them with a visited set).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from actors.ranking.entities import parse_entity, workload_of_owner
from incidentfox.evidence import EvidenceBundle, ObjectState, TopologyEdge, TraceSpan

TRACES = "traces"
SERVICE_GRAPH = "service_graph"
_ERROR_VALUES = frozenset({"true", "error", "2"})   # OTel status code 2 = ERROR


@dataclass(frozen=True)
class Span:
    """The part of a span the call graph needs (any trace backend's span converts to this)."""

    span_id: str
    parent_id: str
    service: str
    error: bool = False


def _span_of(span: Span | TraceSpan) -> Span:
    if isinstance(span, Span):
        return span
    attrs = {k.lower(): str(v).lower() for k, v in span.attributes.items()}
    error = any(attrs.get(k) in _ERROR_VALUES for k in ("error", "otel.status_code", "status.code", "status"))
    return Span(span_id=span.span_id, parent_id=span.parent_id, service=span.entity, error=error)


def edges_from_spans(spans: Iterable[Span | TraceSpan], *, source: str = TRACES) -> list[TopologyEdge]:
    """Calls between services: parent span's service → child span's service where they differ,
    counted per pair (``errors``: child spans marked failed). Orphans (parent not in the list) and
    spans without a service are skipped. Span ids are assumed unique within the list (ids of
    different traces rarely collide; a caller that mixes traces should pass one trace at a time or
    prefix ids with the trace id)."""
    items = [_span_of(s) for s in spans]
    by_id = {s.span_id: s for s in items if s.span_id}
    counts: dict[tuple[str, str], list[float]] = {}
    for child in items:
        parent = by_id.get(child.parent_id) if child.parent_id else None
        if parent is None or not parent.service or not child.service or parent.service == child.service:
            continue
        c = counts.setdefault((parent.service, child.service), [0.0, 0.0])
        c[0] += 1
        c[1] += 1 if child.error else 0
    return [TopologyEdge(caller=a, callee=b, calls=n, errors=e, sources=[source])
            for (a, b), (n, e) in sorted(counts.items())]


def edges_from_service_graph(rows: Iterable[tuple[Mapping[str, str], float]], *, client_label: str,
                             server_label: str, source: str = SERVICE_GRAPH,
                             ignore: frozenset[str] = frozenset({"", "unknown"})) -> list[TopologyEdge]:
    """Service-graph series (``(labels, value)`` rows) → edges client → server with the value as
    ``calls``. Rows missing either label, naming ``unknown`` (Istio's unidentified peer) or
    calling themselves are skipped; repeated pairs are summed."""
    counts: dict[tuple[str, str], float] = {}
    for labels, value in rows:
        a, b = str(labels.get(client_label, "")), str(labels.get(server_label, ""))
        if a in ignore or b in ignore or a == b:
            continue
        counts[(a, b)] = counts.get((a, b), 0.0) + max(0.0, float(value))
    return [TopologyEdge(caller=a, callee=b, calls=n, sources=[source]) for (a, b), n in sorted(counts.items())]


def _bare(name: str) -> str:
    return parse_entity(name).name


class _Names:
    """Union-find over names that denote one workload."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, name: str) -> str:
        self.parent.setdefault(name, name)
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name in list(self.parent):
            out.setdefault(self.find(name), []).append(name)
        return out


def workload_names(objects: Iterable[ObjectState]) -> list[tuple[str, str]]:
    """Pairs of names that are one workload, from Kubernetes objects: a Service and the workloads
    its endpoints' pods belong to (``extra["workloads"]``: ``deployment/cart``…)."""
    pairs = []
    for o in objects:
        if o.kind.lower() != "service":
            continue
        for owner in o.extra.get("workloads") or ():
            workload = workload_of_owner(str(owner)) or str(owner)
            pairs.append((o.name, _bare(workload)))
    return pairs


@dataclass
class CallGraph:
    """Merged call-graph edges on resolved names (see the module docstring)."""

    edges: dict[tuple[str, str], TopologyEdge] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)    # any known name → its node's name

    def resolve(self, name: str) -> str:
        return self.aliases.get(name) or self.aliases.get(_bare(name)) or name

    def callees(self, name: str) -> list[str]:
        node = self.resolve(name)
        return sorted(b for a, b in self.edges if a == node)

    def to_edges(self) -> list[TopologyEdge]:
        return [self.edges[k] for k in sorted(self.edges)]

    @classmethod
    def build(cls, edges: Iterable[TopologyEdge] = (), *, spans: Iterable[Span | TraceSpan] = (),
              objects: Iterable[ObjectState] = (), known: Iterable[str] = ()) -> CallGraph:
        """Merge ``edges`` with the calls ``spans`` show, joining names through ``objects``
        (Kubernetes services and their workloads); ``known`` are the names metrics use, preferred
        as node names."""
        raw = [*edges, *edges_from_spans(spans)]
        names = _Names()
        workloads: set[str] = set()
        for a, b in workload_names(objects):
            names.union(a, b)
            workloads.add(b)
        used: dict[str, set[str]] = {}
        for e in raw:
            for end in (e.caller, e.callee):
                for src in e.sources or ["unknown"]:
                    used.setdefault(end, set()).add(src)
                if end != _bare(end):          # ns/deployment/cart and cart are one node
                    names.union(end, _bare(end))
                names.find(end)
        known_set = set(known)
        aliases: dict[str, str] = {}
        for members in names.groups().values():
            best = min(members, key=lambda n: (n not in known_set, -len(used.get(n, ())), n not in workloads,
                                              n != _bare(n), n))
            aliases.update(dict.fromkeys(members, best))
        graph = cls(aliases=aliases)
        for e in raw:
            graph._add(e)
        return graph

    def _add(self, e: TopologyEdge) -> None:
        a, b = self.resolve(e.caller), self.resolve(e.callee)
        if a == b:
            return
        have = self.edges.get((a, b))
        if have is None:
            self.edges[(a, b)] = TopologyEdge(caller=a, callee=b, calls=e.calls, errors=e.errors,
                                              sources=list(dict.fromkeys(e.sources)))
            return
        have.calls += e.calls
        have.errors += e.errors
        have.sources = list(dict.fromkeys([*have.sources, *e.sources]))


def call_graph(bundle: EvidenceBundle) -> CallGraph:
    """The bundle's merged call graph: its topology edges, its spans' calls (unless a tool already
    turned spans into ``traces`` edges), its Kubernetes services."""
    known = {m.entity for m in bundle.metrics}
    has_trace_edges = any(TRACES in e.sources for e in bundle.topology)
    return CallGraph.build(bundle.topology, spans=() if has_trace_edges else bundle.spans,
                           objects=bundle.objects, known=known)


def with_call_graph(bundle: EvidenceBundle) -> EvidenceBundle:
    """``bundle`` with its topology replaced by the merged call graph (edges from spans added,
    duplicates merged, names resolved; an alert naming an alias of a node names the node).
    Applying it twice changes nothing more."""
    graph = call_graph(bundle)
    update: dict[str, object] = {"topology": graph.to_edges()}
    entity = bundle.alert.entity
    if entity and graph.edges and entity in graph.aliases and graph.resolve(entity) != entity:
        update["alert"] = bundle.alert.model_copy(update={"entity": graph.resolve(entity)})
    return bundle.model_copy(update=update)
