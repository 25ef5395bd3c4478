"""The process's one low-priority thread for building indexes (clustering, embedding new chunks).

A build (the knowledge app's sweep, ``incidentfox kb rebuild``) shares its cores with requests and
investigations; run at a nice value :data:`BUILD_NICE` higher, it uses what they leave instead of
competing with them. One dedicated thread, because on Linux the nice value belongs to a thread and an
unprivileged thread cannot lower it back: the default executor's threads, which also answer queries,
stay as they are. The offline model runs on the calling thread (one torch thread), so its work for a
build is done at that priority too.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

BUILD_NICE = 10       # added to the build thread's nice value
_executor: list[ThreadPoolExecutor] = []


def _lower_priority() -> None:
    try:
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, min(19, os.getpriority(os.PRIO_PROCESS, me) + BUILD_NICE))
    except (AttributeError, OSError):    # not Linux, or not permitted: normal priority
        pass


def build_thread() -> ThreadPoolExecutor:
    """The process's build thread (created on first use)."""
    if not _executor:
        _executor.append(ThreadPoolExecutor(1, thread_name_prefix="kb-build", initializer=_lower_priority))
    return _executor[0]
