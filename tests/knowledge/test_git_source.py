"""Documents from a Git repository (incidentfox/knowledge/git_source.py): a real ``git`` against a
local repository served as ``file://``; addresses, refs and paths a user types are checked, and
credentials in an address never reach a message, metadata or link."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from incidentfox.knowledge.git_source import checkout, is_git_address, redact, web_url
from incidentfox.knowledge.models import InvalidDocument

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "runbooks"
    (root / "docs" / "db").mkdir(parents=True)
    (root / "docs" / "db" / "replication.md").write_text("# Replication lag\n\n## Mitigation\nRestart the replica.\n")
    (root / "README.md").write_text("# Runbooks\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "first")
    _git(root, "checkout", "-q", "-b", "next")
    (root / "docs" / "db" / "failover.md").write_text("# Failover\n\nPromote the standby.\n")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "second")
    _git(root, "checkout", "-q", "main")
    return root


def test_a_clone_of_a_ref_and_path_gives_the_commit_and_only_that_folder(repo: Path) -> None:
    with checkout(f"file://{repo}", path="docs") as co:
        assert co.commit == _git(repo, "rev-parse", "main")
        assert sorted(p.name for p in co.folder.rglob("*.md")) == ["replication.md"]
        assert co.metadata("docs/db/replication.md")["git_commit"] == co.commit
        root = co.root
    assert not root.exists()        # removed on exit
    with checkout(f"file://{repo}", ref="next", path="docs/db/") as co:
        assert co.commit == _git(repo, "rev-parse", "next")
        assert sorted(p.name for p in co.folder.glob("*.md")) == ["failover.md", "replication.md"]


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"path": "../outside"}, "inside the repository"),
    ({"path": "/etc"}, "is not a folder of"),    # a leading / means the repository's root
    ({"path": "missing"}, "is not a folder"),
    ({"ref": "--upload-pack=touch /tmp/x"}, "not a branch or tag"),
    ({"ref": "a..b"}, "not a branch or tag"),
    ({"ref": "no-such-branch"}, "failed"),
])
def test_bad_refs_and_paths_are_clear_errors(repo: Path, kwargs: dict, needle: str) -> None:
    with pytest.raises(InvalidDocument, match=needle), checkout(f"file://{repo}", **kwargs):
        pass


def test_credentials_in_an_address_never_reach_an_error(tmp_path: Path) -> None:
    address = f"https://deploy:s3cr3t-token@127.0.0.1:9/{tmp_path.name}/repo.git"
    with pytest.raises(InvalidDocument) as err, checkout(address):
        pass
    assert "s3cr3t-token" not in str(err.value) and "deploy" not in str(err.value)
    assert "s3cr3t-token" not in str(err.value.details)
    assert redact(address) == f"https://127.0.0.1:9/{tmp_path.name}/repo.git"


def test_addresses_and_links() -> None:
    assert is_git_address("https://github.com/acme/runbooks.git")
    assert is_git_address("git@github.com:acme/runbooks.git")
    assert is_git_address("file:///srv/runbooks")
    assert not is_git_address("runbooks/") and not is_git_address("/srv/runbooks") and not is_git_address("C:x")
    assert web_url("git@github.com:acme/runbooks.git", "abc", "docs/a.md") == \
        "https://github.com/acme/runbooks/blob/abc/docs/a.md"
    assert web_url("https://tok@gitlab.example.com/ops/rb.git", "abc", "a.md") == \
        "https://gitlab.example.com/ops/rb/-/blob/abc/a.md"
    assert web_url("file:///srv/runbooks", "abc", "a.md") is None
    assert web_url("https://git.example.com/ops/rb.git", "abc", "a.md") is None


def test_a_local_working_copy_links_to_its_origin_at_head(repo: Path, tmp_path: Path) -> None:
    from incidentfox.knowledge.git_source import local_checkout

    _git(repo, "remote", "add", "origin", "https://bot:tok@github.com/acme/runbooks.git")
    co = local_checkout(repo / "docs" / "db")
    assert co is not None and co.root == repo.resolve() and co.commit == _git(repo, "rev-parse", "HEAD")
    assert co.remote == "https://github.com/acme/runbooks.git"
    assert co.url("docs/db/replication.md") == f"https://github.com/acme/runbooks/blob/{co.commit}/docs/db/replication.md"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert local_checkout(plain) is None
