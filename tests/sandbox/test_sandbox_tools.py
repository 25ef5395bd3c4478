"""The file tools and path confinement: round trips and the escape attempts that must be refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from actors.sandbox.config import SandboxLimits
from actors.sandbox.errors import PathEscape
from actors.sandbox.isolation import IsolationStatus
from actors.sandbox.search import glob_to_regex
from actors.sandbox.tools import BUILTIN_TOOLS, Toolbox
from actors.sandbox.workspace import Workspace
from tests.sandbox_helpers import random_uid


@pytest.fixture
def box(root: Path) -> Toolbox:
    ws = Workspace.ensure(root, "sbx_a", uid=random_uid())
    return Toolbox(ws, SandboxLimits(fsize_bytes=1 << 20), IsolationStatus("unavailable", "not in this test"))


def test_schemas_are_claude_code_shaped() -> None:
    by_name = {t["name"]: t for t in BUILTIN_TOOLS}
    assert set(by_name) == {"Read", "Write", "Edit", "Bash", "Grep", "Glob"}
    assert by_name["Read"]["input_schema"]["required"] == ["file_path"]
    assert by_name["Edit"]["input_schema"]["required"] == ["file_path", "old_string", "new_string"]
    assert by_name["Bash"]["input_schema"]["required"] == ["command"]
    for spec in BUILTIN_TOOLS:
        assert spec["description"] and spec["input_schema"]["type"] == "object"


async def test_write_read_edit_grep_glob_round_trip(box: Toolbox) -> None:
    out = await box.execute("Write", {"file_path": "/workspace/app/main.py", "content": "a = 1\nb = 2\na = 3\n"})
    assert not out.is_error and "Wrote 18 bytes to /workspace/app/main.py" in out.content
    real = box.workspace.path / "app" / "main.py"
    if os.geteuid() == 0:  # created files belong to the session UID so its Bash can change them
        assert real.stat().st_uid == box.workspace.uid
        assert (box.workspace.path / "app").stat().st_uid == box.workspace.uid
    read = await box.execute("Read", {"file_path": "app/main.py", "offset": 2, "limit": 1})
    assert read.content == "     2\tb = 2"
    ambiguous = await box.execute("Edit", {"file_path": "app/main.py", "old_string": "a =", "new_string": "c ="})
    assert ambiguous.is_error and "occurs 2 times" in ambiguous.content
    edited = await box.execute("Edit", {"file_path": "app/main.py", "old_string": "a =", "new_string": "c =",
                                        "replace_all": True})
    assert not edited.is_error and real.read_text() == "c = 1\nb = 2\nc = 3\n"
    missing = await box.execute("Edit", {"file_path": "app/main.py", "old_string": "zzz", "new_string": "y"})
    assert missing.is_error and "not found" in missing.content
    grep = await box.execute("Grep", {"pattern": r"c = \d", "output_mode": "content"})
    assert grep.content.splitlines() == ["/workspace/app/main.py:1:c = 1", "/workspace/app/main.py:3:c = 3"]
    assert (await box.execute("Grep", {"pattern": "b", "output_mode": "count"})).content == "/workspace/app/main.py:1"
    assert (await box.execute("Glob", {"pattern": "**/*.py"})).content == "/workspace/app/main.py"
    assert (await box.execute("Glob", {"pattern": "*.txt"})).content == "No files found"
    nofile = await box.execute("Read", {"file_path": "nope.txt"})
    assert nofile.is_error and "does not exist" in nofile.content
    assert (await box.execute("Read", {})).content == "missing required parameter(s): file_path"
    assert (await box.execute("Nope", {})).is_error


@pytest.mark.parametrize("path", ["../../../../etc/passwd", "/etc/passwd", "/workspace/../etc/passwd",
                                  "sub/../../x"])
async def test_read_outside_is_refused(box: Toolbox, path: str) -> None:
    out = await box.execute("Read", {"file_path": path})
    assert out.is_error and out.content.startswith("Refused:")
    assert "root:" not in out.content


async def test_symlinks_pointing_out_are_refused(box: Toolbox) -> None:
    ws = box.workspace.path
    os.symlink("/etc/passwd", ws / "passwd")
    os.symlink("/etc", ws / "etc")
    os.symlink("../sbx_b", ws / "other")
    for path in ("passwd", "etc/passwd", "/workspace/etc/hostname", "other/secret"):
        out = await box.execute("Read", {"file_path": path})
        assert out.is_error and "symlink that points outside" in out.content, (path, out)
    out = await box.execute("Write", {"file_path": "etc/evil.conf", "content": "x"})
    assert out.is_error and "Refused" in out.content
    assert not Path("/etc/evil.conf").exists()
    # Grep and Glob never follow links out of the workspace.
    assert (await box.execute("Grep", {"pattern": "root"})).content == "No matches found"
    assert (await box.execute("Glob", {"pattern": "**/*"})).content == "No files found"
    refused = await box.execute("Grep", {"pattern": "root", "path": "/etc"})
    assert refused.is_error


async def test_symlink_inside_workspace_is_followed(box: Toolbox) -> None:
    (box.workspace.path / "real.txt").write_text("hello\n")
    os.symlink("real.txt", box.workspace.path / "alias.txt")
    out = await box.execute("Read", {"file_path": "alias.txt"})
    assert out.content == "     1\thello"


async def test_writing_outside_is_refused(box: Toolbox, root: Path) -> None:
    for path in ("../escape.txt", "/tmp/escape.txt", str(root / "escape.txt")):
        out = await box.execute("Write", {"file_path": path, "content": "pwned"})
        assert out.is_error and "Refused" in out.content
    assert not (root / "escape.txt").exists() and not Path("/tmp/escape.txt").exists()


async def test_hard_links_are_refused(box: Toolbox, root: Path) -> None:
    outside = root / "outside.txt"
    outside.write_text("platform secret\n")
    os.link(outside, box.workspace.path / "hl.txt")
    out = await box.execute("Read", {"file_path": "hl.txt"})
    assert out.is_error and "hard links" in out.content


def test_open_does_not_follow_a_swapped_component(box: Toolbox, root: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The TOCTOU guard: a component that becomes a symlink after resolution is not followed."""
    ws = box.workspace
    (ws.path / "d").mkdir()
    (ws.path / "d" / "f").write_text("inside")
    real = ws.resolve("d/f")
    (root / "elsewhere").mkdir()
    (root / "elsewhere" / "f").write_text("outside")
    os.rename(ws.path / "d", ws.path / "d-old")
    os.symlink(root / "elsewhere", ws.path / "d")
    assert real == ws.path / "d" / "f"
    with pytest.raises(PathEscape):  # resolving again sees the link...
        ws.open("d/f", os.O_RDONLY)
    monkeypatch.setattr(ws, "resolve", lambda _path: real)  # ...and so does the walk, checked alone
    with pytest.raises(PathEscape, match="changed into a symlink"):
        ws.open("d/f", os.O_RDONLY)


def test_glob_translation() -> None:
    assert glob_to_regex("*.py").match("a/b/c.py")
    assert glob_to_regex("src/**/*.py").match("src/x.py")
    assert glob_to_regex("src/**/*.py").match("src/a/b/x.py")
    assert not glob_to_regex("src/*.py").match("src/a/x.py")
    assert glob_to_regex("*.{yml,yaml}").match("k8s/deploy.yaml")
    assert not glob_to_regex("*.{yml,yaml}").match("k8s/deploy.json")
