"""When a message may go out: the config's send window and the SMS quiet hours, in the recipient's time zone.

Pure functions of their arguments (no clock, no database), so every rule is unit-tested on its own.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.leads import Channel
from schemas.messaging import SendWindow

SMS_OPENS = "08:00"
SMS_CLOSES = "21:00"
"""SMS never goes out between 21:00 and 08:00 recipient time, whatever the send window says."""

# A weekly window opens at least once in any 8 days; one day before covers a window opened yesterday
# that runs past midnight, and the spare week leaves room for a window that only opens at a DST edge.
_LOOKBACK_DAYS = 1
_HORIZON_DAYS = 16

Interval = tuple[datetime, datetime]


class WindowNeverOpens(ValueError):
    """The window (intersected with the SMS quiet hours) contains no instant at all."""


def _clock(hhmm: str) -> timedelta:
    hours, minutes = hhmm.split(":")
    return timedelta(hours=int(hours), minutes=int(minutes))


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    """False for a wall-clock time skipped by a daylight-saving jump (02:30 on a spring-forward night)."""
    round_trip = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return round_trip == wall


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first real instant at or after a wall-clock time.

    A skipped time opens when the clock lands after the jump; a repeated time (autumn) means its first
    occurrence. Offsets change on whole minutes, and window times are whole minutes too.
    """
    while not _exists(wall, zone):
        wall += timedelta(minutes=1)
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _daily_intervals(
    zone: ZoneInfo, first_day: date, start: str, end: str, weekdays: set[int] | None
) -> list[Interval]:
    """``[opening, closing)`` in UTC for each allowed day; ``end <= start`` runs past midnight into the next day."""
    opens, closes = _clock(start), _clock(end)
    if closes <= opens:
        closes += timedelta(days=1)
    intervals = []
    for offset in range(_LOOKBACK_DAYS + _HORIZON_DAYS):
        day = first_day + timedelta(days=offset)
        if weekdays is not None and day.weekday() not in weekdays:
            continue
        midnight = datetime.combine(day, time())
        intervals.append((_instant(midnight + opens, zone), _instant(midnight + closes, zone)))
    return intervals


def _intersect(left: list[Interval], right: list[Interval]) -> list[Interval]:
    overlaps = []
    for left_start, left_end in left:
        for right_start, right_end in right:
            start, end = max(left_start, right_start), min(left_end, right_end)
            if start < end:
                overlaps.append((start, end))
    return sorted(overlaps)


def next_send_time(not_before: datetime, zone: ZoneInfo, window: SendWindow | None, channel: Channel) -> datetime:
    """The first instant at or after ``not_before`` inside ``window`` (and, for SMS, outside quiet hours).

    ``window`` is read in ``zone``: ``start``/``end`` are wall-clock ``HH:MM`` (``end`` may be ``24:00``, and an
    ``end`` at or before ``start`` closes the next day); ``days`` are the weekdays a window *opens* on
    (Monday=0). No window means "any time". Returns an aware UTC datetime.
    """
    moment = not_before.replace(tzinfo=UTC) if not_before.tzinfo is None else not_before.astimezone(UTC)
    if window is None and channel != Channel.sms:
        return moment
    first_day = moment.astimezone(zone).date() - timedelta(days=_LOOKBACK_DAYS)
    open_at: list[Interval] = [(moment, moment + timedelta(days=_HORIZON_DAYS))]
    if window is not None:
        open_at = _daily_intervals(zone, first_day, window.start, window.end, set(window.days))
    if channel == Channel.sms:
        open_at = _intersect(open_at, _daily_intervals(zone, first_day, SMS_OPENS, SMS_CLOSES, None))
    for opening, closing in open_at:
        if closing > moment:
            return max(opening, moment)
    # Only reachable for SMS: a valid window alone opens within a week.
    raise WindowNeverOpens(f"the send window never overlaps the SMS hours {SMS_OPENS}-{SMS_CLOSES} recipient time")
