"""What a question is about: the resource a user names when they ask instead of an alert firing.

A Slack mention or a command ("what is wrong with pod X?", "why is the get-data job failing?",
"is rabbitmq healthy?") carries no alert labels, so the offline planner reads the question's text
for the resource it names (:func:`subject_of`, pure) and investigates that, as it would an alert's
subject. :func:`resolve` then pins the subject to what the cluster listing actually found (a pod
named in one namespace but running in another; a bare name that is a Job).

The grammar is generic English around Kubernetes words, never a list of known names:

* an embedded JSON object with ``name`` (and ``type``/``kind``, ``namespace``) wins;
* ``<kind> <name>`` or ``<name> <kind>`` (``job get-data``, ``the customer-orders deployment``);
* ``namespace X``, ``X namespace``, ``-n X`` give the namespace;
* otherwise the first name-like word that is not ordinary English (``redis``, ``user-profile-import``);
* the symptom words give the metric: slow/latency → ``latency``, error/fail → ``error_rate`` (the
  alert's metric only when the question names a resource).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from actors.ranking.entities import format_entity, parse_entity, same_workload
from incidentfox.evidence import Alert, EvidenceBundle

QUESTION = "question"   # ``Alert.labels["trigger"]`` of an alert that stands for a question
WORKLOADS = frozenset({"pod", "deployment", "statefulset", "daemonset", "job", "cronjob"})

# Words a user says for a Kubernetes kind; "" = a workload of unknown kind.
KIND_WORDS = {
    "pod": "pod", "pods": "pod", "deployment": "deployment", "deploy": "deployment", "job": "job",
    "cronjob": "cronjob", "statefulset": "statefulset", "daemonset": "daemonset", "service": "service",
    "svc": "service", "node": "node", "pvc": "persistentvolumeclaim", "persistentvolumeclaim": "persistentvolumeclaim",
    "replicaset": "replicaset", "workload": "", "app": "", "application": "", "container": "",
}
NAMESPACE_WORDS = frozenset({"namespace", "ns"})
PLACE_WORDS = frozenset({"cluster", "context", "region", "environment", "env"})   # "the X cluster": not a resource
# Ordinary words of a question: never a resource name on their own.
STOP = frozenset("""
a about after all am an and any anything are as at be been being but by can could check crash crashing crashed
do does doing down error errors explain fail failed failing failure figure find fine for from going happened
happening has have healthy help here high how i in investigate is issue issues it its job's latency look me
my not now of off ok on or out please problem problems properly restarting running see seem seems show slow
so some something status take tell than that the their them there these this those to unhealthy up wait was
we what what's whats when where which while who why with work working wrong you your latest today currently
broken stuck pending dead unavailable unreachable erroring flaky degraded ready again still keeps keep getting
returning throwing showing timing lately just all anymore suddenly our new old one two
""".split())  # noqa: SIM905 - a word list reads better as words than as 190 quoted strings
_LATENCY = re.compile(r"(?i)\b(slow\w*|latenc\w*|taking (?:too )?long|timeouts?|p9\d|response time)\b")
_ERRORS = re.compile(r"(?i)\b(errors?|fail\w*|crash\w*|5xx|exceptions?|down)\b")
_TOKEN = re.compile(r"[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?|-n\b")
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_JSON = re.compile(r"\{[^{}]*\}")
_CONTRACTION = re.compile(r"['’][a-z]+\b")
_SPELLED = re.compile(r"[-.\d]")   # hyphen, dot or digit: how resource names are spelled, unlike English
LEADS = frozenset({"with", "is", "are", "about", "does", "did", "why"})
_MARKUP = re.compile(r"<[^<>]*>")   # Slack's <@U123>, <#C1|name>, <http://…|text>


@dataclass(frozen=True)
class Subject:
    """The resource a question names; any part may be empty (a namespace-wide question has no name)."""

    namespace: str = ""
    kind: str = ""
    name: str = ""
    metric: str = ""

    def entity(self) -> str:
        """``ns/kind/name`` when the kind is known, else the bare name (matches any kind and namespace)."""
        if not self.name:
            return ""
        return f"{self.namespace}/{self.kind}/{self.name}" if self.kind and self.namespace else \
            f"{self.kind}/{self.name}" if self.kind else self.name


def _name_like(word: str) -> bool:
    w = word.lower()
    return bool(_NAME.match(w)) and w not in STOP and w not in KIND_WORDS and w not in NAMESPACE_WORDS \
        and w not in PLACE_WORDS and not w.isdigit()


def _from_json(text: str) -> Subject | None:
    for m in _JSON.finditer(text):
        try:
            doc = json.loads(m.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("name"), str) and doc["name"]:
            kind = str(doc.get("type") or doc.get("kind") or "").lower()
            return Subject(str(doc.get("namespace") or ""), KIND_WORDS.get(kind, kind), doc["name"])
    return None


def _metric(text: str) -> str:
    return "latency" if _LATENCY.search(text) else "error_rate" if _ERRORS.search(text) else ""


def subject_of(text: str) -> Subject:
    """The resource ``text`` asks about (pure; an empty :class:`Subject` when it names none)."""
    text = text or ""
    found = _from_json(text)
    text = _CONTRACTION.sub("", _MARKUP.sub(" ", text))
    metric = _metric(text)
    if found is not None:
        return Subject(found.namespace, found.kind, found.name, metric)
    words = _TOKEN.findall(text)
    low = [w.lower() for w in words]
    used: set[int] = set()
    namespace = ""
    for i, w in enumerate(low):
        if w not in NAMESPACE_WORDS and w != "-n":
            continue
        for j in (i + 1, i - 1):   # "namespace X", else "X namespace"
            if 0 <= j < len(words) and _name_like(words[j]):
                namespace = words[j]
                used.update({i, j})
                break
        if namespace:
            break
    for i, w in enumerate(low):   # "the X cluster": a place, not the subject
        if w in PLACE_WORDS and i > 0:
            used.add(i - 1)
    kind, name = "", ""
    for i, w in enumerate(low):
        if w not in KIND_WORDS or i in used:
            continue
        after = next((j for j in range(i + 1, min(i + 3, len(words))) if low[j] not in ("the", "a", "an")), None)
        if after is not None and after not in used and _name_like(words[after]):
            kind, name = KIND_WORDS[w], words[after]
            break
        if i > 0 and i - 1 not in used and _name_like(words[i - 1]):
            kind, name = KIND_WORDS[w], words[i - 1]
            break
    if not name:   # a bare word counts when it looks like a resource name or follows "with", "is"…
        name = next((w for i, w in enumerate(words) if i not in used and _name_like(w)
                     and (_SPELLED.search(w) or (i > 0 and low[i - 1] in LEADS))), "")
    return Subject(namespace, kind, name, metric)


def question_alert(text: str, *, title: str = "") -> Alert:
    """The alert a question stands for: its subject as the entity, its symptom as the metric."""
    s = subject_of(text)
    labels = {"trigger": QUESTION, **{k: v for k, v in (("namespace", s.namespace), ("kind", s.kind)) if v}}
    # A symptom without a subject stays text: an alert metric with no entity would narrow the
    # ranking's metric family for a question that named nothing to measure it on.
    return Alert(title=(title or text).strip()[:300], entity=s.entity(), metric=s.metric if s.entity() else "",
                 labels=labels, text=text[:4000])


def _entities(bundle: EvidenceBundle) -> set[str]:
    out = {format_entity(o.namespace, o.kind, o.name) for o in (*bundle.objects, *bundle.events) if o.name}
    out |= {x.entity for x in (*bundle.logs, *bundle.metrics, *bundle.spans) if x.entity}
    return out


def resolve(bundle: EvidenceBundle) -> EvidenceBundle:
    """Pin a question's subject (an alert labelled ``trigger: question``) to the object the evidence
    shows: the same name in another namespace when the named namespace holds none, and the
    object's kind when the question gave none. Anything else is returned unchanged."""
    a = bundle.alert
    if a.labels.get("trigger") != QUESTION or not a.entity:
        return bundle
    ref = parse_entity(a.entity)
    namespace = ref.namespace or a.labels.get("namespace", "")
    anywhere = format_entity("", ref.kind, ref.name)   # the namespace may be wrong: look in every one
    if not any(same_workload(e, anywhere) for e in _entities(bundle)):
        # The question names nothing the tools found: investigate without a subject rather than
        # judge every finding unrelated to a name that may not be a resource at all.
        labels = {k: v for k, v in a.labels.items() if k not in ("kind",)}
        return bundle.model_copy(update={"alert": a.model_copy(update={"entity": "", "metric": "", "labels": labels})})
    same = sorted((o for o in bundle.objects if o.name == ref.name and (not ref.kind or o.kind.lower() == ref.kind)),
                  key=lambda o: (o.namespace != namespace, o.kind.lower() not in WORKLOADS, o.namespace, o.kind))
    if not same:
        return bundle
    pick = same[0]
    entity = format_entity(pick.namespace, pick.kind, pick.name)
    labels = {**a.labels, "namespace": pick.namespace} if pick.namespace else a.labels
    return bundle.model_copy(update={"alert": a.model_copy(update={"entity": entity, "labels": labels})})
