"""A tenant's Kubernetes credentials, confined: a server, a CA, a token or client certificate.

``integrations.kubernetes`` is tenant data handed to a shared tool host, so nothing in it may run a
command or read a file there. Accepted, and nothing else at any depth:

* ``kubeconfig``: YAML text or an object with ``apiVersion: v1``, ``kind: Config``,
  ``current-context``, empty ``preferences``, and lists of

  - ``clusters[].cluster``: ``server`` (an ``https://`` URL), ``certificate-authority-data``
    (base64 PEM; without it the public CA bundle applies), ``insecure-skip-tls-verify`` only as
    ``false``;
  - ``users[].user``: ``token``, and/or ``client-certificate-data`` + ``client-key-data``
    (base64 PEM);
  - ``contexts[].context``: ``cluster``, ``user``, ``namespace``;

  plus ``context`` beside it to pick a context other than ``current-context``;
* or ``host`` (``https://``) + ``token``, optional ``ca_cert`` (PEM text) and ``verify_ssl: true``;
* ``enabled``.

Refused with a reason: ``exec`` and ``auth-provider`` (run a plugin), ``tokenFile`` and every file
path (``certificate-authority``, ``client-certificate``, ``client-key``: they read a host file and
send it to a server the tenant names), ``username``/``password`` (basic auth, gone from Kubernetes
since 1.19), ``proxy-url``, impersonation (``as``…), ``extensions``, turning TLS verification off
(the bearer token would go to whoever answers), plain ``http://`` servers; and any other field.

Two entry points, one rule set: :func:`check_kubernetes_block` at config write (values equal to the
``placeholder``, i.e. stored secrets the writer cannot see, pass as already checked) and
:func:`kubernetes_credentials` at use, which returns the only structure a client may be built from.
Both raise :class:`KubeconfigError` naming the offending field path; no message echoes a value.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

MAX_KUBECONFIG_CHARS = 256 * 1024
MAX_ENTRIES = 64
MAX_TOKEN_CHARS = 16 * 1024
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: nothing that could split a header
_NAME_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,253}$")

BLOCK_FIELDS = frozenset({"enabled", "kubeconfig", "context", "host", "token", "ca_cert", "verify_ssl"})
_TOP_FIELDS = frozenset({"apiVersion", "kind", "clusters", "users", "contexts", "current-context",
                         "preferences"})
_CLUSTER_FIELDS = frozenset({"server", "certificate-authority-data", "insecure-skip-tls-verify"})
_USER_FIELDS = frozenset({"token", "client-certificate-data", "client-key-data"})
_CONTEXT_FIELDS = frozenset({"cluster", "user", "namespace"})

_FILE = "reads a file on the platform's host; embed the content instead (the `-data` field)"
_REFUSED: dict[str, str] = {
    "exec": "runs a command on the platform's host; use a service-account token or a client certificate",
    "auth-provider": "runs an auth plugin on the platform's host; use a service-account token",
    "tokenFile": "reads a file on the platform's host; put the token itself in `token`",
    "certificate-authority": _FILE,
    "client-certificate": _FILE,
    "client-key": _FILE,
    "username": "basic auth is not accepted; use a service-account token",
    "password": "basic auth is not accepted; use a service-account token",
    "proxy-url": "proxies are not accepted",
    "extensions": "extensions are not accepted",
    "as": "impersonation is not accepted",
    "as-uid": "impersonation is not accepted",
    "as-groups": "impersonation is not accepted",
    "as-user-extra": "impersonation is not accepted",
}


class KubeconfigError(ValueError):
    """``integrations.kubernetes`` is refused; ``path`` is relative to that block (e.g.
    ``kubeconfig.users[0].user.exec``) and ``message`` never contains a configured value."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclass(frozen=True)
class KubeCredentials:
    """What a Kubernetes client may be built from: a server and in-memory PEM/token data only."""

    server: str
    ca_pem: bytes | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    client_cert_pem: bytes | None = field(default=None, repr=False)
    client_key_pem: bytes | None = field(default=None, repr=False)
    namespace: str | None = None


