"""time_facts and timezone_convert: IANA zones (tzdata), with DST gaps and folds reported, not guessed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp_service.tools.base import ToolOutput, wrong
from mcp_service.tools.dates import WEEKDAYS, parse_when


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise wrong(f"unknown time zone {name!r} (use an IANA name like Europe/Berlin)") from None


def _local(text: str) -> datetime:
    when = parse_when(text)
    return when if isinstance(when, datetime) else datetime(when.year, when.month, when.day)


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") + (f":{moment.second:02d}" if moment.second else "")


def time_facts(args: dict[str, Any]) -> ToolOutput:
    tz = zone(args.get("timezone", "UTC"))
    if "datetime" in args:
        when = _local(args["datetime"])
        moment = when.astimezone(tz) if when.tzinfo else when.replace(tzinfo=tz)
    else:
        moment = datetime.now(UTC).astimezone(tz)
    iso = moment.isocalendar()
    dst = moment.dst()
    result = {"timezone": tz.key, "local": moment.isoformat(), "utc": moment.astimezone(UTC).isoformat(),
              "utc_offset": _offset(moment.utcoffset()), "abbreviation": moment.tzname(),
              "dst": bool(dst), "unix_time": moment.timestamp(), "weekday": WEEKDAYS[moment.weekday()],
              "iso_week": iso.week, "day_of_year": moment.timetuple().tm_yday, "now": "datetime" not in args}
    text = (f"{_stamp(moment)} in {tz.key} is UTC{result['utc_offset']} ({moment.tzname()}, "
            f"{'daylight saving' if dst else 'standard'} time), a {result['weekday']}; Unix time "
            f"{moment.timestamp():.0f}.")
    return ToolOutput(text, result)


def timezone_convert(args: dict[str, Any]) -> ToolOutput:
    source, target = zone(args["from_tz"]), zone(args["to_tz"])
    when = _local(args["datetime"])
    notes: list[str] = []
    result: dict[str, Any] = {"from_tz": source.key, "to_tz": target.key, "input": args["datetime"]}
    if when.tzinfo is not None:
        local = when.astimezone(source)
        notes.append(f"the input carried its own offset ({_offset(when.utcoffset())})")
        result.update(gap=False, ambiguous=False)
    else:
        fold = int(args.get("fold", 0))
        local = when.replace(tzinfo=source, fold=fold)
        roundtrip = local.astimezone(UTC).astimezone(source)
        gap = roundtrip.replace(tzinfo=None) != when
        earlier, later = when.replace(tzinfo=source, fold=0), when.replace(tzinfo=source, fold=1)
        ambiguous = not gap and earlier.utcoffset() != later.utcoffset()
        result.update(gap=gap, ambiguous=ambiguous)
        if gap:
            local = roundtrip
            notes.append(f"{_stamp(when)} does not exist in {source.key} (a DST gap); read as {_stamp(local)}")
        elif ambiguous:
            result["candidates"] = [c.astimezone(target).isoformat() for c in (earlier, later)]
            notes.append(f"{_stamp(when)} happens twice in {source.key}; fold={fold} took the "
                         f"{'first' if fold == 0 else 'second'} (UTC{_offset(local.utcoffset())})")
    converted = local.astimezone(target)
    result.update(source=local.isoformat(), result=converted.isoformat(), utc=local.astimezone(UTC).isoformat(),
                  source_offset=_offset(local.utcoffset()), target_offset=_offset(converted.utcoffset()),
                  notes=notes)
    text = f"{_stamp(when)} in {source.key} is {_stamp(converted)} in {target.key}"
    text += f" ({'; '.join(notes)})." if notes else "."
    return ToolOutput(text, result)
