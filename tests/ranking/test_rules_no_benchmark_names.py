"""No ranking or follow-up rule keys on a benchmark's names.

The names come from the benchmarks in ``../shared/benchmarks``, read in place (skipped when absent):
the HolmesGPT labels' culprits (name, workload, namespace), their identifier-like phrases and the
backticked terms of each case's expected output; the Nezha services; the PetShop nodes. Every string
literal and identifier in the rule modules' code (docstrings and comments are prose and are not
scanned) must be free of them, except the few in :data:`ALLOWED`, each a generic term with a reason.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from actors.ranking.entities import workload_key

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "benchmarks"
RULE_MODULES = [*sorted((ROOT / "actors" / "ranking").glob("*.py")),
                ROOT / "actors" / "engine" / "followups.py", ROOT / "actors" / "engine" / "offline_planner.py",
                ROOT / "actors" / "tools" / "playbooks.py"]
LABELS = [ROOT / "tests" / "data" / "holmesgpt_labels.json", SHARED / "holmesgpt-ask" / "labels.json"]
# Terms a benchmark uses that are not its own names; each is generic, and why.
ALLOWED = {
    "default": "Kubernetes' default namespace",
    "crashloopbackoff": "a Kubernetes container waiting reason",
    "wget": "a standard executable (k8s_state.COMMON_EXECUTABLES)",
    "watchdog": "kube-prometheus' standard heartbeat alert, a narrow rule listed in docs/engine.md",
    "redis": "a technology named by dependency wording, not a service",
}
_REGEX_ESCAPES = re.compile(r"\\[bBsSdDwW]")   # so r"\bname\b" in a pattern still reads as name
_IDENTIFIER_LIKE = re.compile(r"^[^\s]*[-:/._\d][^\s]*$")


def _holmes_terms() -> set[str]:
    terms: set[str] = set()
    for path in LABELS:
        if not path.exists():
            continue
        for case in json.loads(path.read_text())["cases"].values():
            if case.get("culprit"):
                ns, _, name = case["culprit"].split("/", 2)
                terms |= {ns, name, workload_key(case["culprit"]).rsplit("/", 1)[-1]}
            terms |= {p for p in case.get("phrases", []) if _IDENTIFIER_LIKE.match(p)}
            for line in case.get("expected_output", []):
                terms |= {t for t in re.findall(r"`([^`\s]+)`", line)}
    for yaml in SHARED.glob("holmesgpt-*/*/test_case.yaml"):
        terms |= set(re.findall(r"`([^`\s]+)`", yaml.read_text()))
    return terms


def _nezha_terms() -> set[str]:
    nezha = SHARED / "nezha"
    terms = {p.stem for p in (nezha / "metric_threshold").glob("*.csv")}
    causes = nezha / "construct_data" / "root_cause_hipster.json"
    if causes.exists():
        terms |= set(json.loads(causes.read_text()))
    return terms


def _petshop_terms() -> set[str]:
    terms: set[str] = set()
    for target in (SHARED / "petshop" / "dataset").glob("*/*/*/target.json"):
        doc = json.loads(target.read_text())
        for node in (doc.get("target", {}).get("node"), doc.get("root_cause", {}).get("node")):
            if node:
                terms |= {node, node.split("_AWS::")[0]}
    return terms


def benchmark_terms() -> set[str]:
    terms = _holmes_terms() | _nezha_terms() | _petshop_terms()
    return {t for t in terms if len(t) >= 3 and t.lower() not in ALLOWED}


def code_strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal and identifier of the module's code, docstrings excluded."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.Name):
            out.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute):
            out.append((node.lineno, node.attr))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.append((node.lineno, node.name))
    return out


def offending(terms: set[str], modules: list[Path]) -> list[str]:
    """``path:line: 'term'`` for every benchmark term found in a module's code."""
    patterns = [(t, re.compile(rf"(?i)(?<![\w-]){re.escape(t)}(?![\w-])")) for t in sorted(terms)]
    return [f"{path.name}:{line}: {t!r}" for path in modules for line, text in code_strings(path)
            for t, p in patterns if p.search(_REGEX_ESCAPES.sub(" ", text))]


def test_the_scanner_finds_a_planted_name_in_code_not_in_docstrings(tmp_path: Path) -> None:
    planted = tmp_path / "rule.py"
    planted.write_text('"""Docstrings may mention checkout-svc."""\nRULE = {"checkout-svc": 1}\n'
                       'OK = "checkout-svcs"\nP = r"\\bprod_db\\b"\ndef f():\n    """checkout-svc"""\n    return prod_db\n')
    assert sorted(offending({"checkout-svc", "prod_db"}, [planted])) == ["rule.py:2: 'checkout-svc'", "rule.py:4: 'prod_db'",
                                                                  "rule.py:7: 'prod_db'"]


def test_no_rule_module_names_a_benchmark_service_pod_namespace_or_label_phrase() -> None:
    if not SHARED.exists():
        pytest.skip("../shared/benchmarks is absent")
    terms = benchmark_terms()
    assert {"prod-db:3333", "java-api-checker", "wge", "PetSite", "checkoutservice"} <= terms
    assert offending(terms, RULE_MODULES) == []
