"""A free local TCP port for a server that binds it later (the demo's platform, a test's server).

The kernel hands out its *ephemeral* range (``/proc/sys/net/ipv4/ip_local_port_range``, 32768-60999
on Linux) both for ``bind(("127.0.0.1", 0))`` and for the source port of every outgoing connection.
A port taken from that range and bound seconds later (after Ray starts, say) can meanwhile become the
source port of some connection on the machine, and the server then fails to bind (seen: Ray Serve's
proxy under a busy test run). So the port is drawn below that range, where only listeners go, and
is checked to be bindable now; no port is handed out twice by one process.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

LOWEST = 10000                  # below: well-known and registered services
_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_given: set[int] = set()
_lock = threading.Lock()
_random = random.SystemRandom()


def ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (32768 where the kernel does not say)."""
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int, host: str) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, below the ephemeral range, not given out before by this process
    (the kernel's choice, from the ephemeral range, only when the range below is too small or full)."""
    top = ephemeral_start()
    with _lock:
        if top - LOWEST >= 1000:
            for _ in range(500):
                port = _random.randrange(LOWEST, top)
                if port not in _given and _bindable(port, host):
                    _given.add(port)
                    return port
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        _given.add(port)
        return port
