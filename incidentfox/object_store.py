"""One object-store interface: put / get / delete / list by key, with atomic puts.

Two implementations, picked by settings (:func:`object_store_from_settings`):

* :class:`LocalObjectStore`: a folder (default ``<home>/objects``), the embedded default. A put
  writes a temporary file in the target's directory, fsyncs it and ``os.replace``-s it over the key,
  so a reader sees the old object or the new one, never a torn one.
* :class:`S3ObjectStore`: a bucket through ``boto3`` (production). ``PutObject`` and multipart
  uploads are atomic in S3 (an object appears whole when the upload completes). The endpoint is
  the operator's (``INCIDENTFOX_OBJECT_STORE_ENDPOINT_URL``, else boto3's own ``AWS_ENDPOINT_URL``
  handling); credentials come from the process's default chain (IRSA on EKS), or static keys for
  S3-compatible stores (``INCIDENTFOX_OBJECT_STORE_ACCESS_KEY_ID``/``..._SECRET_ACCESS_KEY``): this
  is the platform's own bucket, never a tenant's.

Keys are ``/``-separated relative names of ``[A-Za-z0-9._=-]`` segments; ``..``, ``.``, empty
segments, a leading ``/`` and anything else are refused with :class:`InvalidKey`, so a key can never
name a path outside the local root. Every method is ``async`` and runs the blocking work in a
thread: callers on an actor's event loop are never blocked. Stores hold only their configuration
until first use, so they pickle (they cross into Ray actors).

The sandbox keeps session workspace snapshots here; the knowledge base will share the interface.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, SecretStr

from incidentfox.errors import IncidentFoxError

_SEGMENT = re.compile(r"^[A-Za-z0-9_=-][A-Za-z0-9._=-]{0,254}$")
MAX_KEY_LEN = 1024


class ObjectStoreError(IncidentFoxError):
    status, code = 502, "object_store_error"


class InvalidKey(ObjectStoreError):
    status, code = 400, "invalid_object_key"


class ObjectNotFound(ObjectStoreError):
    status, code = 404, "object_not_found"


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


def check_key(key: str) -> str:
    """``key`` if it is a valid object key, else :class:`InvalidKey` naming the problem."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LEN:
        raise InvalidKey("an object key is a non-empty string of at most 1024 characters")
    parts = key.split("/")
    if any(not _SEGMENT.match(p) for p in parts):
        raise InvalidKey(f"object key {key!r} has an empty, '.'-leading or invalid segment",
                         details={"key": key})
    return key


def check_prefix(prefix: str) -> str:
    """A list prefix: empty, or a valid key optionally ending in ``/``."""
    if prefix:
        check_key(prefix.rstrip("/") if prefix.endswith("/") else prefix)
    return prefix


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def put_file(self, key: str, path: Path) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def get_file(self, key: str, path: Path) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def list(self, prefix: str = "") -> list[ObjectInfo]: ...

    async def exists(self, key: str) -> bool: ...


