"""Human output: the status table. Plain ANSI on a terminal; nothing heavy is imported."""

from __future__ import annotations

import time

TYPE_CHECKING = False  # typing costs milliseconds at start-up; mypy still reads the hints
if TYPE_CHECKING:
    from typing import Any

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


def status_table(rows: list[dict[str, Any]], colour: bool) -> str:
    now = time.time()
    header = ("NAME", "GOAL", "STATE", "PID", "READY", "RESTARTS", "SINCE", "INFO")
    table: list[tuple[str, ...]] = [header]
    for item in rows:
        name = item["name"] + (f":{item['instance']}" if item["instance"] else "")
        info = item.get("error") or ""
        if not info and item["exit_signal"]:
            info = f"last exit: signal {item['exit_signal']}"
        elif not info and item["exit_status"] is not None:
            info = f"last exit: {item['exit_status']}"
        if item.get("stale"):
            info = ("stale definition; " + info).rstrip("; ")
        table.append(
            (
                name,
                item["goal"],
                item["state"],
                "-" if item["pid"] is None else str(item["pid"]),
                "yes" if item["ready"] else "no",
                str(item["restarts"]),
                age(item["since"], now),
                info,
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header) - 1)]
    lines = []
    for index, row in enumerate(table):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        if colour and index > 0 and row[2] in STATE_COLOURS:
            cells[2] = f"\x1b[{STATE_COLOURS[row[2]]}m{cells[2]}\x1b[0m"
        if colour and index == 0:
            lines.append("\x1b[1m" + "  ".join(cells).rstrip() + "\x1b[0m")
        else:
            lines.append("  ".join(cells).rstrip())
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
