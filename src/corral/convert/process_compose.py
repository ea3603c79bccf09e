"""A process-compose.yaml as corral services: each process a service, its ``command`` run by
a shell (as process-compose runs it), ``depends_on`` conditions as requirements, readiness
probes as ``ready``, ``replicas`` as instances (``PC_REPLICA_NUM``, as process-compose names
it).

Conditions: ``process_started`` is ``wants`` (started first, waited for, not needed),
``process_healthy`` and ``process_log_ready`` are ``requires`` (ready: probe or log line),
``process_completed_successfully`` is ``requires`` on a ``oneshot`` (done when it exits 0),
``process_completed`` is ``wants`` on a ``oneshot``.
"""

from __future__ import annotations

import re
from typing import Any

from corral.convert.model import Draft, Imported, not_yet, supported

_CONDITIONS = {"process_started": ("wants", False), "process_healthy": ("requires", False),
               "process_log_ready": ("requires", False),
               "process_completed_successfully": ("requires", True),
               "process_completed": ("wants", True)}  # fmt: skip
_RESTARTS = {"always": "always", "on_failure": "on-failure", "no": "no"}
_TOP = {"version", "processes", "environment", "log_location", "log_level", "shell"}


class _Lines:
    """Line numbers of the keys of a YAML document, by their path of keys."""

    def __init__(self, text: str) -> None:
        import yaml

        self.lines: dict[tuple[str, ...], int] = {}
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: Any, path: tuple[str, ...]) -> None:
        import yaml

        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*path, str(key.value))
                self.lines[here] = key.start_mark.line + 1
                self._walk(value, here)

    def __call__(self, *path: str) -> int | None:
        return self.lines.get(path)


def import_process_compose(path: str, text: str) -> Imported:
    """Every process of the file."""
    import yaml

    result = Imported()
    try:
        data = yaml.safe_load(text)
        lines = _Lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        result.fail(path, f"invalid YAML: {exc}", mark.line + 1 if mark else None)
        return result
    if not isinstance(data, dict) or not isinstance(data.get("processes"), dict):
        result.fail(path, "expected a mapping with processes:")
        return result
    common = _environment(data.get("environment"), path, lines("environment"), result)
    for key in data:
        if key not in _TOP:
            result.skip(path, lines(key), key, "corral has no key for this")
        elif key in ("log_location", "log_level", "shell"):
            result.skip(path, lines(key), key, "process-compose's own settings")
    oneshots: set[str] = set()
    for name, process in data["processes"].items():
        draft = result.draft(str(name), path, lines("processes", str(name)))
        if draft is not None and isinstance(process, dict):
            _process(draft, process, common, lines, result, oneshots)
        elif draft is not None:
            result.fail(path, f"process {name}: expected a mapping", draft.line)
    for draft in result.drafts:
        if draft.name in oneshots:
            _make_oneshot(draft, result)
    return result


def _process(
    draft: Draft, process: dict[str, Any], common: dict[str, str], lines: _Lines,
    result: Imported, oneshots: set[str],
) -> None:  # fmt: skip
    def line(*keys: str) -> int | None:
        return lines("processes", draft.name, *keys)

    file = draft.file
    env = dict(common)
    for key, value in process.items():
        if key == "command":
            draft.set("script", str(value), line(key))
        elif key == "description":
            draft.set("description", str(value), line(key))
        elif key == "working_dir":
            draft.set("cwd", str(value), line(key))
        elif key == "environment":
            env.update(_environment(value, file, line(key), result))
        elif key == "disabled":
            draft.set("autostart", not value, line(key))
        elif key == "depends_on" and isinstance(value, dict):
            _depends_on(draft, value, line, result, oneshots)
        elif key == "readiness_probe" and isinstance(value, dict):
            _probe(draft, value, line, result)
        elif key == "ready_log_line":
            draft.set("ready", {"log": _literal(str(value))}, line(key))
        elif key == "availability" and isinstance(value, dict):
            _availability(draft, value, line, result)
        elif key == "shutdown" and isinstance(value, dict):
            _shutdown(draft, value, line, result)
        elif key == "log_location":
            draft.set("log", str(value), line(key))
        elif key == "replicas" and isinstance(value, int) and value > 1:
            env["PC_REPLICA_NUM"] = "0"
            draft.set("instance", "${PC_REPLICA_NUM}", line(key))
            draft.set("autostart", draft.value("autostart", True), line(key))
            others = " ".join(f"{draft.name}:{n}" for n in range(1, value))
            result.skip(file, line(key), key, f"corral up starts {draft.name}:0; start the "
                        f"others with: corral start {others}")  # fmt: skip
        elif key == "replicas" and value == 1:
            pass
        elif key == "liveness_probe" and isinstance(value, dict):
            _probe(draft, value, line, result, "liveness")
        else:
            result.skip(file, line(key), key, "corral has no key for this")
    if env:
        draft.set("env", env, line("environment"))
    if "script" not in draft.keys:
        result.fail(file, f"process {draft.name} has no command", draft.line)


