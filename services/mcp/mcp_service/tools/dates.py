"""date_diff, date_add, day_of_week, calendar_facts: the proleptic Gregorian calendar, exactly."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from typing import Any

from mcp_service.tools.base import ToolOutput, failed, wrong

WEEKDAYS = list(calendar.day_name)
MONTHS = list(calendar.month_name)


def parse_when(text: str) -> date | datetime:
    """An ISO date (2024-02-01) or date-time (2024-02-01T13:30, with an optional offset or Z)."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise wrong(f"not a valid date: {text!r} ({exc})") from None


def _plural(n: int, unit: str) -> str:
    return f"{n:,} {unit}{'' if abs(n) == 1 else 's'}"


def add_months(day: date, months: int) -> date:
    """Calendar months; the day is clamped to the month's length (Jan 31 + 1 month = Feb 29 in 2024)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise failed("the date would leave the years 1-9999")
    return day.replace(year=year, month=month + 1, day=min(day.day, calendar.monthrange(year, month + 1)[1]))


def _months_between(start: date, end: date) -> tuple[int, int]:
    """Whole calendar months from start to end (start <= end) and the days left over."""
    months = (end.year - start.year) * 12 + end.month - start.month
    if add_months(start, months) > end:
        months -= 1
    return months, (end - add_months(start, months)).days


def business_days(start: date, end: date) -> int:
    """Weekdays (Mon-Fri) in [start, end) for start <= end."""
    days = (end - start).days
    weeks, rest = divmod(days, 7)
    count = weeks * 5
    for offset in range(rest):
        if (start.weekday() + offset) % 7 < 5:
            count += 1
    return count


def date_diff(args: dict[str, Any]) -> ToolOutput:
    start, end = parse_when(args["start"]), parse_when(args["end"])
    if isinstance(start, datetime) or isinstance(end, datetime):
        return _datetime_diff(args, _as_datetime(start), _as_datetime(end))
    days = (end - start).days
    sign = -1 if days < 0 else 1
    if args.get("include_end"):
        days += sign
    low, high = sorted((start, end))
    months, rest = _months_between(low, high)
    weeks, week_rest = divmod(abs(days), 7)
    result = {"start": args["start"], "end": args["end"], "days": days, "weeks": weeks, "extra_days": week_rest,
              "months": sign * months, "months_extra_days": rest, "years": sign * (months // 12),
              "business_days": sign * business_days(low, high), "include_end": bool(args.get("include_end"))}
    text = f"There are {_plural(abs(days), 'day')} between {args['start']} and {args['end']}"
    if abs(days) >= 7:
        text += f" ({_plural(weeks, 'week')}{' and ' + _plural(week_rest, 'day') if week_rest else ''})"
    text += f"; {_plural(abs(result['business_days']), 'business day')} (Monday to Friday, end date excluded)"
    return ToolOutput(text + ".", result)


def _as_datetime(value: date | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime(value.year, value.month, value.day)


def _datetime_diff(args: dict[str, Any], start: datetime, end: datetime) -> ToolOutput:
    if (start.tzinfo is None) != (end.tzinfo is None):
        raise wrong("compare two times that both have, or both lack, a UTC offset")
    seconds = (end - start).total_seconds()
    days, remainder = divmod(abs(seconds), 86400)
    hours, remainder = divmod(remainder, 3600)
    minutes, secs = divmod(remainder, 60)
    result = {"start": args["start"], "end": args["end"], "seconds": seconds, "days": int(days) * (-1 if seconds < 0
              else 1), "hours": int(hours), "minutes": int(minutes), "rest_seconds": secs,
              "total_hours": seconds / 3600}
    return ToolOutput(f"From {args['start']} to {args['end']} is {_plural(int(days), 'day')}, "
                      f"{_plural(int(hours), 'hour')} and {_plural(int(minutes), 'minute')}"
                      f"{' (backwards)' if seconds < 0 else ''} = {seconds:,.0f} seconds.", result)


def date_add(args: dict[str, Any]) -> ToolOutput:
    when = parse_when(args["date"])
    try:
        moved: date | datetime = add_months(when, 12 * args.get("years", 0) + args.get("months", 0))
        moved = moved + timedelta(weeks=args.get("weeks", 0), days=args.get("days", 0))
        if args.get("hours") or args.get("minutes"):
            moved = _as_datetime(moved) + timedelta(hours=args.get("hours", 0), minutes=args.get("minutes", 0))
        moved = add_business_days(moved, args.get("business_days", 0))
    except OverflowError:
        raise failed("the date would leave the years 1-9999") from None
    parts = [_plural(args[k], k.rstrip("s").replace("_", " ")) for k in
             ("years", "months", "weeks", "days", "hours", "minutes", "business_days") if args.get(k)]
    result = {"date": args["date"], "result": moved.isoformat(), "weekday": WEEKDAYS[moved.weekday()]}
    change = " and ".join(parts) or "nothing"
    return ToolOutput(f"{args['date']} + {change} = {moved.isoformat()} ({WEEKDAYS[moved.weekday()]}).", result)


def add_business_days(day: date, count: int) -> date:
    step = 1 if count >= 0 else -1
    for _ in range(abs(count)):
        day = day + timedelta(days=step)
        while day.weekday() >= 5:
            day = day + timedelta(days=step)
    return day


def day_of_week(args: dict[str, Any]) -> ToolOutput:
    when = parse_when(args["date"])
    day = when.date() if isinstance(when, datetime) else when
    iso = day.isocalendar()
    result = {"date": args["date"], "weekday": WEEKDAYS[day.weekday()], "iso_weekday": iso.weekday,
              "iso_week": iso.week, "iso_year": iso.year, "day_of_year": day.timetuple().tm_yday,
              "weekend": day.weekday() >= 5}
    return ToolOutput(f"{day.isoformat()} is a {WEEKDAYS[day.weekday()]} (ISO week {iso.week}).", result)


def easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return date(year, month, day + 1)


def calendar_facts(args: dict[str, Any]) -> ToolOutput:
    year = args["year"]
    leap = calendar.isleap(year)
    result: dict[str, Any] = {"year": year, "leap_year": leap, "days_in_year": 366 if leap else 365,
                              "iso_weeks": date(year, 12, 28).isocalendar().week,
                              "first_weekday": WEEKDAYS[date(year, 1, 1).weekday()]}
    if year >= 1583:
        result["easter_sunday"] = easter(year).isoformat()
    text = f"{year} is {'a' if leap else 'not a'} leap year ({result['days_in_year']} days"
    text += f"; Easter Sunday is {result['easter_sunday']})." if "easter_sunday" in result else ")."
    if "month" in args:
        month = args["month"]
        days = calendar.monthrange(year, month)[1]
        first = WEEKDAYS[date(year, month, 1).weekday()]
        result.update(month=month, month_name=MONTHS[month], days_in_month=days, month_first_weekday=first)
        text = f"{MONTHS[month]} {year} has {days} days and starts on a {first}; " + text[0].lower() + text[1:]
    return ToolOutput(text, result)
