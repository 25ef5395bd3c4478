"""A local moto server for a test module: the AWS endpoint (S3, STS, IAM, CloudWatch, …) that the AWS
tools, the object store and the security tests talk to, started and stopped in one place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from incidentfox.ports import free_port


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port for the block; yields its URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def boto_client(url: str, service: str, *, region: str = "us-east-1", key: str = "testing",
                secret: str = "testing") -> Any:
    """A boto3 client for the moto server at ``url`` (seeding; never the code under test)."""
    return boto3.client(service, region_name=region, endpoint_url=url, aws_access_key_id=key,
                        aws_secret_access_key=secret)
