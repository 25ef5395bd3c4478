"""Local servers that speak the part of each API answering back uses, on one FakeHTTP each.

State is kept as the real service would (comments, check runs, notes, updates), so a retried or
repeated answer is visible as a second object. ``fault(method, path, status, headers, commit=)``
scripts one failing answer: with ``commit=True`` the write is stored and the answer still fails (a
5xx after the server acted: the lost-response case).
"""

from __future__ import annotations

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
    """``POST /v2/incident_updates`` with its idempotency key: a repeated key returns the first update."""

    def __init__(self, http: FakeHTTP, *, api_key: str) -> None:
        super().__init__(http)
        self.api_key = api_key
        self.updates: dict[str, dict[str, Any]] = {}
        self.route("POST", "/v2/incident_updates", self._post)

    async def _post(self, request: web.Request) -> tuple[int, Any]:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return 401, {"type": "authentication_error"}
        body = json.loads(await request.read())
        if not body.get("idempotency_key") or not body.get("incident_id"):
            return 422, {"type": "validation_error"}
        key = body["idempotency_key"]
        if key not in self.updates:
            self.updates[key] = {"id": f"01U{next(_ids)}", "incident_id": body["incident_id"],
                                 "message": body.get("message")}
        return 201, {"incident_update": self.updates[key]}
