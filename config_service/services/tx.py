"""Transaction hygiene for write services.

Write services commit on success. :func:`rolls_back_on_error` makes them roll back on any error
too, so a refused write (404/409/422) never leaves its transaction open: on SQLite an open write
transaction holds the database write lock until the session closes, which would stall every other
writer while an in-process caller keeps its session.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

P = ParamSpec("P")
R = TypeVar("R")


def rolls_back_on_error(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        session: AsyncSession = args[0]  # type: ignore[assignment]
        try:
            return await fn(*args, **kwargs)
        except Exception:
            await session.rollback()
            raise

    return wrapper
