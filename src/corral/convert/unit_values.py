"""systemd's value syntax (time spans, booleans, resource limits, unit names) to corral's
values and back, for the unit importer and exporter."""

from __future__ import annotations

import re

_SPAN_UNITS = {
    "us": 1e-6, "usec": 1e-6, "ms": 1e-3, "msec": 1e-3, "s": 1.0, "sec": 1.0, "second": 1.0,
    "seconds": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0, "h": 3600.0,
    "hr": 3600.0, "hour": 3600.0, "hours": 3600.0, "d": 86400.0, "day": 86400.0,
    "days": 86400.0, "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
}  # fmt: skip
_SPAN_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)", re.IGNORECASE)
_TRUE = {"1", "yes", "y", "true", "t", "on"}
_FALSE = {"0", "no", "n", "false", "f", "off"}


class Infinite(ValueError):
    """A time span of ``infinity`` (or ``0`` where systemd reads it so): no limit."""


def seconds(text: str) -> float:
    """A systemd time span (``"1min 30s"``, ``"90"``, ``"500ms"``) in seconds; Infinite for
    ``infinity``, ValueError for anything else it cannot read."""
    text = text.strip()
    if text == "infinity":
        raise Infinite(text)
    position, total = 0, 0.0
    while position < len(text):
        part = _SPAN_PART.match(text, position)
        if part is None or part.end() == position:
            raise ValueError(f"expected a time span such as 90s or 1min 30s, got {text!r}")
        unit = part.group(2).lower() or "s"
        if unit not in _SPAN_UNITS:
            raise ValueError(f"unknown time unit {part.group(2)!r} in {text!r}")
        total += float(part.group(1)) * _SPAN_UNITS[unit]
        position = part.end()
    if not text:
        raise ValueError("expected a time span, got nothing")
    return total


def span(value: float) -> str:
    """Seconds as a systemd time span, exact to the millisecond."""
    millis = round(value * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def number(value: float) -> int | float:
    """Seconds as corral writes them: an integer where the value is whole."""
    rounded = round(value, 6)
    return int(rounded) if float(rounded).is_integer() else rounded


def boolean(text: str) -> bool:
    lower = text.strip().lower()
    if lower in _TRUE | _FALSE:
        return lower in _TRUE
    raise ValueError(f"expected yes or no, got {text!r}")


#: ``LimitNOFILE=`` and the rest: corral's ``limits`` keys are the names in lower case.
LIMITS = ("cpu", "fsize", "data", "stack", "core", "rss", "nofile", "as", "nproc", "memlock",
          "locks", "sigpending", "msgqueue", "nice", "rtprio", "rttime")  # fmt: skip
_SIZE = re.compile(r"^(\d+)([KMGTPE]?)$")


def limit(text: str) -> int | str | list[int | str]:
    """``65535``, ``infinity``, ``1K``, or ``SOFT:HARD`` as a ``limits`` value."""

    def one(part: str) -> int | str:
        if part == "infinity":
            return "infinity"
        match = _SIZE.match(part.strip())
        if match is None:
            raise ValueError(f"expected a number, a size or infinity, got {part!r}")
        scale: int = 1024 ** "_KMGTPE".index(match.group(2) or "_")
        return int(match.group(1)) * scale

    soft, sep, hard = text.partition(":")
    return [one(soft), one(hard)] if sep else one(soft)


def unit_name(name: str) -> tuple[str, str] | None:
    """``(stem, type)`` of a unit name (``("redis", "service")``); None if it has no type."""
    stem, dot, kind = name.rpartition(".")
    return (stem, kind) if dot and stem else None


def signal_name(text: str) -> str | int:
    """``SIGTERM`` or ``15`` as corral writes a signal (``"TERM"``, ``15``)."""
    name = text.strip().upper().removeprefix("SIG")
    return int(name) if name.isdigit() else name
