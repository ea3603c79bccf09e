"""The command line: ``quick`` answers what scripts run in loops without argparse, ``main``
(argparse) the rest; ``up`` starts the daemon. What both must say alike lives here, in the
package that each of them loads anyway (a module of its own would cost the quick path an
import): the socket given before the command word, colour, and the lines a start, stop or
restart prints. Nothing is imported at run time (no ``__future__``, no ``typing``).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def leading_socket(argv: list[str]) -> tuple[str | None, list[str]] | None:
    """``--socket PATH`` before the command word → (PATH, the rest); (None, argv) when
    there is none; None when it is malformed (argparse says how)."""
    first = argv[0] if argv else ""
    if first.startswith("--socket="):
        return first.partition("=")[2], argv[1:]
    if first != "--socket":
        return None, argv
    if len(argv) < 2 or argv[1].startswith("-"):
        return None
    return argv[1], argv[2:]


def colour_for(stream: "Any") -> bool:
    """Colour on a terminal, unless ``NO_COLOR`` is set and not empty (no-color.org)."""
    import os  # loaded with the interpreter already: this costs a dict lookup

    return bool(stream.isatty()) and not os.environ.get("NO_COLOR")


def said(rows: "list[dict[str, Any]]") -> str:
    """One line per instance a start, stop or restart reached: ``web: running (pid 123)``,
    ``setup: done`` (a oneshot that exited 0), ``web: stopped``."""
    lines = []
    for row in rows:
        name = row["name"] + (":" + row["instance"] if row["instance"] else "")
        state = row["state"]
        word = "done" if row.get("done") else "stopped" if state == "waiting" else state
        pid = row.get("pid")
        lines.append(f"{name}: {word}" + ("" if pid is None else f" (pid {pid})") + "\n")
    return "".join(lines)
