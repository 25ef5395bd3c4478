"""A local server speaking the Kubernetes API paths proposed fixes call (read a deployment, list its
ReplicaSets, patch the deployment or its scale), with TLS from the test PKI: deployment ``shop/checkout``
at revision 7, earlier revisions 6 and 5."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.tls_certs import local_pki
from tests.tools_fakes import FakeHTTP


def _dep(revision: str, image: str) -> dict[str, Any]:
    return {"metadata": {"name": "checkout", "namespace": "shop",
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "checkout"}},
                     "template": {"metadata": {"labels": {"app": "checkout"}},
                                  "spec": {"containers": [{"name": "checkout", "image": image}]}}},
            "status": {}}


def _rs(name: str, revision: str, image: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "shop",
                         "annotations": {"deployment.kubernetes.io/revision": revision},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout",
                                              "uid": "d", "controller": True}]},
            "spec": {"selector": {"matchLabels": {"app": "checkout"}},
                     "template": {"metadata": {"labels": {"app": "checkout", "pod-template-hash": name[-5:]}},
                                  "spec": {"containers": [{"name": "checkout", "image": image}]}}}}


@asynccontextmanager
async def kube_api() -> AsyncIterator[FakeHTTP]:
    fake = FakeHTTP()
    await fake.start(ssl_context=local_pki().server_context())
    fake.route("GET", "/apis/apps/v1/namespaces/shop/deployments/checkout", (200, _dep("7", "reg/checkout:v2.14.0")))
    fake.route("GET", "/apis/apps/v1/namespaces/shop/replicasets", (200, {
        "kind": "ReplicaSetList", "apiVersion": "apps/v1", "metadata": {},
        "items": [_rs("checkout-6c7b8", "7", "reg/checkout:v2.14.0"), _rs("checkout-5b6a7", "6", "reg/checkout:v2.13.1"),
                  _rs("checkout-4a5b6", "5", "reg/checkout:v2.12.0")]}))

    async def patch(request: web.Request) -> web.Response:
        return web.json_response(_dep("8", "patched"))
    fake.route("PATCH", "/apis/apps/v1/namespaces/shop/deployments/checkout", patch)
    fake.route("PATCH", "/apis/apps/v1/namespaces/shop/deployments/checkout/scale", (200, {
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": {"replicas": 5}, "status": {"replicas": 3}}))
    yield fake
    await fake.close()


TOOL_NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)


def kube_ctx(api: FakeHTTP, now: datetime = TOOL_NOW) -> Any:
    """A tool context whose ``kubernetes`` integration is the local TLS API server ``api`` (the
    local PKI's CA trusted, a bearer token), on a fixed clock."""
    from actors.tools.base import ToolContext

    block = {"host": api.url, "token": "k8s-token-abcdef", "ca_cert": local_pki().ca.cert.decode()}
    return ToolContext(integrations={"kubernetes": block}, clock=lambda: now)