def _environment(value: Any, file: str, line: int | None, result: Imported) -> dict[str, str]:
    """``["KEY=value", ...]`` (or a mapping) as env."""
    if value is None:
        return {}
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = [(str(i).partition("=")[0], str(i).partition("=")[2]) for i in value]
    env: dict[str, str] = {}
    for key, item in items:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(key)):
            result.fail(file, f"environment: {key!r} is not a variable name", line)
        else:
            env[str(key)] = str(item)
    return env


def _depends_on(
    draft: Draft, value: dict[str, Any], line: Any, result: Imported, oneshots: set[str]
) -> None:
    for name, spec in value.items():
        condition = (spec or {}).get("condition", "process_started")
        if condition not in _CONDITIONS:
            result.skip(draft.file, line("depends_on", name), f"depends_on {name}",
                        f"corral has no condition {condition}")  # fmt: skip
            continue
        key, oneshot = _CONDITIONS[condition]
        if oneshot:
            oneshots.add(str(name))
        draft.set(key, [*draft.value(key, []), str(name)], line("depends_on"))


def _literal(text: str) -> str:
    """A pattern matching ``text`` itself (process-compose looks for the text in a line)."""
    return re.sub(r"([.^$*+?{}\[\]\\|()])", r"\\\1", text)


def _probe(
    draft: Draft, probe: dict[str, Any], line: Any, result: Imported, key: str = "ready"
) -> None:
    """A readiness probe as ``ready``, a liveness probe as ``liveness`` (where corral has
    it): http_get or exec, every period_seconds (a liveness probe's failure_threshold)."""
    section = "readiness_probe" if key == "ready" else "liveness_probe"
    if not supported(key):
        result.skip(draft.file, line(section), section, not_yet(key))
        return
    ready: dict[str, Any] = {}
    http = probe.get("http_get")
    if isinstance(http, dict):
        host = http.get("host", "127.0.0.1")
        path = str(http.get("path", "/"))
        ready["http"] = (
            f"http://{host}:{http.get('port', 80)}{'' if path.startswith('/') else '/'}{path}"
        )
        if http.get("scheme", "http") != "http":
            result.skip(draft.file, line(section, "http_get"), "scheme",
                        "corral's http probe speaks plain http")  # fmt: skip
    elif isinstance(probe.get("exec"), dict):
        ready["exec"] = str(probe["exec"].get("command", ""))
    if "period_seconds" in probe:
        ready["interval"] = probe["period_seconds"]
    if key == "liveness" and "failure_threshold" in probe:
        ready["failures"] = probe["failure_threshold"]
    for name in probe:
        if name not in ("http_get", "exec", "period_seconds") and not (
            key == "liveness" and name == "failure_threshold"
        ):
            result.skip(draft.file, line(section, name), f"{section} {name}",
                        "corral's probe has an interval and an overall timeout only")  # fmt: skip
    if "http" in ready or "exec" in ready:
        draft.set(key, ready, line(section))


def _availability(draft: Draft, value: dict[str, Any], line: Any, result: Imported) -> None:
    for key, item in value.items():
        if key == "restart" and item in _RESTARTS:
            draft.set("restart", _RESTARTS[item], line("availability", key))
        elif key == "backoff_seconds":
            draft.set("restart_delay", item, line("availability", key))
        else:
            result.skip(draft.file, line("availability", key), f"availability {key}",
                        "corral has no key for this")  # fmt: skip


def _shutdown(draft: Draft, value: dict[str, Any], line: Any, result: Imported) -> None:
    for key, item in value.items():
        if key == "signal":
            draft.set("stop_signal", item, line("shutdown", key))
        elif key == "timeout_seconds":
            draft.set("stop_timeout", item, line("shutdown", key))
        elif key == "command" and supported("stop_exec"):
            draft.set("stop_exec", str(item), line("shutdown", key))
        else:
            why = not_yet("stop_exec") if key == "command" else "corral has no key for this"
            result.skip(draft.file, line("shutdown", key), f"shutdown {key}", why)


def _make_oneshot(draft: Draft, result: Imported) -> None:
    """A process others wait to complete: corral's oneshot, done when it exits 0."""
    if "ready" in draft.keys or draft.value("restart") == "always":
        result.skip(draft.file, draft.line, draft.name, "others wait for it to complete, but "
                    "it has a readiness probe or restarts always: kept long-running")  # fmt: skip
        return
    draft.set("type", "oneshot", draft.line)