class _Opaque:
    """Marks a value hidden behind the write-time placeholder: checked when it was stored."""


OPAQUE = _Opaque()


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Reader:
    def __init__(self, placeholder: str | None) -> None:
        self.placeholder = placeholder
        self.saw_opaque = False

    def opaque(self, value: Any) -> bool:
        if self.placeholder is not None and isinstance(value, str) and value == self.placeholder:
            self.saw_opaque = True
            return True
        return False

    def mapping(self, value: Any, path: str, allowed: frozenset[str]) -> Mapping[str, Any] | _Opaque:
        if self.opaque(value):
            return OPAQUE
        if not isinstance(value, Mapping):
            raise KubeconfigError(path, "must be an object")
        for key in value:
            if key not in allowed:
                where = _join(path, str(key))
                raise KubeconfigError(where, _REFUSED.get(str(key), "is not a supported field"))
        return value

    def string(self, value: Any, path: str, *, pattern: re.Pattern[str] = _NAME_RE,
               max_len: int = 253) -> str | _Opaque:
        if self.opaque(value):
            return OPAQUE
        if not isinstance(value, str) or not value or len(value) > max_len or not pattern.fullmatch(value):
            raise KubeconfigError(path, "must be a non-empty string without control characters")
        return value

    def https_url(self, value: Any, path: str) -> str | _Opaque:
        if self.opaque(value):
            return OPAQUE
        if not isinstance(value, str) or len(value) > 2048:
            raise KubeconfigError(path, "must be an https:// URL")
        try:
            parts = urlsplit(value.strip())
            _ = parts.port
        except ValueError:
            raise KubeconfigError(path, "must be an https:// URL") from None
        if parts.scheme.lower() != "https" or not parts.hostname:
            raise KubeconfigError(path, "must be an https:// URL (credentials never travel in cleartext)")
        if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
            raise KubeconfigError(path, "must be a plain https:// URL (no user info, query or fragment)")
        if any(ch.isspace() or ord(ch) < 0x20 for ch in value.strip()):
            raise KubeconfigError(path, "must be an https:// URL")
        return value.strip().rstrip("/")

    def token(self, value: Any, path: str) -> str | _Opaque:
        if self.opaque(value):
            return OPAQUE
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_TOKEN_CHARS \
                or not _TOKEN_RE.fullmatch(value.strip()):
            raise KubeconfigError(path, "must be a bearer token (visible ASCII, no spaces)")
        return value.strip()

    def pem_data(self, value: Any, path: str, *, key: bool, encoded: bool) -> bytes | _Opaque:
        if self.opaque(value):
            return OPAQUE
        what = "a base64-encoded PEM " if encoded else "PEM "
        what += "private key" if key else "certificate"
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_KUBECONFIG_CHARS:
            raise KubeconfigError(path, f"must be {what}")
        try:
            data = base64.b64decode(value.strip(), validate=True) if encoded else value.encode()
            if key:
                serialization.load_pem_private_key(data, password=None)
            else:
                x509.load_pem_x509_certificates(data)
        except (binascii.Error, ValueError, TypeError, UnicodeEncodeError):
            raise KubeconfigError(path, f"must be {what}") from None
        return data


def _entries(r: _Reader, doc: Mapping[str, Any], key: str, inner: str,
             allowed: frozenset[str]) -> dict[str, tuple[str, Mapping[str, Any] | _Opaque]] | _Opaque:
    """Name → (path of its body, e.g. ``users[0].user``; the body) for one list of a kubeconfig."""
    value = doc.get(key)
    if value is None:
        return {}
    if r.opaque(value):
        return OPAQUE
    if not isinstance(value, list):
        raise KubeconfigError(key, "must be a list")
    if len(value) > MAX_ENTRIES:
        raise KubeconfigError(key, f"must have at most {MAX_ENTRIES} entries")
    out: dict[str, tuple[str, Mapping[str, Any] | _Opaque]] = {}
    for i, entry in enumerate(value):
        path = _join(key, i)
        entry = r.mapping(entry, path, frozenset({"name", inner}))
        if isinstance(entry, _Opaque):
            continue
        name = r.string(entry.get("name"), _join(path, "name"))
        body = r.mapping(entry.get(inner), _join(path, inner), allowed)
        if isinstance(name, str):
            if name in out:
                raise KubeconfigError(_join(path, "name"), "is a duplicate")
            out[name] = (_join(path, inner), body)
    return out