class LocalObjectStore:
    """Objects as files under ``root`` (created 0700)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _put_file_sync(self, key: str, src: Path | None, data: bytes | None) -> None:
        dest = self._path(key)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=".put-", dir=dest.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                if data is not None:
                    out.write(data)
                else:
                    assert src is not None
                    with open(src, "rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put_file_sync, key, None, bytes(data))

    async def put_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._put_file_sync, key, Path(path), None)

    def _get_sync(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r}", details={"key": key}) from None

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get_sync, key)

    def _get_file_sync(self, key: str, path: Path) -> None:
        src = self._path(key)
        try:
            with open(src, "rb") as fh, open(path, "wb") as out:
                shutil.copyfileobj(fh, out, 1 << 20)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object {key!r}", details={"key": key}) from None

    async def get_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._get_file_sync, key, Path(path))

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(path.unlink, missing_ok=True)

    def _list_sync(self, prefix: str) -> list[ObjectInfo]:
        check_prefix(prefix)
        if not self.root.is_dir():
            return []
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(".put-"):
                    continue  # an upload in progress (or one a crash left behind)
                full = os.path.join(dirpath, name)
                key = os.path.relpath(full, self.root).replace(os.sep, "/")
                if key.startswith(prefix) and not os.path.islink(full):
                    found.append(ObjectInfo(key=key, size=os.path.getsize(full)))
        return sorted(found, key=lambda o: o.key)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        return await asyncio.to_thread(self._list_sync, prefix)

    async def exists(self, key: str) -> bool:
        path = self._path(key)
        return await asyncio.to_thread(path.is_file)


class S3ObjectStore:
    """Objects in ``bucket`` under an optional ``prefix`` (e.g. ``incidentfox/``)."""

    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 region: str | None = None, client_kwargs: dict[str, Any] | None = None) -> None:
        if not bucket:
            raise ValueError("S3ObjectStore needs a bucket (INCIDENTFOX_OBJECT_STORE_BUCKET)")
        self.bucket = bucket
        self.prefix = check_prefix(prefix.rstrip("/") + "/" if prefix else "")
        self.endpoint_url, self.region = endpoint_url, region
        self.client_kwargs = dict(client_kwargs or {})
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}  # a boto3 client does not pickle

    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            kwargs: dict[str, Any] = {"config": Config(retries={"max_attempts": 5, "mode": "standard"},
                                                       connect_timeout=10, read_timeout=60)}
            if self.endpoint_url:
                kwargs["endpoint_url"] = self.endpoint_url
            if self.region:
                kwargs["region_name"] = self.region
            self._client = boto3.client("s3", **kwargs, **self.client_kwargs)
        return self._client

    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _not_found(self, exc: Exception, key: str) -> Exception:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFound(f"no object {key!r}", details={"key": key})
        return ObjectStoreError(f"object store request failed: {code or type(exc).__name__}",
                                details={"key": key})

    async def put(self, key: str, data: bytes) -> None:
        full = self._k(key)
        await asyncio.to_thread(lambda: self.client().put_object(Bucket=self.bucket, Key=full, Body=bytes(data)))

    async def put_file(self, key: str, path: Path) -> None:
        full = self._k(key)
        await asyncio.to_thread(lambda: self.client().upload_file(str(path), self.bucket, full))

    def _get_sync(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client().get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()
        except ClientError as exc:
            raise self._not_found(exc, key) from None

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get_sync, key)

    def _get_file_sync(self, key: str, path: Path) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client().download_file(self.bucket, self._k(key), str(path))
        except ClientError as exc:
            raise self._not_found(exc, key) from None

    async def get_file(self, key: str, path: Path) -> None:
        await asyncio.to_thread(self._get_file_sync, key, Path(path))

    async def delete(self, key: str) -> None:
        full = self._k(key)
        await asyncio.to_thread(lambda: self.client().delete_object(Bucket=self.bucket, Key=full))

    def _list_sync(self, prefix: str) -> list[ObjectInfo]:
        check_prefix(prefix)
        found = []
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                        Prefix=self.prefix + prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                found.append(ObjectInfo(key=obj["Key"][len(self.prefix):], size=int(obj["Size"])))
        return sorted(found, key=lambda o: o.key)

    async def list(self, prefix: str = "") -> list[ObjectInfo]:
        return await asyncio.to_thread(self._list_sync, prefix)

    def _exists_sync(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client().head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as exc:
            if isinstance(self._not_found(exc, key), ObjectNotFound):
                return False
            raise self._not_found(exc, key) from None

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._exists_sync, key)


class ObjectStoreConfig(BaseModel):
    """Which store and where; picklable (built into a store inside each actor)."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["local", "s3"] = "local"
    root: Path | None = None            # local
    bucket: str = ""                    # s3
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: SecretStr | None = None      # static keys (MinIO, tests); else the default chain
    secret_access_key: SecretStr | None = None

    def build(self) -> ObjectStore:
        if self.kind == "s3":
            keys = ({"aws_access_key_id": self.access_key_id.get_secret_value(),
                     "aws_secret_access_key": self.secret_access_key.get_secret_value()}
                    if self.access_key_id and self.secret_access_key else {})
            return S3ObjectStore(bucket=self.bucket, prefix=self.prefix, endpoint_url=self.endpoint_url,
                                 region=self.region, client_kwargs=keys)
        if self.root is None:
            raise ValueError("a local object store needs a root folder")
        return LocalObjectStore(self.root)


def object_store_config(settings: Any) -> ObjectStoreConfig:
    """The platform's object store from ``Settings`` (``INCIDENTFOX_OBJECT_STORE_*``)."""
    if settings.object_store == "s3":
        return ObjectStoreConfig(kind="s3", bucket=settings.object_store_bucket or "",
                                 prefix=settings.object_store_prefix,
                                 endpoint_url=settings.object_store_endpoint_url or None,
                                 region=settings.object_store_region or None,
                                 access_key_id=settings.object_store_access_key_id,
                                 secret_access_key=settings.object_store_secret_access_key)
    root = settings.object_store_root or (settings.home / "objects")
    return ObjectStoreConfig(kind="local", root=Path(root).resolve())


def object_store_from_settings(settings: Any) -> ObjectStore:
    return object_store_config(settings).build()
