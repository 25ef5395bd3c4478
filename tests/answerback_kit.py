"""Local servers that speak the part of each API answering back uses, on one FakeHTTP each.

State is kept as the real service would (comments, check runs, notes, updates), so a retried or
repeated answer is visible as a second object. ``fault(method, path, status, headers, commit=)``
scripts one failing answer: with ``commit=True`` the write is stored and the answer still fails (a
5xx after the server acted: the lost-response case).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from incidentfox.contracts import Trigger
from incidentfox.runs import store
from tests.tools_fakes import FakeHTTP

_ids = itertools.count(1000)


async def new_run(sessions: Any, trigger: Trigger) -> str:
    """A queued run of team acme/payments started by ``trigger``."""
    async with sessions() as s:
        run = await store.create_run(s, org_id="acme", team_id="payments", trigger=trigger)
        await s.commit()
        return run.id


def rsa_pem() -> tuple[str, Any]:
    """A fresh RSA private key as PEM, and its public key (to check the App's JWT)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return pem, key.public_key()


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    commit: bool = False


@dataclass
class FakeAPI:
    http: FakeHTTP
    faults: dict[tuple[str, str], list[Fault]] = field(default_factory=dict)

    def fault(self, method: str, path: str, status: int, headers: dict[str, str] | None = None, *,
              commit: bool = False, times: int = 1) -> None:
        self.faults.setdefault((method, path), []).extend(
            Fault(status, headers or {}, commit) for _ in range(times))

    def _fault(self, request: web.Request) -> Fault | None:
        queue = self.faults.get((request.method, request.path))
        return queue.pop(0) if queue else None

    def route(self, method: str, path: str, handler: Any) -> None:
        async def wrapped(request: web.Request) -> web.Response:
            fault = self._fault(request)
            if fault is not None and not fault.commit:
                return web.json_response({"message": "scripted fault"}, status=fault.status, headers=fault.headers)
            status, body = await handler(request)
            if fault is not None:
                return web.json_response({"message": "scripted fault after commit"}, status=fault.status,
                                         headers=fault.headers)
            return web.json_response(body, status=status)
        self.http.route(method, path, wrapped)


class FakeGitHub(FakeAPI):
    """App token exchange, issue comments and check runs for one repo and installation."""

    def __init__(self, http: FakeHTTP, *, public_key: Any, app_id: str, installation_id: int, repo: str) -> None:
        super().__init__(http)
        self.public_key, self.app_id, self.repo = public_key, app_id, repo
        self.installation_id = installation_id
        self.jwt_claims: list[dict[str, Any]] = []
        self.tokens: list[str] = []
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.check_runs: list[dict[str, Any]] = []
        self.route("POST", f"/app/installations/{installation_id}/access_tokens", self._token)

    def _authorised(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "").removeprefix("Bearer ") in self.tokens

    async def _token(self, request: web.Request) -> tuple[int, Any]:
        raw = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(raw, self.public_key, algorithms=["RS256"], issuer=self.app_id)
        except jwt.PyJWTError as exc:
            return 401, {"message": f"bad JWT: {type(exc).__name__}"}
        self.jwt_claims.append(claims)
        token = f"ghs_installation{len(self.tokens)}"
        self.tokens.append(token)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return 201, {"token": token, "expires_at": expires}

    def issue(self, number: int) -> None:
        path = f"/repos/{self.repo}/issues/{number}/comments"

        async def post(request: web.Request) -> tuple[int, Any]:
            if not self._authorised(request):
                return 401, {"message": "Bad credentials"}
            comment = {"id": next(_ids), "body": (await request.json())["body"]}
            self.comments.setdefault(number, []).append(comment)
            return 201, comment

        async def get(request: web.Request) -> tuple[int, Any]:
            if not self._authorised(request):
                return 401, {"message": "Bad credentials"}
            return 200, self.comments.get(number, [])

        self.route("POST", path, post)
        self.route("GET", path, get)

    def commit(self, sha: str) -> None:
        async def post(request: web.Request) -> tuple[int, Any]:
            if not self._authorised(request):
                return 401, {"message": "Bad credentials"}
            run = {"id": next(_ids), **(await request.json())}
            self.check_runs.append(run)
            return 201, run

        async def get(request: web.Request) -> tuple[int, Any]:
            if not self._authorised(request):
                return 401, {"message": "Bad credentials"}
            name = request.query.get("check_name")
            runs = [r for r in self.check_runs if r["head_sha"] == sha and (name is None or r["name"] == name)]
            return 200, {"total_count": len(runs), "check_runs": runs}

        self.route("POST", f"/repos/{self.repo}/check-runs", post)
        self.route("GET", f"/repos/{self.repo}/commits/{sha}/check-runs", get)


def _sha(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class FakeGitRepo:
    """The Git Data, commits, compare and pulls endpoints over an in-memory history for the revert
    tool (``github_open_revert_pr``). Trees are ``{path: (mode, blob sha)}``; ``contents`` of a
    commit are ``{path: text}`` (None: deleted)."""

    def __init__(self, gh: FakeGitHub, *, branch: str = "main") -> None:
        self.gh, self.branch, self.r = gh, branch, f"/repos/{gh.repo}"
        self.trees: dict[str, dict[str, tuple[str, str]]] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        self.pulls: list[dict[str, Any]] = []
        self.writes: list[tuple[str, str]] = []
        gh.route("GET", self.r, self._auth(lambda req: (200, {"full_name": gh.repo, "default_branch": branch})))
        gh.route("GET", f"{self.r}/installation", self._installation)
        gh.route("GET", f"{self.r}/git/ref/heads/{branch}", self._auth(
            lambda req: (200, {"ref": f"refs/heads/{branch}", "object": {"sha": self.refs[branch], "type": "commit"}})))
        gh.route("POST", f"{self.r}/git/trees", self._auth_async(self._post_tree))
        gh.route("POST", f"{self.r}/git/commits", self._auth_async(self._post_commit))
        gh.route("POST", f"{self.r}/git/refs", self._auth_async(self._post_ref))
        gh.route("POST", f"{self.r}/pulls", self._auth_async(self._post_pull))

    # -- plumbing
    def _auth(self, fn: Any) -> Any:
        async def handler(request: web.Request) -> tuple[int, Any]:
            return fn(request) if self.gh._authorised(request) else (401, {"message": "Bad credentials"})
        return handler

    def _auth_async(self, fn: Any) -> Any:
        async def handler(request: web.Request) -> tuple[int, Any]:
            if not self.gh._authorised(request):
                return 401, {"message": "Bad credentials"}
            self.writes.append((request.method, request.path))
            return await fn(await request.json())
        return handler

    async def _installation(self, request: web.Request) -> tuple[int, Any]:
        raw = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            jwt.decode(raw, self.gh.public_key, algorithms=["RS256"], issuer=self.gh.app_id)
        except jwt.PyJWTError:
            return 401, {"message": "bad JWT"}
        return 200, {"id": self.gh.installation_id}

    def _tree(self, entries: dict[str, tuple[str, str]]) -> str:
        sha = _sha("tree", sorted(entries.items()))
        if sha not in self.trees:
            self.trees[sha] = dict(entries)
            self.gh.route("GET", f"{self.r}/git/trees/{sha}", self._auth(lambda req: (200, {
                "sha": sha, "truncated": False,
                "tree": [{"path": p, "mode": m, "type": "blob", "sha": b} for p, (m, b) in sorted(entries.items())]})))
        return sha

    def _store(self, sha: str, *, tree: str, parents: list[str], message: str) -> None:
        self.commits[sha] = {"sha": sha, "tree": tree, "parents": parents, "message": message}
        self.gh.route("GET", f"{self.r}/git/commits/{sha}", self._auth(lambda req: (200, {
            "sha": sha, "tree": {"sha": tree}, "parents": [{"sha": p} for p in parents], "message": message})))

    def files_of(self, a: str | None, b: str) -> list[dict[str, Any]]:
        before = self.trees[self.commits[a]["tree"]] if a else {}
        after = self.trees[self.commits[b]["tree"]]
        out = []
        for path in sorted(set(before) | set(after)):
            if before.get(path) != after.get(path):
                status = "added" if path not in before else "removed" if path not in after else "modified"
                out.append({"filename": path, "status": status})
        return out

    def ancestors(self, sha: str) -> list[str]:
        out = []
        while sha:
            out.append(sha)
            sha = (self.commits[sha]["parents"] or [""])[0]
        return out

    # -- history
    def commit(self, message: str, contents: dict[str, str | None], *, mode: str = "100644") -> str:
        """A commit on the branch (its head moves to it); returns its sha."""
        parent = self.refs.get(self.branch)
        entries = dict(self.trees[self.commits[parent]["tree"]]) if parent else {}
        for path, text in contents.items():
            if text is None:
                entries.pop(path, None)
            else:
                entries[path] = (entries.get(path, (mode, ""))[0], _sha("blob", text))
        sha = _sha("commit", parent, message, sorted(entries.items()))
        self._store(sha, tree=self._tree(entries), parents=[parent] if parent else [], message=message)
        self.refs[self.branch] = sha
        files = self.files_of(parent, sha)
        for ref in (sha, sha[:12], sha[:7]):        # GitHub resolves a short sha here
            self.gh.route("GET", f"{self.r}/commits/{ref}", self._auth(lambda req: (200, {
                "sha": sha, "commit": {"message": message, "tree": {"sha": self.commits[sha]["tree"]}},
                "parents": [{"sha": parent}] if parent else [], "files": files})))
        for earlier in self.ancestors(sha)[1:]:
            self.gh.route("GET", f"{self.r}/compare/{earlier}...{sha}", self._auth(
                lambda req, e=earlier: (200, {"status": "ahead", "files": self.files_of(e, sha)})))
        return sha

    def tree_of(self, commit_sha: str) -> dict[str, tuple[str, str]]:
        return self.trees[self.commits[commit_sha]["tree"]]

    # -- writes
    async def _post_tree(self, body: dict[str, Any]) -> tuple[int, Any]:
        entries = dict(self.trees[body["base_tree"]]) if body.get("base_tree") else {}
        for e in body["tree"]:
            if e["sha"] is None:
                entries.pop(e["path"], None)
            else:
                entries[e["path"]] = (e["mode"], e["sha"])
        return 201, {"sha": self._tree(entries)}

    async def _post_commit(self, body: dict[str, Any]) -> tuple[int, Any]:
        sha = _sha("commit", body["parents"], body["message"], body["tree"])
        self._store(sha, tree=body["tree"], parents=body["parents"], message=body["message"])
        return 201, {"sha": sha}

    async def _post_ref(self, body: dict[str, Any]) -> tuple[int, Any]:
        name = body["ref"].removeprefix("refs/heads/")
        if name in self.refs:
            return 422, {"message": "Reference already exists"}
        self.refs[name] = body["sha"]
        return 201, {"ref": body["ref"], "object": {"sha": body["sha"]}}

    async def _post_pull(self, body: dict[str, Any]) -> tuple[int, Any]:
        number = len(self.pulls) + 1
        pr = {**body, "number": number, "html_url": f"https://github.com/{self.gh.repo}/pull/{number}"}
        self.pulls.append(pr)
        return 201, pr


class FakePagerDuty(FakeAPI):
    """Notes and status of one incident; every write needs the token and a From header."""

    def __init__(self, http: FakeHTTP, *, incident_id: str, token: str, status: str = "triggered",
                 service_id: str = "PSVC001") -> None:
        super().__init__(http)
        self.token, self.status, self.service_id = token, status, service_id
        self.notes: list[dict[str, Any]] = []
        self.puts: list[dict[str, Any]] = []
        base = f"/incidents/{incident_id}"
        self.route("POST", f"{base}/notes", self._post_note)
        self.route("GET", f"{base}/notes", self._get_notes)
        self.route("PUT", base, self._put)
        self.route("GET", base, self._get)

    def _check(self, request: web.Request, *, write: bool) -> tuple[int, Any] | None:
        if request.headers.get("Authorization") != f"Token token={self.token}":
            return 401, {"error": {"message": "Unauthorized", "code": 2006}}
        if request.headers.get("Accept") != "application/vnd.pagerduty+json;version=2":
            return 400, {"error": {"message": "bad Accept"}}
        if write and "@" not in request.headers.get("From", ""):
            return 400, {"error": {"message": "Requester User Not Found", "code": 2100}}
        return None

    async def _post_note(self, request: web.Request) -> tuple[int, Any]:
        if (bad := self._check(request, write=True)) is not None:
            return bad
        note = {"id": f"PN{next(_ids)}", "content": (await request.json())["note"]["content"],
                "from": request.headers["From"]}
        self.notes.append(note)
        return 201, {"note": note}

    async def _get_notes(self, request: web.Request) -> tuple[int, Any]:
        return self._check(request, write=False) or (200, {"notes": self.notes})

    async def _put(self, request: web.Request) -> tuple[int, Any]:
        if (bad := self._check(request, write=True)) is not None:
            return bad
        body = await request.json()
        self.puts.append(body)
        self.status = body["incident"]["status"]
        return 200, {"incident": {"status": self.status}}

    async def _get(self, request: web.Request) -> tuple[int, Any]:
        return self._check(request, write=False) or (200, {"incident": {
            "status": self.status, "service": {"id": self.service_id, "type": "service_reference"}}})


class FakeIncidentIo(FakeAPI):
    """``POST /v2/incident_updates`` with its idempotency key (a repeated key returns the first
    update), and ``GET /v2/incidents/{id}`` ("Incidents V2 · Show": ``{"incident": IncidentV2}``) for
    the incidents added with :meth:`incident`; both need the bearer key."""

    def __init__(self, http: FakeHTTP, *, api_key: str) -> None:
        super().__init__(http)
        self.api_key = api_key
        self.updates: dict[str, dict[str, Any]] = {}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.route("POST", "/v2/incident_updates", self._post)

    def incident(self, incident_id: str, *, teams: tuple[str, ...] = (), services: tuple[str, ...] = (),
                 slack_channel_id: str = "C0INCIDENT") -> dict[str, Any]:
        """An incident whose Team field names ``teams`` (catalog entries) and Service field ``services``."""
        entries = []
        if teams:
            entries.append({"custom_field": {"id": "01CFTEAM", "name": "Team", "field_type": "single_select"},
                            "values": [{"value_catalog_entry": {"id": t, "name": f"team {t}"}} for t in teams]})
        if services:
            entries.append({"custom_field": {"id": "01CFSVC", "name": "Affected services",
                                             "field_type": "multi_select"}, "values": []})   # not "Service"
            entries.append({"custom_field": {"id": "01CFSVC2", "name": "Service", "field_type": "single_select"},
                            "values": [{"value_catalog_entry": {"id": f"01S{i}", "name": name}}
                                       for i, name in enumerate(services)]})
        self.incidents[incident_id] = {
            "id": incident_id, "name": "Checkout errors", "reference": "INC-7", "mode": "standard",
            "slack_channel_id": slack_channel_id, "custom_field_entries": entries,
            "incident_status": {"id": "01ST", "name": "Investigating", "category": "live"}}
        self.route("GET", f"/v2/incidents/{incident_id}", self._get)
        return self.incidents[incident_id]

    def _denied(self, request: web.Request) -> tuple[int, Any] | None:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"type": "authentication_error"}
        return None

    async def _get(self, request: web.Request) -> tuple[int, Any]:
        if (bad := self._denied(request)) is not None:
            return bad
        found = self.incidents.get(request.path.rsplit("/", 1)[-1])
        return (200, {"incident": found}) if found else (404, {"type": "not_found"})

    async def _post(self, request: web.Request) -> tuple[int, Any]:
        if (bad := self._denied(request)) is not None:
            return bad
        body = json.loads(await request.read())
        if not body.get("idempotency_key") or not body.get("incident_id"):
            return 422, {"type": "validation_error"}
        key = body["idempotency_key"]
        if key not in self.updates:
            self.updates[key] = {"id": f"01U{next(_ids)}", "incident_id": body["incident_id"],
                                 "message": body.get("message")}
        return 201, {"incident_update": self.updates[key]}
