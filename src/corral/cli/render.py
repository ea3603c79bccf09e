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
