"""Secrets out of logs (issue 12): every process that handles tenant data installs the redacting
logging, and a secret logged inside a Ray actor does not reach its log output.

The inventory is read from the source (AST), so a new ``@ray.remote`` actor or task, a new
``ray.remote(Core)`` actor, or a new Serve deployment that forgets
:func:`incidentfox.logs.configure_process_logging` fails here.
"""

from __future__ import annotations

import ast
import io
import logging
import os
from pathlib import Path

import pytest

from incidentfox import logs

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("actors", "serve_apps", "config_service", "incidentfox", "cluster", "cli", "evaluation")
# No tenant data: placement probes inside the local cluster simulator, and the offline evaluation
# harness's batches (benchmark fixtures, run by an operator).
EXEMPT = {("cluster/localsim.py", "Where"), ("cluster/localsim.py", "where"), ("evaluation/harness.py", "task")}
# The scanner must find at least these: a scanner that finds nothing would pass vacuously.
EXPECTED = {"InvestigationActor", "InvestigationPool", "SubAgentWorker", "ToolExecutor", "SchedulerActor",
            "run_scheduled_job", "SandboxHost", "SandboxManager", "Gateway", "Router", "AgentAPI", "SandboxAPI",
            "ReportsAPI", "_config_asgi_app", "_tools_asgi_app"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return _dotted(node.func)
    return ""


def _calls(node: ast.AST, name: str) -> bool:
    return any(isinstance(n, ast.Call) and _dotted(n.func).split(".")[-1] == name for n in ast.walk(node))


def _is(decorator: ast.AST, *names: str) -> bool:
    return _dotted(decorator) in names


def inventory() -> dict[str, tuple[str, bool]]:
    """``{name: (file, configures redacting logging)}`` for every actor, task and deployment."""
    found: dict[str, tuple[str, bool]] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            tree = ast.parse(path.read_text())
            functions = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and any(_is(d, "ray.remote", "serve.deployment")
                                                          for d in node.decorator_list):
                    init = next((b for b in node.body if isinstance(b, ast.FunctionDef | ast.AsyncFunctionDef)
                                 and b.name == "__init__"), None)
                    found[node.name] = (rel, init is not None and _calls(init, "configure_process_logging"))
                elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                        _is(d, "ray.remote") for d in node.decorator_list):
                    found[node.name] = (rel, _calls(node, "configure_process_logging"))
                elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                        and isinstance(node.value.func, ast.Call) and _is(node.value.func, "ray.remote"):
                    # X = ray.remote(...)(with_process_logging(Core))
                    arg = node.value.args[0] if node.value.args else None
                    ok = isinstance(arg, ast.Call) and _dotted(arg.func).endswith("with_process_logging")
                    found[node.targets[0].id] = (rel, ok)
                elif isinstance(node, ast.Call) and _is(node.func, "serve.deployment") and node.args:
                    # serve.deployment(serve.ingress(builder_fn)(), ...): the builder runs in the replica
                    inner = node.args[0]
                    if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Call) \
                            and _is(inner.func, "serve.ingress") and inner.func.args:
                        fn = inner.func.args[0]
                        name = fn.id if isinstance(fn, ast.Name) else _dotted(fn)
                        body = functions.get(name)
                        found[name] = (rel, body is not None and _calls(body, "configure_process_logging"))
    return found


def test_every_actor_task_and_serve_deployment_configures_redacting_logging():
    found = inventory()
    assert EXPECTED <= set(found), f"scanner missed: {sorted(EXPECTED - set(found))}"
    missing = sorted(f"{rel}:{name}" for name, (rel, ok) in found.items()
                     if not ok and (rel, name) not in EXEMPT)
    assert missing == [], "call incidentfox.logs.configure_process_logging() in these: " + ", ".join(missing)


SECRET = "xoxb-1234567890-abcdefghijklmnop"
CUSTOM = "tenant-kubeconfig-token-Zq8wX1"


def _probe_class() -> type:
    """Defined in a function so Ray pickles it by value (the worker cannot import this test module)."""

    class LoggingProbe:
        """Logs tenant secrets the way careless tool code would, through a logger with a foreign
        handler (as Ray and Serve install) and through ours; returns what each wrote."""

        def __init__(self) -> None:
            self.log = logging.getLogger("tenant.tool")

        def leak(self) -> dict[str, str]:
            logs.register_secret(CUSTOM)
            foreign = io.StringIO()
            handler = logging.StreamHandler(foreign)   # no filter: like Ray's / Serve's own handlers
            self.log.addHandler(handler)
            ours = next(h for h in logging.getLogger().handlers if getattr(h, "_incidentfox", False))
            mine = io.StringIO()
            previous = ours.setStream(mine)
            try:
                self.log.warning("calling slack with token=%s", SECRET)
                self.log.warning("kubeconfig bearer %s", CUSTOM)
                try:
                    raise RuntimeError(f"auth failed for {SECRET}")
                except RuntimeError:
                    self.log.exception("tool failed")
                # The worker's real stderr (a file under the Ray session's logs directory).
                logging.getLogger("tenant.stderr").warning("Authorization: Bearer %s", SECRET)
            finally:
                ours.setStream(previous)
                self.log.removeHandler(handler)
            for stream in (previous,):
                stream.flush()
            return {"foreign": foreign.getvalue(), "ours": mine.getvalue(), "installed": logs.redacting_logging_installed(),
                    "stderr_path": os.readlink("/proc/self/fd/2")}

        def stderr_log(self) -> str:
            logging.getLogger("tenant.stderr").warning("Authorization: Bearer %s", SECRET)
            for h in logging.getLogger().handlers:
                h.flush()
            return Path(os.readlink("/proc/self/fd/2")).read_text(errors="replace")

    return LoggingProbe


@pytest.mark.ray
def test_a_secret_logged_in_a_ray_actor_does_not_reach_the_logs(ray_session):
    import ray

    actor = ray.remote(num_cpus=0)(logs.with_process_logging(_probe_class())).remote()
    out = ray.get(actor.leak.remote(), timeout=120)
    assert out["installed"] is True
    for name in ("foreign", "ours"):
        text = out[name]
        assert "calling slack" in text and "tool failed" in text, name
        assert SECRET not in text and CUSTOM not in text, name
        assert "***" in text
    if Path(out["stderr_path"]).is_file():
        stderr = ray.get(actor.stderr_log.remote(), timeout=60)
        assert "tenant.stderr" in stderr and "***" in stderr and SECRET not in stderr
    ray.kill(actor)


def test_with_process_logging_leaves_the_core_class_alone():
    class Core:
        def __init__(self, x: int) -> None:
            self.x = x

    wrapped = logs.with_process_logging(Core)
    assert wrapped is not Core and issubclass(wrapped, Core) and wrapped.__name__ == "Core"
    assert Core.__init__ is not wrapped.__init__
