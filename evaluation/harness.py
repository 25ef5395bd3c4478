"""Run evaluation work items in parallel on Ray: a few CPU tasks, each scoring a batch of items.

Ranking is CPU-bound and a case takes tens of milliseconds, so one Ray task per case would spend
more on scheduling than on work. Items are split into ``workers × BATCHES_PER_WORKER`` batches;
each batch is one ``num_cpus=1`` task, so at most ``workers`` run at once and the progress bar still
moves several times per worker. Items are ``(function, args)`` pairs naming module-level functions
of :mod:`evaluation.scoring`, so tasks ship names and paths, not bundles.

``run_items(..., use_ray=False)`` runs the same items in-process (tests, debugging).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

BATCHES_PER_WORKER = 4

Item = tuple[Callable[..., Any], tuple[Any, ...]]


def _run_batch(items: Sequence[Item]) -> list[Any]:
    return [fn(*args) for fn, args in items]


def batches(items: Sequence[Item], *, workers: int) -> list[list[Item]]:
    n = max(1, min(len(items), workers * BATCHES_PER_WORKER))
    size = math.ceil(len(items) / n) if items else 0
    return [list(items[i:i + size]) for i in range(0, len(items), size)] if size else []


def ensure_ray(workers: int) -> bool:
    """Connect to ``RAY_ADDRESS`` or start a private local Ray (a free port, never Redis's 6379) unless
    Ray is already initialised; True if this call initialised it."""
    import ray

    if ray.is_initialized():
        return False
    common = {"log_to_driver": False, "configure_logging": False, "namespace": "incidentfox-eval"}
    from incidentfox.settings import Settings

    address = Settings().ray_address
    if address:   # an existing cluster sizes itself
        ray.init(address=address, **common)
    else:
        ray.init(address="local", num_cpus=workers, include_dashboard=False, **common)
    return True


def run_items(items: Sequence[Item], *, workers: int = 2, use_ray: bool = True,
              progress: Callable[[int], None] | None = None, timeout_s: float = 600.0) -> list[Any]:
    """Results in the order of ``items``; ``progress(n)`` is called as each batch of ``n`` finishes."""
    parts = batches(items, workers=workers)
    if not use_ray:
        out: list[Any] = []
        for part in parts:
            out.extend(_run_batch(part))
            if progress:
                progress(len(part))
        return out
    import ray

    task = ray.remote(num_cpus=1, max_retries=1)(_run_batch)
    refs = [task.remote(part) for part in parts]
    index = {ref: i for i, ref in enumerate(refs)}
    results: list[list[Any] | None] = [None] * len(refs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1, timeout=timeout_s)
        if not done:
            for ref in pending:
                ray.cancel(ref, force=True)
            raise TimeoutError(f"evaluation batches did not finish within {timeout_s:.0f} s")
        for ref in done:
            i = index[ref]
            results[i] = ray.get(ref)
            if progress:
                progress(len(parts[i]))
    return [r for part in results for r in (part or [])]
