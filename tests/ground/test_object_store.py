"""The object-store interface on both implementations: a local folder and S3 (moto's server as the
operator's endpoint). Same assertions for both: put/get/delete/list by key, overwrite, missing keys,
keys that could escape the folder refused, atomic puts (no torn object visible)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto_kit import moto_server

from incidentfox.object_store import (
    InvalidKey,
    LocalObjectStore,
    ObjectInfo,
    ObjectNotFound,
    ObjectStoreConfig,
    S3ObjectStore,
    check_key,
    object_store_config,
)
from incidentfox.settings import Settings

BUCKET = "incidentfox-test"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        boto3.client("s3", region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "local":
        return LocalObjectStore(tmp_path / "objects")
    request.getfixturevalue("aws_env")
    url = request.getfixturevalue("moto_url")
    return S3ObjectStore(bucket=BUCKET, prefix=f"t-{os.urandom(4).hex()}", endpoint_url=url)


async def test_put_get_list_delete(store: object, tmp_path: Path) -> None:
    await store.put("sandbox/workspaces/a.tar.gz", b"alpha")
    await store.put("sandbox/workspaces/b.tar.gz", b"\x00\xffbeta")
    await store.put("kb/doc-1", b"doc")
    assert await store.get("sandbox/workspaces/a.tar.gz") == b"alpha"
    assert await store.get("sandbox/workspaces/b.tar.gz") == b"\x00\xffbeta"
    assert await store.list("sandbox/") == [ObjectInfo("sandbox/workspaces/a.tar.gz", 5),
                                            ObjectInfo("sandbox/workspaces/b.tar.gz", 6)]
    assert [o.key for o in await store.list()] == ["kb/doc-1", "sandbox/workspaces/a.tar.gz",
                                                   "sandbox/workspaces/b.tar.gz"]
    await store.put("sandbox/workspaces/a.tar.gz", b"alpha-2")  # overwrite
    assert await store.get("sandbox/workspaces/a.tar.gz") == b"alpha-2"
    assert await store.exists("kb/doc-1") and not await store.exists("kb/doc-2")

    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 << 20))
    await store.put_file("blobs/big", src)
    out = tmp_path / "big.out"
    await store.get_file("blobs/big", out)
    assert out.read_bytes() == src.read_bytes()

    await store.delete("sandbox/workspaces/a.tar.gz")
    await store.delete("sandbox/workspaces/a.tar.gz")  # deleting a missing key is fine
    with pytest.raises(ObjectNotFound):
        await store.get("sandbox/workspaces/a.tar.gz")
    with pytest.raises(ObjectNotFound):
        await store.get_file("sandbox/workspaces/a.tar.gz", tmp_path / "x")
    assert [o.key for o in await store.list("sandbox/")] == ["sandbox/workspaces/b.tar.gz"]


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", ".hidden",
                                 "a/b/", "a\x00b", "a b", "x" * 1100])
async def test_bad_keys_are_refused(store: object, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put(key, b"x")
    with pytest.raises(InvalidKey):
        await store.get(key)


def test_check_key_accepts_plain_keys() -> None:
    assert check_key("sandbox/workspaces/sbx_0123.tar.gz") == "sandbox/workspaces/sbx_0123.tar.gz"


async def test_local_put_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A put that fails half-way leaves the previous object intact and no temporary file listed."""
    store = LocalObjectStore(tmp_path / "objects")
    await store.put("k", b"old")
    src = tmp_path / "src"
    src.write_bytes(b"n" * (4 << 20))
    import shutil

    def broken_copy(fsrc: object, fdst: object, length: int = 0) -> None:
        fdst.write(b"partial")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(shutil, "copyfileobj", broken_copy)
    with pytest.raises(OSError):
        await store.put_file("k", src)
    assert await store.get("k") == b"old"
    assert await store.list() == [ObjectInfo("k", 3)]
    assert [p.name for p in (tmp_path / "objects").iterdir()] == ["k"]


def test_settings_pick_the_store(tmp_path: Path) -> None:
    local = object_store_config(Settings(home=tmp_path))
    assert local == ObjectStoreConfig(kind="local", root=(tmp_path / "objects").resolve())
    s3 = object_store_config(Settings(home=tmp_path, object_store="s3", object_store_bucket="b",
                                      object_store_endpoint_url="http://minio:9000", object_store_prefix="p"))
    assert (s3.kind, s3.bucket, s3.endpoint_url, s3.prefix) == ("s3", "b", "http://minio:9000", "p")
    store = s3.build()
    assert isinstance(store, S3ObjectStore) and store.prefix == "p/"
    store.client()
    assert pickle.loads(pickle.dumps(store)).bucket == "b"  # the client is not pickled


def test_s3_needs_a_bucket() -> None:
    with pytest.raises(ValueError, match="bucket"):
        ObjectStoreConfig(kind="s3").build()
