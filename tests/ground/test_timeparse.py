"""incidentfox.timeparse.parse_time: the one timestamp parser (webhooks, tools, evaluation, engine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from incidentfox.timeparse import parse_time

INSTANTS = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1),
                        timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)),
                                                   timezone(timedelta(hours=-8))]))
JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                       max_leaves=5)


def _is_utc(value: datetime | None) -> bool:
    return value is None or (value.tzinfo is UTC and value.year > 1)


@given(st.text())
def test_any_text_is_a_utc_datetime_or_none(text: str) -> None:
    assert _is_utc(parse_time(text))


@given(JSONISH)
def test_any_json_value_is_a_utc_datetime_or_none(value: object) -> None:
    assert _is_utc(parse_time(value))


@given(INSTANTS)
def test_iso_strings_round_trip(at: datetime) -> None:
    assert parse_time(at.isoformat()) == at
    assert parse_time(at.astimezone(UTC).isoformat().replace("+00:00", "Z")) == at
    assert parse_time(at) == at and parse_time(at).tzinfo is UTC


@given(st.integers(min_value=10**9, max_value=4 * 10**9))
def test_unix_timestamps_in_any_unit_agree(seconds: int) -> None:
    at = datetime.fromtimestamp(seconds, tz=UTC)
    for value in (seconds, seconds * 1000, seconds * 10**6, seconds * 10**9, str(seconds), f"{seconds}.0"):
        assert parse_time(value) == at, value


def test_the_formats_sources_send() -> None:
    assert parse_time("2024-01-02T03:04:05.123456789Z") == datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert parse_time("2025-03-18T06:18:38.834Z") == datetime(2025, 3, 18, 6, 18, 38, 834000, tzinfo=UTC)
    assert parse_time("2024-01-02T05:04:05+02:00") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_time("2024-01-02T03:04:05") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)   # no zone: UTC
    assert parse_time("1678252216.469172") == datetime.fromtimestamp(1678252216.469172, tz=UTC)  # Slack ts
    assert parse_time(datetime(2024, 1, 2)) == datetime(2024, 1, 2, tzinfo=UTC)


def test_what_is_not_a_timestamp_is_none() -> None:
    for value in (None, "", "  ", True, False, "yesterday", "2024-13-40T00:00:00Z", float("nan"), float("inf"),
                  "0001-01-01T00:00:00Z", "9" * 70, [], {"at": 1}, 10**30):
        assert parse_time(value) is None, value
