"""incidentfox.pagination: opaque cursors round-trip, bad ones are 422 invalid_cursor, pages of a
sorted list cover it exactly once, limits are bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from incidentfox.errors import install_error_handlers
from incidentfox.pagination import (
    MAX_LIMIT,
    InvalidCursor,
    PageDep,
    PageRequest,
    decode_cursor,
    encode_cursor,
    envelope,
    page_list,
)


def test_cursor_round_trips_and_is_opaque():
    at = datetime(2026, 12, 4, 16, 47, 38, 123456, tzinfo=UTC)
    cursor = encode_cursor([at, "run_1"])
    assert "run_1" not in cursor and "=" not in cursor
    assert decode_cursor(cursor, (datetime, str)) == (at, "run_1")
    assert decode_cursor(encode_cursor([7]), (int,)) == (7,)
    assert decode_cursor(None, (int,)) is None


@pytest.mark.parametrize("bad,kinds", [
    ("not base64 at all!", (int,)),
    (encode_cursor(["x"]), (int,)),                       # wrong type
    (encode_cursor([1, "a"]), (int,)),                     # wrong arity: another list's cursor
    (encode_cursor(["yesterday", "a"]), (datetime, str)),  # not a timestamp
    (encode_cursor([True]), (int,)),
    ("e30", (int,)),                                       # base64 of {}: not a key
    ("42", (int,)),                                        # digits are only accepted where legacy_int says so
])
def test_bad_cursors_are_named(bad, kinds):
    with pytest.raises(InvalidCursor) as exc:
        decode_cursor(bad, kinds)
    assert exc.value.status == 422 and exc.value.code == "invalid_cursor" and "cursor" in exc.value.message


def test_legacy_integer_cursor_is_accepted_where_asked():
    assert decode_cursor("42", (int,), legacy_int=True) == (42,)


def test_page_list_walks_every_item_once():
    items = [{"k": f"{i:03d}"} for i in range(11)]
    seen, cursor, pages = [], None, 0
    while True:
        page = page_list(items, PageRequest(limit=4, cursor=cursor), key=lambda x: (x["k"],), kinds=(str,))
        assert len(page.items) <= 4
        seen += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == items and pages == 3
    exact = page_list(items[:4], PageRequest(limit=4), key=lambda x: (x["k"],), kinds=(str,))
    assert exact.next_cursor is None                                # no empty trailing page


def test_envelope_keeps_the_older_key_beside_items():
    page = page_list([{"k": "a"}], PageRequest(limit=5), key=lambda x: (x["k"],), kinds=(str,))
    assert envelope(page, legacy_key="runs") == {"items": [{"k": "a"}], "next_cursor": None, "runs": [{"k": "a"}]}


def test_limit_is_bounded_and_a_bad_cursor_is_a_json_422():
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/things")
    async def things(page: PageDep) -> dict:
        decode_cursor(page.cursor, (int,))
        return {"limit": page.limit}

    client = TestClient(app)
    assert client.get("/things").json() == {"limit": 100}
    assert client.get("/things", params={"limit": 10_000}).json() == {"limit": MAX_LIMIT}
    r = client.get("/things", params={"limit": 0})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = client.get("/things", params={"cursor": "%%%"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_cursor"
