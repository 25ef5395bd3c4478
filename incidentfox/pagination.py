"""One pagination style for every list endpoint: ``?limit=&cursor=`` in, ``{items, next_cursor}`` out.

* ``limit``: 1.. (``0`` or less is 422); values above :data:`MAX_LIMIT` are clamped to it (older
  endpoints accepted larger values, so they keep answering). Default :data:`DEFAULT_LIMIT`, or
  :data:`MAX_LIMIT` for lists that were never paged before (so today's callers still see all of a
  list up to that size).
* ``cursor``: the previous page's ``next_cursor``, opaque to clients: url-safe base64 of a JSON
  array holding the last item's sort key (keyset paging, so inserts between pages neither repeat
  nor skip items). ``next_cursor`` is ``null`` on the last page. A cursor that does not decode to a
  key of the right shape is ``422 invalid_cursor`` naming the problem.
* Every list is ordered by a unique key (e.g. ``(created_at, id)``), so pages never overlap.

:func:`fetch_page` pages an SQLAlchemy ``select``; :func:`page_list` an already sorted list;
:func:`envelope` shapes the answer (with the endpoint's older list key, if it had one, beside
``items``). :func:`page_params` is the FastAPI dependency for ``limit`` and ``cursor``; it only
reads them, so authorisation still runs before a cursor is decoded.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, Field, create_model
from sqlalchemy import Select, TypeDecorator, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from incidentfox.contracts import storable
from incidentfox.errors import Unprocessable

DEFAULT_LIMIT = 100
MAX_LIMIT = 500
MAX_CURSOR_CHARS = 512
MAX_OFFSET = 2**31 - 1   # ``offset``/``after`` of older endpoints: beyond it no list has rows
MAX_KEY_INT = 2**63      # a cursor's integer must fit the databases' BIGINT

T = TypeVar("T")
KeyKind = type   # int, str or datetime: the type of one component of a sort key


class InvalidCursor(Unprocessable):
    code = "invalid_cursor"


@dataclass(frozen=True)
class PageRequest:
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


FIRST_PAGE = PageRequest()


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def page_params(default_limit: int = DEFAULT_LIMIT) -> Callable[..., PageRequest]:
    """A FastAPI dependency reading ``limit`` and ``cursor`` (use with ``Depends``)."""

    def params(limit: int = Query(default_limit, ge=1, description=f"page size, 1..{MAX_LIMIT} "
                                  f"(larger values are clamped)"),
               cursor: str | None = Query(None, max_length=MAX_CURSOR_CHARS,
                                          description="the previous page's next_cursor")) -> PageRequest:
        return PageRequest(limit=min(limit, MAX_LIMIT), cursor=cursor or None)

    return params


# ``limit``/``cursor`` of a list route: default 100; the "Long" variant defaults to MAX_LIMIT, for
# lists that answered everything before they were paged.
PageDep = Annotated[PageRequest, Depends(page_params())]
LongPageDep = Annotated[PageRequest, Depends(page_params(MAX_LIMIT))]


def encode_cursor(key: Sequence[Any]) -> str:
    """The opaque cursor for a sort key (ints, strings and datetimes)."""
    parts = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, kinds: Sequence[KeyKind], *, legacy_int: bool = False) -> tuple | None:
    """The sort key inside ``cursor`` (None for none), checked against ``kinds``. ``legacy_int``:
    a bare decimal id (what older endpoints returned as ``next_cursor``) is accepted too."""
    if cursor is None or cursor == "":
        return None
    if legacy_int and tuple(kinds) == (int,) and cursor.isascii() and cursor.isdigit() \
            and len(cursor) < 20 and int(cursor) < MAX_KEY_INT:
        return (int(cursor),)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise InvalidCursor("cursor is not one this API issued (pass next_cursor back unchanged)") from None
    if not isinstance(parts, list) or len(parts) != len(kinds):
        raise InvalidCursor("cursor does not fit this list (was it issued by another endpoint?)")
    return tuple(_typed(v, kind) for v, kind in zip(parts, kinds))


def _typed(value: Any, kind: KeyKind) -> Any:
    if kind is datetime and isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is not None:
                moment.astimezone(UTC)   # the databases compare in UTC: year 1 at +05:00 has none
            return moment
        except (ValueError, OverflowError):
            pass
    is_int = isinstance(value, int) and not isinstance(value, bool) and abs(value) < MAX_KEY_INT
    # No key this API issues holds a NUL or a lone surrogate, and no database compares one.
    if (kind is int and is_int) or (kind is str and isinstance(value, str) and _storable(value)):
        return value
    raise InvalidCursor("cursor does not fit this list (was it issued by another endpoint?)")


def _storable(value: str) -> bool:
    try:
        storable(value)
    except ValueError:
        return False
    return True


def after_key(order: Sequence[tuple[Any, bool]], key: Sequence[Any]) -> Any:
    """SQL condition: rows strictly after ``key`` in ``order`` (``(column, descending)`` pairs)."""
    clauses = []
    for i, (column, descending) in enumerate(order):
        equal = [c == v for (c, _), v in zip(order[:i], key[:i])]
        clauses.append(and_(*equal, column < key[i] if descending else column > key[i]))
    return or_(*clauses)


def _kind(column: Any) -> KeyKind:
    sql_type = column.type
    if isinstance(sql_type, TypeDecorator):   # e.g. incidentfox.db.UTCDateTime
        sql_type = sql_type.impl_instance
    python_type = sql_type.python_type
    return datetime if issubclass(python_type, datetime) else python_type


async def fetch_page(session: AsyncSession, stmt: Select, *, order: Sequence[tuple[Any, bool]],
                     page: PageRequest, legacy_int: bool = False, offset: int = 0) -> Page[Any]:
    """One page of ``stmt``'s rows (ORM entities) ordered by ``order``, after ``page.cursor``.
    ``order`` must end in a unique column. ``offset`` (older endpoints' parameter) skips rows after
    the cursor."""
    key = decode_cursor(page.cursor, [_kind(c) for c, _ in order], legacy_int=legacy_int)
    if key is not None:
        stmt = stmt.where(after_key(order, key))
    stmt = stmt.order_by(*[c.desc() if d else c.asc() for c, d in order]).limit(page.limit + 1)
    if offset:
        stmt = stmt.offset(offset)
    rows = list((await session.scalars(stmt)).all())
    more = len(rows) > page.limit
    rows = rows[:page.limit]
    last = rows[-1] if more else None
    return Page(rows, encode_cursor([getattr(last, c.key) for c, _ in order]) if last is not None else None)


def page_list(items: Sequence[T], page: PageRequest, *, key: Callable[[T], Sequence[Any]],
              kinds: Sequence[KeyKind]) -> Page[T]:
    """One page of ``items``, which are already in ``key`` order (ascending, unique keys)."""
    after = decode_cursor(page.cursor, kinds)
    start = 0
    if after is not None:
        start = next((i for i, item in enumerate(items) if tuple(key(item)) > after), len(items))
    chosen = list(items[start:start + page.limit])
    more = start + page.limit < len(items)
    return Page(chosen, encode_cursor(key(chosen[-1])) if more and chosen else None)


def envelope(page: Page[Any], *, legacy_key: str | None = None, **extra: Any) -> dict[str, Any]:
    """``{items, next_cursor}``, plus the endpoint's older key for the same list and any ``extra``."""
    body: dict[str, Any] = {**extra, "items": page.items, "next_cursor": page.next_cursor}
    if legacy_key is not None:
        body[legacy_key] = page.items
    return body


class PageEnvelope(BaseModel):
    """The list envelope, for OpenAPI."""

    items: list[dict[str, Any]] = Field(description="this page's items")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


def page_responses(name: str, legacy_key: str | None = None) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a list route: documents the envelope (and the older key) without
    filtering the answer the way ``response_model`` would."""
    return {200: {"model": _page_model(name, legacy_key), "description": "one page of the list"}}


@cache
def _page_model(name: str, legacy_key: str | None) -> type[PageEnvelope]:
    fields: dict[str, Any] = {}
    if legacy_key is not None:
        fields[legacy_key] = (list[dict[str, Any]], Field(description="the same items (older key)"))
    return create_model(name, __base__=PageEnvelope, **fields)