@dataclass
class _Cluster:
    server: str | _Opaque
    ca: bytes | _Opaque | None


@dataclass
class _User:
    token: str | _Opaque | None
    cert: bytes | _Opaque | None
    key: bytes | _Opaque | None


def _cluster(r: _Reader, body: Mapping[str, Any], path: str) -> _Cluster:
    if "server" not in body:
        raise KubeconfigError(_join(path, "server"), "is required")
    server = r.https_url(body["server"], _join(path, "server"))
    skip = body.get("insecure-skip-tls-verify")
    if skip is not None and skip is not False and not r.opaque(skip):
        raise KubeconfigError(_join(path, "insecure-skip-tls-verify"),
                              "TLS verification cannot be turned off; give certificate-authority-data")
    ca = body.get("certificate-authority-data")
    return _Cluster(server, None if ca is None else
                    r.pem_data(ca, _join(path, "certificate-authority-data"), key=False, encoded=True))


def _user(r: _Reader, body: Mapping[str, Any], path: str) -> _User:
    token = body.get("token")
    cert, key = body.get("client-certificate-data"), body.get("client-key-data")
    if (cert is None) != (key is None):
        missing = "client-key-data" if key is None else "client-certificate-data"
        raise KubeconfigError(_join(path, missing), "is required with a client certificate")
    if token is None and cert is None:
        raise KubeconfigError(_join(path, "token"), "a user needs `token` or a client certificate")
    return _User(
        token=None if token is None else r.token(token, _join(path, "token")),
        cert=None if cert is None else r.pem_data(cert, _join(path, "client-certificate-data"),
                                                   key=False, encoded=True),
        key=None if key is None else r.pem_data(key, _join(path, "client-key-data"), key=True, encoded=True),
    )


def _load(r: _Reader, value: Any) -> Mapping[str, Any] | _Opaque:
    if r.opaque(value):
        return OPAQUE
    if isinstance(value, str):
        if len(value) > MAX_KUBECONFIG_CHARS:
            raise KubeconfigError("", f"must be at most {MAX_KUBECONFIG_CHARS} characters")
        try:
            value = yaml.safe_load(value)
        except (yaml.YAMLError, RecursionError):
            # The parser's message quotes the input; deep nesting exhausts its recursive composer.
            raise KubeconfigError("", "is not valid YAML") from None
    return r.mapping(value, "", _TOP_FIELDS)


