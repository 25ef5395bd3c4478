"""A local HTTP server speaking the part of the Kubernetes API the dedicated-mode provisioner uses.

The real ``kubernetes`` client is pointed at it with ``Configuration(host=...)``. It implements GET
and PATCH (JSON patch and merge patch) of one RayService with the API server's optimistic
concurrency: a patch whose result carries a resourceVersion other than the current one is answered
409; and CoreV1 ServiceAccounts (create, 409 when present, read). ``fail_patch`` answers a PATCH
with the status it returns (None: handled normally), as an API server refusing one write would.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cluster.groups import worker_groups
from cluster.kustomize import KustomizeError, apply_json_patch, merge_patch

NS, NAME = "incidentfox", "incidentfox"
PATH = f"/apis/ray.io/v1/namespaces/{NS}/rayservices/{NAME}"
SA_PATH = f"/api/v1/namespaces/{NS}/serviceaccounts"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FakeApiServer:
    """One RayService behind the CustomObjects endpoints, with a request log and race hooks."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = copy.deepcopy(obj)
        self.obj["metadata"]["resourceVersion"] = "100"
        self.requests: list[dict[str, Any]] = []
        self.service_accounts: dict[str, dict[str, Any]] = {}
        self.account_requests: list[tuple[str, str]] = []   # kept apart from the RayService's log
        self.groups_when_account_created: list[list[str]] = []
        # Each hook runs once, just before the next PATCH is handled: another writer getting in first.
        self.before_patch: list[Callable[[dict[str, Any]], dict[str, Any]]] = []
        # When set, runs before every PATCH: a writer that always gets in first.
        self.race_every_patch: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        # When set, a PATCH whose body makes it return a status is refused with that status.
        self.fail_patch: Callable[[list[dict[str, Any]]], int | None] | None = None
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.account_requests.append(("POST", self.path.split("?")[0]))
                if self.path.split("?")[0] != SA_PATH:
                    return self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                name = body["metadata"]["name"]
                with server.lock:
                    if name in server.service_accounts:
                        return self._send(409, {"kind": "Status", "code": 409, "reason": "AlreadyExists"})
                    server.service_accounts[name] = body
                    server.groups_when_account_created.append(
                        [g["groupName"] for g in worker_groups(server.obj)])
                self._send(201, body)

            def do_GET(self) -> None:
                if self.path.startswith(SA_PATH + "/"):
                    server.account_requests.append(("GET", self.path.split("?")[0]))
                    sa = server.service_accounts.get(self.path.split("?")[0].removeprefix(SA_PATH + "/"))
                    return self._send(200, sa) if sa else self._send(404, {"kind": "Status", "code": 404})
                server.requests.append({"method": "GET", "path": self.path})
                if self.path.split("?")[0] != PATH:
                    return self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})
                with server.lock:
                    self._send(200, server.obj)

            def do_PATCH(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                ctype = self.headers["Content-Type"]
                server.requests.append({"method": "PATCH", "path": self.path,
                                        "content_type": ctype, "body": body})
                refused = server.fail_patch(body) if server.fail_patch is not None else None
                if refused is not None:
                    return self._send(refused, {"kind": "Status", "code": refused, "reason": "Refused",
                                                "message": "refused by the test"})
                with server.lock:
                    hooks, server.before_patch = server.before_patch, []
                    if server.race_every_patch is not None:
                        hooks.append(server.race_every_patch)
                    for hook in hooks:
                        server._write(hook(copy.deepcopy(server.obj)))
                    status, out = server._patch(ctype, body)
                self._send(status, out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                       daemon=True)

    def _write(self, new: dict[str, Any]) -> None:
        new["metadata"]["resourceVersion"] = str(int(self.obj["metadata"]["resourceVersion"]) + 1)
        self.obj = new

    def _patch(self, ctype: str, body: Any) -> tuple[int, dict[str, Any]]:
        try:
            if ctype == "application/json-patch+json":
                new = apply_json_patch(self.obj, body)
            elif ctype == "application/merge-patch+json":
                new = merge_patch(self.obj, body)
            else:
                return 415, {"kind": "Status", "code": 415}
        except KustomizeError as exc:
            return 422, {"kind": "Status", "code": 422, "message": str(exc)}
        if new["metadata"].get("resourceVersion") != self.obj["metadata"]["resourceVersion"]:
            return 409, {"kind": "Status", "code": 409, "reason": "Conflict",
                         "message": "the object has been modified"}
        self._write(new)
        return 200, self.obj

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def methods(self) -> list[str]:
        return [r["method"] for r in self.requests]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

