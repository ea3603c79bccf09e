"""Human output of the CLI alone: ``corral logs``' lines and ``config show``'s table (the
status table, which the daemon makes too, is ``corral.control.table``). Nothing heavy is
imported."""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds at start-up; mypy still reads the hints
if TYPE_CHECKING:
    from typing import Any


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


#: The colours of service names in ``corral logs`` on a terminal (as ``corral up``'s).
LOG_COLOURS = ("36", "33", "32", "35", "34", "91", "96", "93", "92", "95", "94")


class LogPrinter:
    """Log lines as ``corral up``'s console shows them: ``12:00:01 web | text``, the names
    padded to one width, each service in its colour on a terminal."""

    def __init__(self, colour: bool) -> None:
        self._colour = colour
        self._width = 0
        self._colours: dict[str, str] = {}

    def fit(self, lines: list[dict[str, Any]]) -> None:
        """Make the names of ``lines`` fit the column (followed lines widen it as needed)."""
        self._width = max([self._width, *(len(_log_label(line)) for line in lines)])

    def show(self, line: dict[str, Any]) -> None:
        import time

        name = _log_label(line)
        self._width = max(self._width, len(name))
        stamp = time.strftime("%H:%M:%S", time.localtime(line["time"]))
        prefix = f"{stamp} {name.ljust(self._width)} |"
        if self._colour:
            service = line["service"]
            code = self._colours.setdefault(
                service, LOG_COLOURS[len(self._colours) % len(LOG_COLOURS)]
            )
            prefix = f"\x1b[{code}m{prefix}\x1b[0m"
        print(f"{prefix} {line['text']}")


def _log_label(line: dict[str, Any]) -> str:
    """``web``, ``getty:tty1``, ``web [pre-start]``, ``web [corral]``: whose line it is."""
    name = str(line["service"]) + (f":{line['instance']}" if line["instance"] else "")
    return name + ("" if line["process"] == "main" else f" [{line['process']}]")
