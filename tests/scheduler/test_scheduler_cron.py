"""Cron and timezone edge cases: DST in both directions, end of month, invalid input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from actors.scheduler.cron import ScheduleError, fire_times, next_fire


def test_fall_back_runs_once_at_first_occurrence():
    # 2026-11-01: New York repeats 01:00–02:00 (EDT → EST). A daily 01:30 job runs once that night.
    got = fire_times("30 1 * * *", "America/New_York",
                     after=datetime(2026, 10, 31, 12, tzinfo=UTC), until=datetime(2026, 11, 2, 12, tzinfo=UTC))
    assert got == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC),   # 01:30 EDT (first occurrence)
                   datetime(2026, 11, 2, 6, 30, tzinfo=UTC)]   # 01:30 EST next day


def test_spring_forward_shifts_past_the_gap():
    # 2026-03-08: New York skips 02:00–03:00. A daily 02:30 job runs at 03:30 EDT that day.
    got = fire_times("30 2 * * *", "America/New_York",
                     after=datetime(2026, 3, 7, 12, tzinfo=UTC), until=datetime(2026, 3, 9, 12, tzinfo=UTC))
    assert got == [datetime(2026, 3, 8, 7, 30, tzinfo=UTC), datetime(2026, 3, 9, 6, 30, tzinfo=UTC)]


def test_weekly_monday_0900_in_berlin_across_dst():
    got = fire_times("0 9 * * 1", "Europe/Berlin",
                     after=datetime(2026, 3, 20, tzinfo=UTC), until=datetime(2026, 4, 7, tzinfo=UTC))
    # 2026-03-23 is CET (+1), 2026-03-30 and 04-06 are CEST (+2): always 09:00 local.
    assert got == [datetime(2026, 3, 23, 8, tzinfo=UTC), datetime(2026, 3, 30, 7, tzinfo=UTC),
                   datetime(2026, 4, 6, 7, tzinfo=UTC)]


def test_end_of_month_last_day_and_31st():
    last = fire_times("0 9 L * *", "UTC", after=datetime(2026, 1, 1, tzinfo=UTC),
                      until=datetime(2026, 4, 1, tzinfo=UTC))
    assert [d.day for d in last] == [31, 28, 31]
    thirty_first = fire_times("0 9 31 * *", "UTC", after=datetime(2026, 1, 1, tzinfo=UTC),
                              until=datetime(2026, 6, 1, tzinfo=UTC))
    assert [(d.month, d.day) for d in thirty_first] == [(1, 31), (3, 31), (5, 31)]
    leap = fire_times("0 0 29 2 *", "UTC", after=datetime(2026, 1, 1, tzinfo=UTC),
                      until=datetime(2029, 1, 1, tzinfo=UTC))
    assert leap == [datetime(2028, 2, 29, tzinfo=UTC)]


def test_bounds_are_exclusive_then_inclusive():
    at = datetime(2026, 5, 1, 9, tzinfo=UTC)
    assert fire_times("0 9 * * *", "UTC", after=at, until=at) == []
    assert fire_times("0 9 * * *", "UTC", after=at.replace(hour=8), until=at) == [at]
    assert next_fire("0 9 * * *", "UTC", after=at) == at.replace(day=2)


@pytest.mark.parametrize("expr,tz", [("not a cron", "UTC"), ("0 9 * * *", "Mars/Olympus"),
                                     ("61 * * * *", "UTC")])
def test_invalid_schedules_raise_typed_error(expr, tz):
    with pytest.raises(ScheduleError):
        fire_times(expr, tz, after=datetime(2026, 1, 1, tzinfo=UTC), until=datetime(2026, 1, 2, tzinfo=UTC))
