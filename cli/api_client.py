"""The HTTP client behind the onboarding commands (``orgs``, ``teams``, ``tokens``, ``routing``,
``config``, ``init``), and the options and output helpers they share.

Contract: every command takes ``--url`` (default ``INCIDENTFOX_CONFIG_URL``, else
``http://127.0.0.1:8000``), ``--token`` (default ``INCIDENTFOX_TOKEN``, else
``INCIDENTFOX_ADMIN_TOKEN``, else ``<INCIDENTFOX_HOME>/admin_token`` written by ``incidentfox up``;
never printed) and ``--json``. An API error is printed to stderr as ``error: <status> <code>:
<message>`` with its ``details``, and the command exits 1; usage errors are click's exit 2.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

from incidentfox.settings import get_settings

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 30.0

UrlOpt = Annotated[str | None, typer.Option(
    "--url", help="API base URL (default: $INCIDENTFOX_CONFIG_URL or http://127.0.0.1:8000).",
    show_default=False)]
TokenOpt = Annotated[str | None, typer.Option(
    "--token", help="Bearer token (default: $INCIDENTFOX_TOKEN, else the admin token).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]
OrgOpt = Annotated[str, typer.Option("--org", help="Org id.")]


@dataclass(eq=False)   # an exception stays hashable
class ApiError(Exception):
    """A non-2xx answer (``status`` > 0) or no answer at all (``status`` 0, ``code`` ``unreachable``)."""

    status: int
    code: str
    message: str
    details: Any = field(default_factory=dict)

    def __str__(self) -> str:
        head = f"{self.status} {self.code}" if self.status else self.code
        return f"{head}: {self.message}"


def resolve_url(url: str | None) -> str:
    return (url or get_settings().config_url or DEFAULT_URL).rstrip("/")


def resolve_token(token: str | None) -> str | None:
    """The explicit token, else the settings' CLI token, admin token, or local admin token file."""
    if token:
        return token
    settings = get_settings()
    for secret in (settings.token, settings.admin_token):
        if secret is not None and secret.get_secret_value():
            return secret.get_secret_value()
    path = settings.home / "admin_token"
    return path.read_text().strip() if path.is_file() else None


class ApiClient:
    """A thin synchronous client: ``call`` returns the decoded JSON or raises :class:`ApiError`."""

    def __init__(self, url: str, token: str | None, *, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = url
        self._http = httpx.Client(base_url=url, headers=headers, timeout=TIMEOUT_S, transport=transport)

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = self._http.request(method, path, json=body, params=query)
        except httpx.HTTPError as exc:
            raise ApiError(0, "unreachable", f"{self.base_url}: {type(exc).__name__}: {exc}") from exc
        try:
            data = resp.json() if resp.content else {}
        except ValueError:
            data = None
        if resp.is_success:
            return data
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            raise ApiError(resp.status_code, str(err.get("code", "error")), str(err.get("message", "")),
                           err.get("details") or {})
        raise ApiError(resp.status_code, "http_error", resp.text[:200] or resp.reason_phrase)


def print_error(exc: ApiError) -> None:
    typer.echo(f"error: {exc}", err=True)
    if exc.details:
        typer.echo(json.dumps(exc.details, indent=2, sort_keys=True), err=True)


@contextmanager
def api(url: str | None, token: str | None) -> Iterator[ApiClient]:
    """A client for one command; an :class:`ApiError` becomes a printed error and exit code 1."""
    client = ApiClient(resolve_url(url), resolve_token(token))
    try:
        yield client
    except ApiError as exc:
        print_error(exc)
        raise typer.Exit(1) from None
    finally:
        client.close()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def emit(data: Any, *, as_json: bool, columns: Sequence[str] | None = None, title: str | None = None,
         items_key: str = "items") -> None:
    """Print ``data``: its JSON with ``--json``; otherwise a table of ``data[items_key]`` with
    ``columns`` when given, else a key/value table of the object."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    table = Table(title=title)
    if columns is not None:
        rows = data.get(items_key, []) if isinstance(data, dict) else data
        for col in columns:
            table.add_column(col, overflow="fold")
        for row in rows:
            table.add_row(*(_cell(row.get(col)) for col in columns))
    else:
        table.add_column("key")
        table.add_column("value", overflow="fold")
        for key, value in data.items():
            table.add_row(key, _cell(value))
    Console().print(table)
