"""Human output: the status table. Plain ANSI on a terminal; nothing heavy is imported."""

from __future__ import annotations

import time

TYPE_CHECKING = False  # typing costs milliseconds at start-up; mypy still reads the hints
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    from corral.control.protocol import StatusRow

STATE_COLOURS = {"running": "32", "failed": "31", "waiting": "90"}


def age(since: float | None, now: float) -> str:
    if since is None:
        return "-"
    seconds = max(0, int(now - since))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def status_table(rows: Sequence[StatusRow], colour: bool) -> str:
    """The table ``corral status`` prints, made by the daemon (a thousand rows in a few
    milliseconds: one format string, ages computed once per distinct second)."""
    now = time.time()
    ages: dict[int, str] = {}
    header = ("NAME", "GOAL", "STATE", "PID", "READY", "RESTARTS", "SINCE", "INFO")
    table: list[tuple[str, ...]] = [header]
    for row in rows:
        info = row.error or ""
        if not info and row.exit_signal:
            info = f"last exit: signal {row.exit_signal}"
        elif not info and row.exit_status is not None:
            info = f"last exit: {row.exit_status}"
        if row.stale:
            info = ("stale definition; " + info).rstrip("; ")
        second = int(row.since)
        shown_age = ages.get(second)
        if shown_age is None:
            shown_age = ages[second] = age(row.since, now)
        table.append(
            (
                f"{row.name}:{row.instance}" if row.instance else row.name,
                row.goal,
                row.state,
                "-" if row.pid is None else str(row.pid),
                "yes" if row.ready else "no",
                str(row.restarts),
                shown_age,
                info,
            )
        )
    widths = [max(map(len, column)) for column in list(zip(*table, strict=True))[:-1]]
    line = "  ".join(f"{{:<{width}}}" for width in widths) + "  {}"
    if not colour:
        return "\n".join(line.format(*cells).rstrip() for cells in table)
    lines = ["\x1b[1m" + line.format(*header).rstrip() + "\x1b[0m"]
    for cells in table[1:]:
        code = STATE_COLOURS.get(cells[2])
        if code is not None:
            padded = cells[2].ljust(widths[2])
            cells = (*cells[:2], f"\x1b[{code}m{padded}\x1b[0m", *cells[3:])
        lines.append(line.format(*cells).rstrip())
    return "\n".join(lines)


def toml_value(value: Any) -> str:
    """A config value as TOML (for ``config show``)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(str(value))


def _toml_key(key: str) -> str:
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def config_table(shown: dict[str, Any]) -> str:
    """``[service.NAME]`` with each key's value and, as a comment, where it came from."""
    lines = []
    for layer in shown["layers"]:
        kind = "override" if layer["override"] else "definition"
        note = "" if layer["in_effect"] else "  (not in effect: replaced by a later definition)"
        lines.append(f"# {kind}: {layer['file']}{note}")
    lines.append(f"[service.{_toml_key(shown['name'])}]")
    body = [(f"{_toml_key(k['key'])} = {toml_value(k['value'])}", k) for k in shown["keys"]]
    width = max((len(text) for text, _ in body), default=0)
    for text, key in body:
        where = key["file"] + (f":{key['line']}" if key["line"] else "")
        lines.append(f"{text.ljust(width)}  # {where}")
    return "\n".join(lines)
