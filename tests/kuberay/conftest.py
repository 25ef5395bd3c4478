"""Fixtures of the KubeRay tests: the local RayService API server and a settable clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cluster.render import render
from tests.kuberay.rayservice_fake import Clock, FakeApiServer


@pytest.fixture
def server() -> Iterator[FakeApiServer]:
    rendered = next(o for o in render(overlay="eks") if o["kind"] == "RayService")
    srv = FakeApiServer(rendered)
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def clock() -> Clock:
    return Clock()
