"""The send-window arithmetic on its own: business hours, quiet hours for SMS, DST, windows past midnight."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from activities.messaging.send_window import WindowNeverOpens, next_send_time
from schemas.leads import Channel
from schemas.messaging import SendWindow

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
BUSINESS_HOURS = SendWindow(start="09:00", end="17:00", days=[0, 1, 2, 3, 4])


def local(zone: ZoneInfo, *parts: int) -> datetime:
    year, month, day, hour, minute = parts
    return datetime(year, month, day, hour, minute, tzinfo=zone)


def test_no_window_sends_email_at_once_in_utc() -> None:
    moment = local(BERLIN, 2025, 6, 7, 3, 0)  # a Saturday night
    result = next_send_time(moment, BERLIN, None, Channel.email)
    assert result == moment
    assert result.tzinfo == UTC


def test_naive_moment_is_read_as_utc() -> None:
    assert next_send_time(datetime(2025, 6, 2, 12), BERLIN, None, Channel.email) == datetime(2025, 6, 2, 12, tzinfo=UTC)


def test_inside_the_window_goes_now() -> None:
    moment = local(NEW_YORK, 2025, 6, 4, 10, 30)  # Wednesday
    assert next_send_time(moment, NEW_YORK, BUSINESS_HOURS, Channel.email) == moment


def test_before_opening_waits_for_the_morning() -> None:
    moment = local(NEW_YORK, 2025, 6, 4, 6, 15)
    assert next_send_time(moment, NEW_YORK, BUSINESS_HOURS, Channel.email) == local(NEW_YORK, 2025, 6, 4, 9, 0)


def test_closing_time_is_exclusive_and_friday_evening_waits_for_monday() -> None:
    friday_close = local(NEW_YORK, 2025, 6, 6, 17, 0)
    monday = local(NEW_YORK, 2025, 6, 9, 9, 0)
    assert next_send_time(friday_close, NEW_YORK, BUSINESS_HOURS, Channel.email) == monday
    assert next_send_time(local(NEW_YORK, 2025, 6, 7, 12, 0), NEW_YORK, BUSINESS_HOURS, Channel.email) == monday


def test_the_window_is_read_in_the_recipients_zone() -> None:
    # 14:30 UTC on a Monday is 10:30 in New York (open) and 23:30 in Tokyo (closed until Tuesday morning).
    moment = datetime(2025, 6, 2, 14, 30, tzinfo=UTC)
    assert next_send_time(moment, NEW_YORK, BUSINESS_HOURS, Channel.email) == moment
    tokyo = ZoneInfo("Asia/Tokyo")
    assert next_send_time(moment, tokyo, BUSINESS_HOURS, Channel.email) == local(tokyo, 2025, 6, 3, 9, 0)


def test_window_past_midnight_belongs_to_the_day_it_opens() -> None:
    friday_night = SendWindow(start="22:00", end="06:00", days=[4])
    saturday_early = local(BERLIN, 2025, 6, 7, 3, 0)
    assert next_send_time(saturday_early, BERLIN, friday_night, Channel.email) == saturday_early
    saturday_morning = local(BERLIN, 2025, 6, 7, 7, 0)
    assert next_send_time(saturday_morning, BERLIN, friday_night, Channel.email) == local(BERLIN, 2025, 6, 13, 22, 0)


def test_end_of_day_is_written_24_00() -> None:
    evening = SendWindow(start="18:00", end="24:00", days=[0])
    assert next_send_time(local(BERLIN, 2025, 6, 2, 23, 59), BERLIN, evening, Channel.email) == local(
        BERLIN, 2025, 6, 2, 23, 59
    )
    assert next_send_time(local(BERLIN, 2025, 6, 3, 0, 0), BERLIN, evening, Channel.email) == local(
        BERLIN, 2025, 6, 9, 18, 0
    )


def test_business_hours_keep_their_wall_clock_across_a_dst_change() -> None:
    # New York leaves daylight time on Sunday 2 November 2025: 09:00 is 13:00 UTC before, 14:00 UTC after.
    friday_evening = local(NEW_YORK, 2025, 10, 31, 18, 0)
    assert next_send_time(friday_evening, NEW_YORK, BUSINESS_HOURS, Channel.email) == datetime(
        2025, 11, 3, 14, 0, tzinfo=UTC
    )
    assert next_send_time(local(NEW_YORK, 2025, 10, 30, 7, 0), NEW_YORK, BUSINESS_HOURS, Channel.email) == datetime(
        2025, 10, 30, 13, 0, tzinfo=UTC
    )


def test_an_opening_time_skipped_by_the_spring_jump_opens_when_the_clock_lands() -> None:
    # 9 March 2025 in New York: 02:00 EST jumps to 03:00 EDT (07:00 UTC); 02:30 never happens that night.
    night = SendWindow(start="02:30", end="05:00", days=[6])
    before = datetime(2025, 3, 9, 5, 0, tzinfo=UTC)  # 00:00 EST
    assert next_send_time(before, NEW_YORK, night, Channel.email) == datetime(2025, 3, 9, 7, 0, tzinfo=UTC)


def test_a_repeated_autumn_hour_opens_at_its_first_occurrence() -> None:
    # 2 November 2025 in New York: 01:00-02:00 happens twice; 01:30 first occurs at 05:30 UTC (EDT).
    night = SendWindow(start="01:30", end="03:00", days=[6])
    before = datetime(2025, 11, 2, 4, 0, tzinfo=UTC)  # 00:00 EDT
    assert next_send_time(before, NEW_YORK, night, Channel.email) == datetime(2025, 11, 2, 5, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("wall", "expected"),
    [
        ((2025, 6, 4, 12, 0), (2025, 6, 4, 12, 0)),  # daytime: now
        ((2025, 6, 4, 7, 59), (2025, 6, 4, 8, 0)),  # early morning: 08:00
        ((2025, 6, 4, 21, 0), (2025, 6, 5, 8, 0)),  # 21:00 is already quiet
        ((2025, 6, 4, 23, 30), (2025, 6, 5, 8, 0)),
        ((2025, 6, 7, 2, 0), (2025, 6, 7, 8, 0)),  # weekends too
    ],
)
def test_sms_never_goes_out_between_21_and_8(wall: tuple[int, ...], expected: tuple[int, ...]) -> None:
    assert next_send_time(local(BERLIN, *wall), BERLIN, None, Channel.sms) == local(BERLIN, *expected)


def test_sms_quiet_hours_clip_a_late_window() -> None:
    evening = SendWindow(start="18:00", end="23:00", days=[0, 1, 2, 3, 4, 5, 6])
    assert next_send_time(local(BERLIN, 2025, 6, 4, 20, 30), BERLIN, evening, Channel.sms) == local(
        BERLIN, 2025, 6, 4, 20, 30
    )
    assert next_send_time(local(BERLIN, 2025, 6, 4, 21, 30), BERLIN, evening, Channel.sms) == local(
        BERLIN, 2025, 6, 5, 18, 0
    )
    # The same late evening is fine by email.
    assert next_send_time(local(BERLIN, 2025, 6, 4, 21, 30), BERLIN, evening, Channel.email) == local(
        BERLIN, 2025, 6, 4, 21, 30
    )


@pytest.mark.parametrize(
    "window",
    [
        {"start": "09:00", "end": "17:00", "days": []},
        {"start": "09:00", "end": "17:00", "days": [7, 9]},
        {"start": "09:00", "end": "09:00", "days": [0]},
    ],
    ids=["no-days", "no-valid-day", "zero-length"],
)
def test_a_window_that_never_opens_is_refused_when_saved(window: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SendWindow.model_validate(window)


def test_an_sms_window_only_at_night_never_sends() -> None:
    """A snapshot taken before the config-time check existed still fails loudly instead of waiting forever."""
    night = SendWindow(start="22:00", end="06:00", days=[0, 1, 2, 3, 4, 5, 6])
    assert not night.allows_sms()
    with pytest.raises(WindowNeverOpens):
        next_send_time(datetime(2025, 6, 2, 12, tzinfo=UTC), BERLIN, night, Channel.sms)
