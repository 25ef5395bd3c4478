"""Documents from a Git repository: a shallow clone of one ref into a temporary folder, and the web
links of its files (so an RCA's citation opens the runbook at the exact commit it was read from).

``kb ingest`` accepts a repository address (``https://``, ``ssh://``, ``git://``, ``file://`` or
scp-like ``git@host:owner/repo.git``) with ``--ref`` and ``--git-path``; the files under that path
are ingested as from a folder, each with ``git_remote``, ``git_commit`` and ``git_path`` metadata
and, for GitHub- and GitLab-style hosts, a ``url`` to the file at that commit.

``git`` runs with no terminal prompt, no system or user config that could rewrite the address, and
a time limit; credentials written into an address (``https://user:token@host/...``) never reach an
error message, a document or a link.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from incidentfox.knowledge.models import InvalidDocument

_URL = re.compile(r"^(https?|ssh|git|file)://", re.IGNORECASE)
_SCP = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)[^\s]+$")
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$")
CLONE_TIMEOUT_S = 300


def is_git_address(value: str) -> bool:
    """Whether ``value`` names a repository rather than a local folder."""
    return bool(_URL.match(value) or _SCP.match(value))


def redact(address: str) -> str:
    """``address`` without a user name or password (safe for messages, metadata and links)."""
    if _SCP.match(address) and not _URL.match(address):
        return address.split("@", 1)[1] if "@" in address else address
    parts = urlsplit(address)
    if parts.username is None and parts.password is None:
        return address
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def web_url(remote: str, commit: str, path: str) -> str | None:
    """The page of ``path`` at ``commit`` on a GitHub- or GitLab-style host, else None."""
    remote = redact(remote)
    m = _SCP.match(remote) or re.match(r"^[A-Za-z0-9.-]+:(?!//)", remote)
    if m and not _URL.match(remote):
        host, _, repo = remote.partition(":")
    else:
        parts = urlsplit(remote)
        if parts.scheme.lower() not in ("https", "http", "ssh", "git"):
            return None
        host, repo = parts.hostname or "", parts.path
    repo = repo.strip("/").removesuffix(".git")
    if not host or repo.count("/") < 1:
        return None
    quoted = "/".join(p for p in PurePosixPath(path).parts)
    if "gitlab" in host.lower():
        return f"https://{host}/{repo}/-/blob/{commit}/{quoted}"
    if "github" in host.lower():
        return f"https://{host}/{repo}/blob/{commit}/{quoted}"
    return None


@dataclass(frozen=True)
class Checkout:
    remote: str          # the address without credentials
    commit: str
    root: Path           # the clone
    folder: Path         # the --git-path inside it

    def metadata(self, path_in_repo: str) -> dict[str, str]:
        return {"git_remote": self.remote, "git_commit": self.commit, "git_path": path_in_repo}

    def url(self, path_in_repo: str) -> str | None:
        return web_url(self.remote, self.commit, path_in_repo)


def _git(args: list[str], cwd: Path, address: str) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_ASKPASS": "/bin/false",
           "SSH_ASKPASS": "/bin/false", "LC_ALL": "C"}
    try:
        done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=CLONE_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise InvalidDocument("git is not installed: install it to ingest from a repository") from None
    except subprocess.TimeoutExpired:
        raise InvalidDocument(f"git {args[0]} of {redact(address)} took over {CLONE_TIMEOUT_S} s",
                              details={"repository": redact(address)}) from None
    if done.returncode:
        why = (done.stderr.strip().splitlines() or ["failed"])[-1].replace(address, redact(address))
        raise InvalidDocument(f"git {args[0]} of {redact(address)} failed: {why[:300]}",
                              details={"repository": redact(address)})
    return done.stdout


@contextmanager
def checkout(address: str, *, ref: str | None = None, path: str = "") -> Iterator[Checkout]:
    """A shallow clone of ``address`` at ``ref`` (a branch or tag; default: the remote's HEAD),
    removed on exit. ``path`` is relative to the repository's root (a leading ``/`` included) and
    must stay inside it."""
    if ref is not None and not _REF.match(ref) or ref and ".." in ref:
        raise InvalidDocument(f"not a branch or tag name: {ref!r}", details={"ref": ref})
    rel = PurePosixPath(path.strip("/") or ".")
    if rel.is_absolute() or ".." in rel.parts:
        raise InvalidDocument(f"--git-path must be a path inside the repository, got {path!r}",
                              details={"git_path": path})
    with tempfile.TemporaryDirectory(prefix="incidentfox-kb-git-") as tmp:
        work = Path(tmp)
        args = ["clone", "--quiet", "--depth", "1", "--no-tags", "--single-branch"]
        if ref:
            args += ["--branch", ref]
        _git([*args, "--", address, "repo"], work, address)
        root = work / "repo"
        commit = _git(["rev-parse", "HEAD"], root, address).strip()
        folder = (root / rel).resolve()
        if not folder.is_relative_to(root.resolve()) or not folder.is_dir():
            raise InvalidDocument(f"{path!r} is not a folder of {redact(address)} at {ref or 'HEAD'}",
                                  details={"git_path": path})
        yield Checkout(remote=redact(address), commit=commit, root=root, folder=folder)


def local_checkout(folder: Path) -> Checkout | None:
    """The Git checkout a local ``folder`` lies in (its ``origin`` and ``HEAD``), if any, so files
    ingested from a working copy link to their commit like cloned ones. None outside a checkout."""
    folder = folder.resolve()
    root = next((p for p in [folder, *folder.parents] if (p / ".git").exists()), None)
    if root is None:
        return None
    try:
        commit = _git(["rev-parse", "HEAD"], root, str(root)).strip()
    except InvalidDocument:
        return None     # a checkout with no commit yet, or git missing: plain files
    try:
        remote = redact(_git(["config", "--get", "remote.origin.url"], root, str(root)).strip())
    except InvalidDocument:
        remote = ""
    return Checkout(remote=remote, commit=commit, root=root, folder=folder)
