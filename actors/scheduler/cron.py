"""Cron evaluation in a schedule's own IANA timezone, with a documented DST policy.

Cron expressions describe wall-clock times. We iterate wall-clock (naive local) times with croniter
and only then map each to an instant, so:

* **Fall back** (a wall time happens twice): the job runs once, at the first occurrence
  (``fold=0``). croniter on aware datetimes would run a daily 01:30 job twice that night.
* **Spring forward** (a wall time does not exist): the job still runs that day, as many minutes
  after the transition as the wall time was past it (02:30 on a 02:00→03:00 night runs at 03:30).
* End-of-month: ``L`` in the day-of-month field means the month's last day; a plain ``31`` fires only
  in months that have a 31st (standard cron).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError


class ScheduleError(ValueError):
    """A schedule's cron expression or timezone is invalid."""


def validate(expr: str, tz: str) -> None:
    zone(tz)
    if not croniter.is_valid(expr):
        raise ScheduleError(f"invalid cron expression: {expr!r}")


def zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown IANA timezone: {tz!r}") from exc


def _to_utc(naive_local: datetime, tz: ZoneInfo) -> datetime:
    # fold=0: first occurrence of an ambiguous time; for a nonexistent time, zoneinfo applies the
    # offset in force before the transition, which lands the same distance past it.
    return naive_local.replace(tzinfo=tz, fold=0).astimezone(UTC)


def fire_times(expr: str, tz: str, *, after: datetime, until: datetime, limit: int = 10_000) -> list[datetime]:
    """UTC instants in ``(after, until]`` at which ``expr`` fires in ``tz``, ascending, unique."""
    validate(expr, tz)
    zi = zone(tz)
    # Start a little early in local time so a gap-shifted fire just after `after` is not missed.
    start_local = after.astimezone(zi).replace(tzinfo=None) - timedelta(hours=3)
    try:
        it = croniter(expr, start_local)
    except CroniterError as exc:
        raise ScheduleError(str(exc)) from exc
    out: list[datetime] = []
    horizon = until + timedelta(hours=3)
    while len(out) < limit:
        local = it.get_next(datetime)
        at = _to_utc(local, zi)
        if at > horizon:
            break
        if after < at <= until and (not out or at > out[-1]):
            out.append(at)
    return out


def next_fire(expr: str, tz: str, *, after: datetime) -> datetime:
    """The first fire time strictly after ``after``."""
    window = timedelta(days=1)
    for _ in range(400):  # a cron with any valid day fires within ~4 years of days; bounded anyway
        found = fire_times(expr, tz, after=after, until=after + window, limit=1)
        if found:
            return found[0]
        window *= 2
    raise ScheduleError(f"{expr!r} never fires")