def _kubeconfig(r: _Reader, value: Any, context: Any) -> KubeCredentials | None:
    """Validate a kubeconfig; resolve the context when nothing is hidden by the placeholder."""
    doc = _load(r, value)
    if isinstance(doc, _Opaque):
        return None
    for key, want in (("apiVersion", "v1"), ("kind", "Config")):
        if key in doc and doc[key] != want and not r.opaque(doc[key]):
            raise KubeconfigError(key, f"must be {want!r}")
    prefs = doc.get("preferences")
    if prefs is not None:
        r.mapping(prefs, "preferences", frozenset())
    clusters = _entries(r, doc, "clusters", "cluster", _CLUSTER_FIELDS)
    users = _entries(r, doc, "users", "user", _USER_FIELDS)
    contexts = _entries(r, doc, "contexts", "context", _CONTEXT_FIELDS)
    parsed_clusters = {n: b if isinstance(b, _Opaque) else _cluster(r, b, p)
                       for n, (p, b) in ({} if isinstance(clusters, _Opaque) else clusters).items()}
    parsed_users = {n: b if isinstance(b, _Opaque) else _user(r, b, p)
                    for n, (p, b) in ({} if isinstance(users, _Opaque) else users).items()}
    ctx_bodies = {} if isinstance(contexts, _Opaque) else contexts
    for p, body in ctx_bodies.values():
        if not isinstance(body, _Opaque):
            for key in ("cluster", "user"):
                r.string(body.get(key), _join(p, key))
            if body.get("namespace") is not None:
                r.string(body["namespace"], _join(p, "namespace"))
    current = doc.get("current-context")
    if current is not None:
        r.string(current, "current-context")
    if context is not None:
        r.string(context, "context")
    if r.saw_opaque:
        return None
    chosen = context if context is not None else current
    if chosen is None and len(ctx_bodies) == 1:
        chosen = next(iter(ctx_bodies))
    if chosen is None:
        raise KubeconfigError("current-context", "is required when there are several contexts")
    if chosen not in ctx_bodies:
        raise KubeconfigError("context" if context is not None else "current-context",
                              "names no entry of `contexts`")
    path, body = ctx_bodies[chosen]
    assert not isinstance(body, _Opaque)
    cluster, user = parsed_clusters.get(body["cluster"]), parsed_users.get(body["user"])
    if cluster is None:
        raise KubeconfigError(_join(path, "cluster"), "names no entry of `clusters`")
    if user is None:
        raise KubeconfigError(_join(path, "user"), "names no entry of `users`")
    assert isinstance(cluster, _Cluster) and isinstance(user, _User)
    return KubeCredentials(server=str(cluster.server), ca_pem=cluster.ca, token=user.token,  # type: ignore[arg-type]
                           client_cert_pem=user.cert, client_key_pem=user.key,  # type: ignore[arg-type]
                           namespace=body.get("namespace"))


def _block(block: Any, placeholder: str | None) -> KubeCredentials | None:
    r = _Reader(placeholder)
    body = r.mapping(block, "", BLOCK_FIELDS)
    if isinstance(body, _Opaque):
        return None
    verify = body.get("verify_ssl")
    if verify is not None and verify is not True and not r.opaque(verify):
        raise KubeconfigError("verify_ssl", "TLS verification cannot be turned off; give `ca_cert`")
    if body.get("kubeconfig") is not None:
        for key in ("host", "token", "ca_cert"):
            if body.get(key) is not None:
                raise KubeconfigError(key, "give either `kubeconfig` or `host` + `token`, not both")
        try:
            return _kubeconfig(r, body["kubeconfig"], body.get("context"))
        except KubeconfigError as exc:
            # Paths inside the document are reported under `kubeconfig.`; `context` sits beside it.
            path = exc.path if exc.path == "context" else _join("kubeconfig", exc.path) if exc.path \
                else "kubeconfig"
            raise KubeconfigError(path, exc.message) from None
    if body.get("host") is None:
        if placeholder is not None:
            return None  # write time: credentials may come from an ancestor's block
        raise KubeconfigError("", "needs `kubeconfig`, or `host` + `token`")
    host = r.https_url(body["host"], "host")
    if body.get("token") is None:
        if placeholder is not None:
            return None
        raise KubeconfigError("token", "is required with `host`")
    token = r.token(body["token"], "token")
    ca = body.get("ca_cert")
    ca_pem = None if ca is None else r.pem_data(ca, "ca_cert", key=False, encoded=False)
    if r.saw_opaque:
        return None
    return KubeCredentials(server=host, ca_pem=ca_pem, token=token)  # type: ignore[arg-type]


def kubernetes_credentials(block: Any) -> KubeCredentials:
    """The credentials in an ``integrations.kubernetes`` block at use, or :class:`KubeconfigError`."""
    creds = _block(block, None)
    assert creds is not None  # without a placeholder every path returns credentials or raises
    return creds


def check_kubernetes_block(block: Any, *, placeholder: str) -> None:
    """Write-time check of an ``integrations.kubernetes`` block; raise :class:`KubeconfigError`.

    A value equal to ``placeholder`` (a stored secret the writer did not send) passes: it was checked
    when it was written and is checked again at use. A block without credentials passes too (a
    node may set ``context`` over an ancestor's kubeconfig); use refuses it.
    """
    _block(block, placeholder)
