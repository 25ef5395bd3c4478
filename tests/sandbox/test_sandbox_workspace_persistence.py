"""Persistent workspaces: snapshots saved after each turn, restored byte-identical on any host after
the hosting actor is killed (local-folder store and S3 on moto), refused when unsafe, deleted with
the session at TTL, and stale local copies collected. No bubblewrap needed: the agent uses the file
tools, and the special entries (modes, symlinks) are laid down by the test itself."""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto_kit import moto_server

from actors.sandbox.client import LocalSandboxBackend, RaySandboxBackend
from actors.sandbox.config import SandboxRuntime
from actors.sandbox.host import OWNERS_DIR, SandboxHostCore
from actors.sandbox.manager import get_or_create_manager
from actors.sandbox.snapshot import SnapshotRejected, Snapshots, fingerprint, pack, snapshot_key, unpack
from actors.sandbox.store import SandboxStore
from actors.sandbox.testing import Reply, ScriptedAnthropicServer, Text, ToolUse
from incidentfox.object_store import LocalObjectStore, ObjectStoreConfig
from tests.sandbox_helpers import needs_root

BUCKET = "ifx-sandbox-test"
UID = 271_001


def tree(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything that must survive: per path, type, permission bits, content or link target, mtime."""
    out: dict[str, tuple[Any, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", stat.S_IMODE(st.st_mode), Path(full).read_bytes(), int(st.st_mtime))
            else:
                out[rel] = ("special", stat.S_IFMT(st.st_mode))
    return out


def lay_down(ws: Path, outside: Path) -> None:
    """Modes, nested dirs, binary content, symlinks (inside, dangling, pointing out), empty dir."""
    (ws / "bin").mkdir(mode=0o755)
    (ws / "bin" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(ws / "bin" / "run.sh", 0o750)
    (ws / "secret.key").write_bytes(os.urandom(4096))
    os.chmod(ws / "secret.key", 0o600)
    (ws / "data").mkdir()
    (ws / "data" / "deep").mkdir()
    (ws / "data" / "deep" / "blob.bin").write_bytes(bytes(range(256)) * 40)
    (ws / "empty").mkdir(mode=0o700)
    (ws / "ro").mkdir()
    (ws / "ro" / "frozen.txt").write_text("frozen")
    os.chmod(ws / "ro", 0o555)
    os.symlink("bin/run.sh", ws / "run")
    os.symlink("missing-target", ws / "dangling")
    os.symlink(str(outside), ws / "escape")          # points out: stored as a link, never followed
    os.mkfifo(ws / "pipe")                            # not content: skipped, never blocks the save


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "host-secret").write_text("do not copy me")
    return d


# -- pack / unpack ---------------------------------------------------------------------------------


def test_pack_unpack_round_trip_is_byte_identical(tmp_path: Path, outside: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    lay_down(ws, outside)
    buf = io.BytesIO()
    pack(ws, buf)
    with tarfile.open(fileobj=io.BytesIO(buf.getvalue())) as tar:
        names = tar.getnames()
    assert "pipe" not in names and not any("host-secret" in n for n in names)
    dest = tmp_path / "dest"
    dest.mkdir()
    unpack(io.BytesIO(buf.getvalue()), dest, uid=UID, gid=UID, max_bytes=1 << 30)
    expected = {k: v for k, v in tree(ws).items() if k != "pipe"}
    assert tree(dest) == expected
    if os.geteuid() == 0:
        assert {os.lstat(dest / k).st_uid for k in expected} == {UID}
    assert fingerprint(dest) != fingerprint(ws)  # the FIFO is part of the source's shape only
    os.chmod(ws / "ro", 0o755)
    os.chmod(dest / "ro", 0o755)


def _archive(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, **kw: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for k, v in kw.items():
        setattr(info, k, v)
    return info


@pytest.mark.parametrize("members, why", [
    ([(_info("/etc/cron.d/x"), b"x")], "absolute"),
    ([(_info("../escape"), b"x")], "'..'"),
    ([(_info("a/../../escape"), b"x")], "'..'"),
    ([(_info("link", tarfile.SYMTYPE, linkname="/etc"), None), (_info("link/passwd"), b"x")], "symlink"),
    ([(_info("hard", tarfile.LNKTYPE, linkname="/etc/passwd"), None)], "not a file"),
    ([(_info("dev", tarfile.CHRTYPE, devmajor=1, devminor=3), None)], "not a file"),
    ([(_info("a"), b"1"), (_info("a"), b"2")], "twice"),
    ([(_info("big"), b"x" * 2048)], "more than"),
])
def test_unsafe_snapshots_are_refused(tmp_path: Path, outside: Path, members: list[Any], why: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(SnapshotRejected, match=why):
        unpack(io.BytesIO(_archive(members)), dest, uid=UID, gid=UID, max_bytes=1024)
    assert not Path("/etc/cron.d/x").exists() and not (tmp_path / "escape").exists()


async def test_a_refused_snapshot_leaves_the_workspace_alone(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    scratch = tmp_path / "root"
    scratch.mkdir()
    ws = scratch / "sbx_1"
    ws.mkdir()
    (ws / "keep.txt").write_text("mine")
    await store.put(snapshot_key("sbx_1"), _archive([(_info("../../x"), b"x")]))
    with pytest.raises(SnapshotRejected):
        await Snapshots(store, scratch=scratch, max_bytes=1 << 20).restore("sbx_1", ws, uid=UID, gid=UID)
    assert tree(ws) == {"keep.txt": ("file", 0o644, b"mine", int(os.stat(ws / "keep.txt").st_mtime))}
    assert sorted(p.name for p in scratch.iterdir()) == ["sbx_1"]  # no staging left behind


async def test_unchanged_workspace_is_not_uploaded_again(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a").write_text("1")
    snaps = Snapshots(store, scratch=tmp_path, max_bytes=1 << 20)
    assert (await snaps.save("sbx_2", ws)).uploaded
    assert not (await snaps.save("sbx_2", ws)).uploaded
    (ws / "a").write_text("22")
    assert (await snaps.save("sbx_2", ws)).uploaded


# -- across a killed host, on both stores ----------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        boto3.client("s3", region_name="us-east-1", endpoint_url=url, aws_access_key_id="testing",
                     aws_secret_access_key="testing").create_bucket(Bucket=BUCKET)
        yield url


@pytest.fixture(params=["local", "s3"])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStoreConfig:
    if request.param == "local":
        return ObjectStoreConfig(kind="local", root=tmp_path / "objects")
    return ObjectStoreConfig(kind="s3", bucket=BUCKET, prefix=f"t{uuid.uuid4().hex[:8]}",
                             endpoint_url=request.getfixturevalue("moto_url"), region="us-east-1",
                             access_key_id="testing", secret_access_key="testing")


def llm(server: ScriptedAnthropicServer) -> dict[str, Any]:
    return {"provider": "anthropic", "model": "claude-test", "base_url": server.url, "api_key": "sk-test"}


async def collect(agen: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [ev async for ev in agen]


@pytest.mark.ray
@needs_root
async def test_workspace_survives_a_killed_host_on_another_node(ray_session: None, sqlite_url: str, root: Path,
                                                                  outside: Path,
                                                                  store_config: ObjectStoreConfig) -> None:
    import ray

    runtime = SandboxRuntime(root=root, db_url=sqlite_url, uid_base=360_000, uid_count=20_000,
                             namespace=f"sbx-persist-{uuid.uuid4().hex[:8]}", sweep_interval_s=3600,
                             object_store=store_config)
    manager = get_or_create_manager(runtime, prewarm=[{}], detached=False)
    await manager.start.remote()
    backend = RaySandboxBackend(manager, namespace=runtime.namespace)
    try:
        with ScriptedAnthropicServer() as server:
            server.add(Reply([ToolUse("Write", {"file_path": "notes/incident.md", "content": "5xx since 10:02\n"})]),
                       Reply([Text("Noted.")]),
                       Reply([ToolUse("Read", {"file_path": "notes/incident.md"})]),
                       Reply([Text("Since 10:02.")]))
            sid = (await backend.create_session(org_id="acme", team_id="sre"))["session_id"]
            ws = root / sid
            lay_down(ws, outside)
            turn1 = await collect(backend.send_message(sid, text="note it", llm=llm(server)))
            assert turn1[-1]["type"] == "result"
            before = {k: v for k, v in tree(ws).items() if k != "pipe"}
            assert before["notes/incident.md"][2] == b"5xx since 10:02\n"

            first = await manager.where.remote(session_id=sid)
            ray.kill(ray.get_actor(first, namespace=runtime.namespace), no_restart=True)
            # The session resumes on another node: this node's copy is gone.
            os.chmod(ws / "ro", 0o755)
            shutil.rmtree(ws)

            turn2 = await collect(backend.send_message(sid, text="since when?", llm=llm(server)))
            assert turn2[-1]["text"] == "Since 10:02."
            assert next(e for e in turn2 if e["type"] == "tool_end")["output"] == "     1\t5xx since 10:02"
            assert await manager.where.remote(session_id=sid) not in (None, first)
            assert tree(ws) == before  # content, modes, symlinks (and mtimes), byte for byte
            assert os.readlink(ws / "escape") == str(outside)  # restored as a link, nothing copied from it

            # Deleted with the session at TTL: the snapshot goes too.
            objects = store_config.build()
            assert await objects.exists(snapshot_key(sid))
            row = await SandboxStore(sqlite_url).get_session(session_id=sid)
            assert await manager.sweep.remote(now=row.expires_at + timedelta(seconds=1)) == [sid]
            assert not await objects.exists(snapshot_key(sid))
            assert not ws.exists()
    finally:
        ray.kill(manager)


# -- end of session and stale copies (in-process) --------------------------------------------------


async def test_interrupt_saves_and_delete_removes_the_snapshot(sqlite_url: str, root: Path, tmp_path: Path) -> None:
    cfg = ObjectStoreConfig(kind="local", root=tmp_path / "objects")
    runtime = SandboxRuntime(root=root, db_url=sqlite_url, uid_base=380_000, uid_count=10_000,
                             sweep_interval_s=3600, object_store=cfg)
    b = LocalSandboxBackend(runtime)
    objects = cfg.build()
    with ScriptedAnthropicServer() as server:
        server.add(Reply([ToolUse("Write", {"file_path": "a.txt", "content": "A"})]),
                   Reply([Text("a long answer that gets cut")], stall_s=30))
        sid = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
        stream = b.send_message(sid, text="write then think", llm=llm(server))
        async for ev in stream:
            if ev["type"] == "thought":
                break                       # the write is done, the model is now stalled
        assert not await objects.exists(snapshot_key(sid))
        assert await b.interrupt(sid)
        assert [ev async for ev in stream][-1]["type"] == "interrupted"
    # The interrupted turn's files were saved: another node restores them.
    dest = tmp_path / "elsewhere"
    dest.mkdir()
    with (tmp_path / "snap.tgz").open("wb") as fh:
        fh.write(await objects.get(snapshot_key(sid)))
    with (tmp_path / "snap.tgz").open("rb") as fh:
        unpack(fh, dest, uid=UID, gid=UID, max_bytes=1 << 20)
    assert (dest / "a.txt").read_text() == "A"
    host = next(iter(b.manager.hosts.values())).handle
    assert sid in host.sessions and sid in host.snapshots._last
    assert await b.delete_session(sid)
    assert not await objects.exists(snapshot_key(sid))
    assert not (root / sid).exists() and not (root / OWNERS_DIR / sid).exists()
    # Nothing of the session stays in its host's memory (a host holds many sessions over its life).
    assert host.sessions == {} and host._loading == {} and host.snapshots._last == {}
    stats = await b.stats()
    assert stats["sessions"] == 0 and stats["hosts"][0]["sessions"] == 0 and b.manager.by_session == {}


async def test_stale_local_copies_are_collected(sqlite_url: str, root: Path) -> None:
    runtime = SandboxRuntime(root=root, db_url=sqlite_url, uid_base=385_000, uid_count=10_000, sweep_interval_s=3600)
    b = LocalSandboxBackend(runtime)
    moved = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
    here = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
    ended = (await b.create_session(org_id="acme", team_id="sre"))["session_id"]
    store = SandboxStore(sqlite_url)
    await store.set_host(session_id=moved, host="sandbox-host-on-another-node")   # resumed elsewhere
    await store.end_session(session_id=ended, status="expired", reason="ttl")
    (root / ".restore-sbx_x-1").mkdir()                                            # a crashed restore
    # A fresh host on this node (the old one is gone): none of these are its sessions.
    host = SandboxHostCore(runtime, name="sandbox-host-new")
    import time

    assert await host.gc_workspaces() == []                                        # all within the grace
    removed = await host.gc_workspaces(now=time.time() + 3600)
    assert sorted(removed) == sorted([moved, ended])
    assert (root / here).is_dir() and not (root / moved).exists() and not (root / ended).exists()
    assert not (root / ".restore-sbx_x-1").exists()
    await store.close()


async def test_unreadable_store_fails_the_resume_not_the_create(sqlite_url: str, root: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Create never reads the store (a new session has no snapshot); a resume that cannot read it is
    503 workspace_unavailable rather than an empty workspace that the next save would store."""
    from actors.sandbox.errors import WorkspaceUnavailable
    from incidentfox.object_store import ObjectStoreError

    async def unreachable(self: Snapshots, *args: Any, **kwargs: Any) -> Any:
        raise ObjectStoreError("object store request failed: ServiceUnavailable")

    monkeypatch.setattr(Snapshots, "restore", unreachable)
    runtime = SandboxRuntime(root=root, db_url=sqlite_url, uid_base=388_000, uid_count=1_000, sweep_interval_s=3600,
                             object_store=ObjectStoreConfig(kind="local", root=tmp_path / "objects"))
    sid = (await LocalSandboxBackend(runtime).create_session(org_id="acme", team_id="sre"))["session_id"]
    other_host = LocalSandboxBackend(runtime)  # the first host is gone
    with ScriptedAnthropicServer() as server, pytest.raises(WorkspaceUnavailable) as err:
        await collect(other_host.send_message(sid, text="hi", llm=llm(server)))
    assert err.value.status == 503 and err.value.code == "workspace_unavailable"
