"""Helpers shared by the ``test_sandbox_*`` files (not a test module itself)."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest


def make_root() -> Path:
    """A sandbox root under /tmp. pytest's tmp_path is inside 0700 directories, which the
    unprivileged session UIDs could not traverse to reach their own workspace."""
    root = Path(tempfile.mkdtemp(prefix="ifx-sbx-test-", dir="/tmp"))
    os.chmod(root, 0o711)
    return root


def remove_root(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def random_uid() -> int:
    return random.randint(250_000, 290_000)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="per-session UIDs need root")
