"""Service definitions from TOML text: validation with errors that say where and what.

Pure: the daemon and the CLI read the files and pass ``(path, text)`` here. Every problem in a
source is collected (not just the first), each naming the file, the service, the key, the line
where it can be found and what was expected. The records are in :mod:`corral.core.definition`,
the parsers of single values in :mod:`corral.core.values`.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Mapping
from typing import Any

from msgspec import structs

from corral.core import dbus_jobs
from corral.core.definition import (
    ACCEPT_INSTANCE,
    DEFAULT_START_GRACE,
    Command,
    Definition,
)

# Until every caller imports them from where they live now (core/definition.py, values.py).
from corral.core.definition import LogConfig as LogConfig
from corral.core.expr import Condition, wildcard_keys
from corral.core.graph import Graph, GraphProblem, Node, unknown_name
from corral.core.instances import variables_of
from corral.core.listen import key_problems, shared_sockets
from corral.core.restart import RestartPolicy
from corral.core.states import ProcessKind, ServiceType
from corral.core.timer_keys import problems as timer_problems
from corral.core.values import ENV_NAME as ENV_NAME
from corral.core.values import PARSERS, SERVICE_NAME, BadValue, names, type_name
from corral.errors import ConfigProblem

#: Keys of DESIGN.md that this version does not implement yet: refused, never ignored.
#: (``override`` is not one: the registry takes it off a table before it gets here.)
NOT_YET: frozenset[str] = frozenset()

#: Keys that only mean something for a process; a state (no exec, no script) refuses them.
PROCESS_KEYS = (
    "ready", "ready_fd", "pid_file", "restart", "restart_delay", "restart_limit",
    "normal_exit", "reload_signal", "start_grace", "sockets", "activate", "accept",
    "max_connections", "fd_store_max", "watchdog", "liveness",
)  # fmt: skip

#: Each hook and its key (``pre-start`` is written ``pre_start``), listed once: iterating an
#: enum costs microseconds, at every one of a thousand services.
HOOK_KEYS: tuple[tuple[ProcessKind, str], ...] = tuple(
    (kind, str(kind).replace("-", "_")) for kind in ProcessKind if kind is not ProcessKind.MAIN
)


# -- locating keys in the text, for line numbers ---------------------------------------------


def locate(text: str, service: str | None, key: str | None = None) -> int | None:
    """The line of ``[service.NAME]`` (or of ``key`` inside it), found by reading the text.

    tomli keeps no positions, so this scans the source; it finds the usual layouts
    (a table header, or dotted keys) and returns None where it cannot tell.
    """
    lines = text.splitlines()
    if service is None:
        return _locate_top_level(lines, key)
    name = re.escape(service)
    header = (
        re.compile(rf"^\s*\[\s*service\s*\.\s*(\"{name}\"|'{name}'|{name})\s*\]") if name else None
    )
    any_header = _ANY_HEADER
    start = None
    for number, line in enumerate(lines, 1):
        if header is not None and header.match(line):
            start = number
            break
    if start is None:
        if name and key:
            dotted = re.compile(rf"^\s*service\s*\.\s*{name}\s*\.\s*{re.escape(key)}\s*=")
            for number, line in enumerate(lines, 1):
                if dotted.match(line):
                    return number
        return None
    if key is None:
        return start
    key_line = _key_line(key)
    for number in range(start + 1, len(lines) + 1):
        line = lines[number - 1]
        if any_header.match(line):
            break
        if key_line.match(line):
            return number
    return start


_ANY_HEADER = re.compile(r"^\s*\[")


def _key_line(key: str) -> re.Pattern[str]:
    """A line that sets ``key`` (plain, quoted, or as the start of a dotted key)."""
    return re.compile(rf"^\s*(\"{re.escape(key)}\"|{re.escape(key)})\s*(=|\.)")


def _locate_top_level(lines: list[str], key: str | None) -> int | None:
    """A key before any table header (an override file ``NAME.override.toml``)."""
    if key is None:
        return None
    key_line = _key_line(key)
    for number, line in enumerate(lines, 1):
        if _ANY_HEADER.match(line):
            return None
        if key_line.match(line):
            return number
    return None


# -- the loader ------------------------------------------------------------------------------


#: Where a key of a service was written: ``where(key)`` (None: the table itself) gives
#: the file and line, so that an error names the source the offending value came from.
Where = Callable[[str | None], tuple[str, int | None]]


#: The file a key of a service was written in (an override's for an overridden key): a
#: relative path is read from that file's directory.
FileOf = Callable[[str], str]


def parse_definition(
    name: str,
    table: object,
    source: str,
    where: Where,
    problems: list[ConfigProblem],
    file_of: FileOf | None = None,
) -> Definition | None:
    """One service's merged table as a Definition; every problem goes to ``problems``.

    ``file_of(key)`` names the file each key came from (default: ``source`` for all)."""
    count_before = len(problems)

    def problem(message: str, key: str | None = None) -> None:
        file, line = where(key)
        problems.append(ConfigProblem(file, message, name, key, line))

    if not SERVICE_NAME.match(name):
        problem("a service name uses letters, digits and _ . @ - and does not start with . @ -")
        return None
    if not isinstance(table, dict):
        problem(f"expected a table [service.{name}], got {type_name(table)}")
        return None
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key in NOT_YET:
            problem(f'"{key}" is part of the design but not implemented in this version yet', key)
        elif key not in PARSERS:
            problem(f'unknown key "{key}"; known keys: {", ".join(sorted(PARSERS))}', key)
        else:
            try:
                values[key] = PARSERS[key](raw)
            except BadValue as exc:
                problem(str(exc), key)
    if "exec" in table and "script" in table:
        problem("give either exec or script, not both", "script")
    service_type = values.get("type", ServiceType.SIMPLE)
    if service_type is ServiceType.FORKING and "pid_file" not in table:
        problem('type "forking" needs pid_file: the file where the daemon writes its pid', "type")
    if "pid_file" in values and service_type is not ServiceType.FORKING:
        problem('pid_file is only for type "forking"', "pid_file")
    if "ready" in values and service_type is ServiceType.ONESHOT:
        problem('a oneshot is ready when it exits 0; ready probes are for long-running types',
                "ready")  # fmt: skip
    if "start_grace" in values and service_type is ServiceType.ONESHOT:
        problem("a oneshot is done when it exits 0; start_grace is for long-running types",
                "start_grace")  # fmt: skip
    if "ready_fd" in values and service_type is not ServiceType.SIMPLE:
        problem(f'ready_fd is for type "simple"; type "{service_type}" has its own readiness',
                "ready_fd")  # fmt: skip
    for message, key in [*key_problems(values, table), *timer_problems(values, table)]:
        problem(message, key)
    for message, key in dbus_jobs.definition_problems(values, "exec" in table or "script" in table):
        problem(message, key)
    is_state = "exec" not in table and "script" not in table
    if is_state:
        for key in (*PROCESS_KEYS, "type"):
            if key in table and not (key == "type" and service_type is ServiceType.SIMPLE):
                problem(
                    "a state (a service without exec or script) has no process for this key", key
                )
    if len(problems) > count_before:
        return None
    _anchor_paths(values, file_of or (lambda _key: source))
    main = None
    if "exec" in values:
        main = Command(argv=values["exec"])
    elif "script" in values:
        main = Command(script=values["script"])
    # Started by its conditions, or per instance on demand: not by ``corral up`` by default.
    on_demand = any(
        key in values
        for key in ("start_on", "while", "instance", "activate", "every", "on_calendar")
    )
    accept = values.get("accept", False)
    restart = RestartPolicy()
    burst, interval = values.get("restart_limit", (restart.burst, restart.interval))
    statuses, signals = values.get("normal_exit", (restart.normal_statuses, restart.normal_signals))
    restart = RestartPolicy(
        mode=values.get("restart", restart.mode),
        delay=values.get("restart_delay", restart.delay),
        burst=burst,
        interval=interval,
        normal_statuses=statuses,
        normal_signals=signals,
    )
    hooks = {kind: values[key] for kind, key in HOOK_KEYS if key in values}
    plain: dict[str, Any] = {
        k: values[k]
        for k in (
            "description", "env", "env_file", "cwd", "user", "group", "umask", "stop_signal",
            "stop_timeout", "reload_signal", "timeout_start", "autostart", "log", "requires",
            "wants", "after", "provides", "ready_fd", "pid_file", "ready", "actions",
            "sockets", "max_connections", "fd_store_max", "watchdog", "liveness",
            "every", "on_calendar", "persistent", "random_delay", "bus_name",
        )
        if k in values
    }  # fmt: skip
    return Definition(
        name=name,
        source=source,
        main=main,
        shell_script="script" in values,
        type=service_type,
        restart=restart,
        start_grace=values.get("start_grace", _default_start_grace(main, service_type, values)),
        hooks=hooks,
        start_on=values.get("start_on"),
        stop_on=values.get("stop_on"),
        while_=values.get("while"),
        instance=ACCEPT_INSTANCE if accept else values.get("instance"),
        on_connection="activate" in values,
        accept=accept,
        **({"autostart": not (on_demand or accept)} | plain),
    )


def _default_start_grace(main: Command | None, kind: ServiceType, values: dict[str, Any]) -> float:
    """DEFAULT_START_GRACE where nothing but the spawn says the service came up; else 0."""
    spawn_is_readiness = (
        main is not None
        and kind is ServiceType.SIMPLE
        and "ready" not in values
        and "ready_fd" not in values
    )
    return DEFAULT_START_GRACE if spawn_is_readiness else 0.0


def _anchor_paths(values: dict[str, Any], file_of: FileOf) -> None:
    """Make relative paths absolute against the directory of the file that set them (a
    relative ``pid_file`` against ``cwd`` when that is set), so that the directory corral
    was started from never changes what a config means."""

    def beside(key: str, path: str) -> str:
        return _anchored(path, posixpath.dirname(file_of(key)))

    if "cwd" in values:
        values["cwd"] = beside("cwd", values["cwd"])
    if "env_file" in values:  # "-path": a file that may be missing
        values["env_file"] = tuple(
            "-" * path.startswith("-") + beside("env_file", path.removeprefix("-"))
            for path in values["env_file"]
        )
    log = values.get("log")
    if log is not None and log.file:
        values["log"] = structs.replace(log, file=beside("log", log.file))
    if "sockets" in values:
        values["sockets"] = tuple(
            structs.replace(spec, address=beside("sockets", spec.address))
            if spec.kind == "unix" and not spec.address.startswith("@")
            else spec
            for spec in values["sockets"]
        )
    if "pid_file" in values:
        cwd = values.get("cwd")
        if cwd is None:
            values["pid_file"] = beside("pid_file", values["pid_file"])
        elif not cwd.startswith("~"):  # under "~/...", the daemon joins it to cwd expanded
            values["pid_file"] = _anchored(values["pid_file"], cwd)


def _anchored(path: str, directory: str) -> str:
    """``path`` read from ``directory``; absolute and ``~`` paths are kept as written."""
    if path.startswith(("/", "~")):
        return path
    return posixpath.normpath(posixpath.join(directory, path))


def references(table: Mapping[str, Any]) -> tuple[Node, Condition | None]:
    """What a table that failed to load still says about other services (its requires,
    wants, after, provides and while that do parse), so that ``config check`` reports the
    unknown names and cycles around it in the same run. A value that does not parse counts
    as absent: its own error is reported already."""

    def tolerant(key: str, parse: Callable[[object], Any]) -> Any:
        try:
            return parse(table[key]) if key in table else None
        except BadValue:
            return None

    edges = (tolerant(key, names) or () for key in ("requires", "wants", "after", "provides"))
    return Node(*edges), tolerant("while", PARSERS["while"])


#: The states the world holds, reported by corral's bridges (DESIGN.md, "Events and states
#: from the bridges"): a ``while`` may name them beside services.
WORLD_STATES = frozenset({"device", "net-online", "dbus-name", "path-exists"})


def while_problems(name: str, condition: Condition | None, graph: Graph) -> list[GraphProblem]:
    """A ``while`` that names something no service, alias or bridge state answers to."""
    if condition is None:
        return []
    return [
        unknown_name(name, "while", state)
        for state in condition.names
        if graph.resolve(state) is None and state not in WORLD_STATES
    ]


def activation_problems(definitions: Mapping[str, Definition], graph: Graph) -> list[GraphProblem]:
    """Conditions and instances that cannot work: ``while`` naming no service, a dependency
    on an instantiated service (which instance?), an instance key that nothing would ever
    give a value. ``graph`` may know more services than ``definitions`` (ones whose own
    keys have errors): those are names that exist, but tell nothing more."""
    problems = shared_sockets(definitions) + dbus_jobs.problems(definitions)
    for name, d in definitions.items():
        problems += while_problems(name, d.while_, graph)
        for edge in ("requires", "wants", "after"):
            for need in getattr(d, edge):
                real = definitions.get(graph.resolve(need) or "")
                if real is not None and real.instance is not None:
                    problems.append(GraphProblem(name, edge, f"{real.name} is instantiated (one "
                                    f"instance per {real.instance}); depend on it with while "
                                    f'= "{real.name}(KEY=VALUE)" instead'))  # fmt: skip
        if d.instance is None:
            continue
        known = set(d.env)
        if d.while_ is not None:
            known |= wildcard_keys(d.while_.node)
        missing = [v for v in variables_of(d.instance) if v not in known]
        if missing and d.start_on is None and (d.while_ is not None or d.autostart):
            why = "while binds" if d.while_ is not None else "env sets"
            problems.append(GraphProblem(name, "instance", f"the instance key uses "
                            f"${missing[0]}, which no {why}: nothing would give it a value"))  # fmt: skip
    return problems
