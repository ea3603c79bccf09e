"""Service definitions from TOML text: validation with errors that say where and what.

Pure: the daemon and the CLI read the files and pass ``(path, text)`` here. Every problem in a
source is collected (not just the first), each naming the file, the service, the key, the line
where it can be found and what was expected.
"""

from __future__ import annotations

import re
import shlex
import signal as _signal
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from msgspec import Struct, field, structs

from corral.core.expr import Condition, ExprError, parse_events, parse_states, wildcard_keys
from corral.core.graph import Graph, Node
from corral.core.instances import variables_of
from corral.core.machine import Policy
from corral.core.restart import RestartPolicy
from corral.core.states import ProcessKind, RestartMode, ServiceType
from corral.errors import ConfigProblem

#: Keys of DESIGN.md that this version does not implement yet: refused, never ignored.
NOT_YET = frozenset({"sockets", "override"})

#: Keys that only mean something for a process; a state (no exec, no script) refuses them.
PROCESS_KEYS = (
    "ready", "ready_fd", "pid_file", "restart", "restart_delay", "restart_limit",
    "normal_exit", "reload_signal",
)  # fmt: skip

#: Each hook and its key (``pre-start`` is written ``pre_start``), listed once: iterating an
#: enum costs microseconds, at every one of a thousand services.
HOOK_KEYS: tuple[tuple[ProcessKind, str], ...] = tuple(
    (kind, str(kind).replace("-", "_")) for kind in ProcessKind if kind is not ProcessKind.MAIN
)

SERVICE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]*$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Command(Struct, frozen=True):
    """A user command: ``argv`` exec'd directly, or ``script`` run by ``/bin/sh``."""

    argv: tuple[str, ...] = ()
    script: str | None = None


class LogConfig(Struct, frozen=True):
    """Where a service's output goes besides the memory ring."""

    file: str | None = ""  # "" = the default path under the state directory; None = no file
    max_size: int = 10 * 1024 * 1024
    keep: int = 5
    lines: int = 1000  # lines kept in memory for ``corral logs``


class Probe(Struct, frozen=True):
    """``ready = {...}``: a check that must pass before the service counts as ready.

    ``kind`` is tcp (``target`` is "host:port"), http (a URL; any status below 400 passes),
    exec (``command`` exits 0) or log (``target`` is a regex matched against output lines).
    Attempts repeat every ``interval``; ``timeout`` bounds all of them (None: timeout_start).
    """

    kind: str
    target: str = ""
    command: Command | None = None
    interval: float = 0.2
    timeout: float | None = None


#: Each probe attempt (a connect, a request, an exec) is cut off after this long.
PROBE_ATTEMPT_TIMEOUT = 5.0


class Action(Struct, frozen=True):
    """``actions = { NAME = command }``: run on demand by ``corral action``."""

    command: Command
    timeout: float = 60.0


_POLICIES: dict[Policy, Policy] = {}


class Definition(Struct, frozen=True):
    """One parsed ``[service.NAME]`` table. Frozen: running instances keep theirs."""

    name: str
    source: str
    main: Command | None = None  # None: a job without a process (a state)
    shell_script: bool = False  # main came from ``script`` (run by sh -e -c)
    type: ServiceType = ServiceType.SIMPLE
    description: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    env_file: tuple[str, ...] = ()
    cwd: str | None = None
    user: str | int | None = None
    group: str | int | None = None
    umask: int | None = None
    restart: RestartPolicy = RestartPolicy()
    stop_signal: int = int(_signal.SIGTERM)
    stop_timeout: float = 10.0
    reload_signal: int = int(_signal.SIGHUP)
    timeout_start: float = 90.0
    hooks: Mapping[ProcessKind, Command] = field(default_factory=dict)
    autostart: bool = True
    log: LogConfig = LogConfig()
    requires: tuple[str, ...] = ()
    wants: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    ready_fd: int | None = None
    pid_file: str | None = None
    ready: Probe | None = None
    actions: Mapping[str, Action] = field(default_factory=dict)
    start_on: Condition | None = None  # over events
    stop_on: Condition | None = None
    while_: Condition | None = None  # ``while``: over states
    instance: str | None = None  # the key template, e.g. "${TTY}"; None: one instance ""
    # What the state machine needs of this definition: derived from the fields above once,
    # here, and read at every step (never given: whatever is passed is replaced).
    policy: Policy = Policy()

    def __post_init__(self) -> None:
        policy = Policy(
            has_main=self.main is not None,
            type=self.type,
            signals_ready=self.ready is not None or self.ready_fd is not None,
            hooks=frozenset(self.hooks),
            restart=self.restart,
            stop_signal=self.stop_signal,
            stop_timeout=self.stop_timeout,
            timeout_start=self.timeout_start,
        )
        # Equal definitions share one Policy (a thousand alike services: one object).
        structs.force_setattr(self, "policy", _POLICIES.setdefault(policy, policy))

    def command(self, kind: ProcessKind) -> Command | None:
        return self.main if kind is ProcessKind.MAIN else self.hooks.get(kind)


class _Bad(Exception):
    """A value is wrong; the message says what was expected."""


# -- value parsers: each takes the raw TOML value and returns the typed one ----------------


def _type_name(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "an array", dict: "a table"}
    return names.get(type(value), type(value).__name__)


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _Bad(f"expected a string, got {_type_name(value)}")
    return value


def _nonempty_string(value: object) -> str:
    text = _string(value)
    if not text.strip():
        raise _Bad("expected a non-empty string")
    return text


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise _Bad(f"expected true or false, got {_type_name(value)}")
    return value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h)?\s*$")
_UNITS = {None: 1.0, "s": 1.0, "ms": 0.001, "m": 60.0, "min": 60.0, "h": 3600.0}


def _duration(value: object) -> float:
    """Seconds, as a number or a string such as ``"500ms"``, ``"30s"``, ``"2m"``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _Bad(f'expected seconds (a number, or a string like "30s"), got {_type_name(value)}')
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise _Bad(f'expected seconds (a number, or a string like "30s"), got "{value}"')
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        seconds = float(value)
    if seconds < 0 or seconds != seconds or seconds == float("inf"):
        raise _Bad(f"expected a finite number of seconds >= 0, got {value}")
    return seconds


def _signal_number(value: object) -> int:
    """A signal as a name (``"INT"``, ``"SIGINT"``) or a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(_signal.Signals(value))
        except ValueError:
            raise _Bad(f"{value} is not a signal number") from None
    text = _string(value).upper()
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        return int(_signal.Signals[name])
    except KeyError:
        raise _Bad(f'expected a signal name such as "TERM" or "INT", got "{value}"') from None


def _argv(value: object) -> tuple[str, ...]:
    """An argv: a list of strings, or a string split like a shell would (no shell runs)."""
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise _Bad(f"cannot split the command line: {exc}") from None
    elif isinstance(value, list) and all(isinstance(w, str) for w in value):
        words = list(value)
    else:
        raise _Bad(f"expected a command as a string or a list of strings, got {_type_name(value)}")
    if not words or not words[0]:
        raise _Bad("expected a command, got an empty one")
    return tuple(words)


def _hook(value: object) -> Command:
    """A hook or action: a string runs under ``/bin/sh -c``, a list is exec'd directly."""
    if isinstance(value, str):
        return Command(script=_nonempty_string(value))
    return Command(argv=_argv(value))


def _env(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise _Bad(f"expected a table of NAME = value, got {_type_name(value)}")
    env: dict[str, str] = {}
    for name, raw in value.items():
        if not ENV_NAME.match(name):
            raise _Bad(f'"{name}" is not a valid environment variable name')
        if isinstance(raw, bool):
            env[name] = "true" if raw else "false"
        elif isinstance(raw, int | float | str):
            env[name] = str(raw)
        else:
            raise _Bad(f"{name}: expected a string or a number, got {_type_name(raw)}")
    return env


def _paths(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (_nonempty_string(value),)
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        return tuple(value)
    raise _Bad(f"expected a path or a list of paths, got {_type_name(value)}")


def _user_or_group(value: object) -> str | int:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise _Bad(f"expected a name or a numeric id >= 0, got {value}")
        return value
    return _nonempty_string(value)


def _umask(value: object) -> int:
    """An octal mask: ``"022"`` or ``"0o022"``; an integer is read as written in octal digits."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        text = value.removeprefix("0o")
    if text is None or not re.fullmatch(r"[0-7]{1,4}", text):
        raise _Bad(f'expected an octal mask such as "022", got {value!r}')
    mask = int(text, 8)
    if mask > 0o777:
        raise _Bad(f"expected an octal mask up to 0777, got {value!r}")
    return mask


def _choice(enum: type[ServiceType] | type[RestartMode]) -> Callable[[object], Any]:
    def parse(value: object) -> Any:
        text = _string(value)
        try:
            return enum(text)
        except ValueError:
            allowed = " | ".join(f'"{m.value}"' for m in enum)
            raise _Bad(f'expected one of {allowed}, got "{text}"') from None

    return parse


def _restart_limit(value: object) -> tuple[int, float]:
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], int)
        and not isinstance(value[0], bool)
        and value[0] >= 1
    ):
        return value[0], _duration(value[1])
    raise _Bad("expected [BURST, SECONDS]: at most BURST restarts within SECONDS, e.g. [5, 10]")


def _normal_exit(value: object) -> tuple[frozenset[int], frozenset[int]]:
    """Exit statuses (0-255) and signal names that count as a normal end."""
    items = value if isinstance(value, list) else [value]
    statuses: set[int] = set()
    signals: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item <= 255:
                raise _Bad(f"exit statuses are 0 to 255, got {item}")
            statuses.add(item)
        elif isinstance(item, str):
            signals.add(_signal_number(item))
        else:
            raise _Bad('expected exit statuses and signal names, e.g. [0, 2, "TERM"]')
    return frozenset(statuses), frozenset(signals)


_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)i?[bB]?\s*$")


def _size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and (match := _SIZE.match(value)):
        scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
        if int(match.group(1)) > 0:
            return int(match.group(1)) * scale
    raise _Bad(f'expected a size in bytes such as 10485760 or "10M", got {value!r}')


def _log(value: object) -> LogConfig:
    """``log = false`` (memory only), ``log = "path"``, or a table of file/max_size/keep/lines."""
    if value is False:
        return LogConfig(file=None)
    if isinstance(value, str):
        return LogConfig(file=_nonempty_string(value))
    if not isinstance(value, dict):
        raise _Bad(f"expected false, a path, or a table, got {_type_name(value)}")
    unknown = set(value) - {"file", "max_size", "keep", "lines"}
    if unknown:
        raise _Bad(f"unknown log key(s) {sorted(unknown)}: expected file, max_size, keep, lines")
    config = LogConfig()
    file = value.get("file", "")
    if file is not False and not isinstance(file, str):
        raise _Bad("log.file: expected a path or false")
    keep, lines = value.get("keep", config.keep), value.get("lines", config.lines)
    for name, number in (("keep", keep), ("lines", lines)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise _Bad(f"log.{name}: expected an integer >= 0")
    return LogConfig(
        file=None if file is False else file,
        max_size=_size(value.get("max_size", config.max_size)),
        keep=keep,
        lines=lines,
    )


def _names(value: object) -> tuple[str, ...]:
    """Service names (or aliases): a list of strings, or one string."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise _Bad(f"expected a list of service names, got {_type_name(value)}")
    for item in items:
        if not SERVICE_NAME.match(item):
            raise _Bad(f'"{item}" is not a valid service name')
    return tuple(dict.fromkeys(items))


def _condition(parse: Callable[[str], Any]) -> Callable[[object], Condition]:
    def parse_condition(value: object) -> Condition:
        text = _nonempty_string(value)
        try:
            return Condition(text, parse(text))
        except ExprError as exc:
            raise _Bad(f'cannot read the condition "{text}" {exc}') from None

    return parse_condition


def _instance_template(value: object) -> str:
    text = _nonempty_string(value)
    if not variables_of(text):
        raise _Bad(f'expected a template that uses a variable, such as "${{TTY}}", got "{text}"')
    return text


def _ready_fd(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 3 <= value <= 1023:
        return value
    raise _Bad(f"expected a file descriptor number from 3 to 1023, got {value!r}")


_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")


def _host_port(text: str) -> str:
    match = _HOST_PORT.match(text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise _Bad(f'ready.tcp: expected "HOST:PORT" such as "127.0.0.1:8000", got "{text}"')
    return text


def _probe(value: object) -> Probe:
    if not isinstance(value, dict):
        raise _Bad(
            f'expected a table such as {{ tcp = "127.0.0.1:8000" }}, got {_type_name(value)}'
        )
    kinds = [k for k in ("tcp", "http", "exec", "log") if k in value]
    unknown = set(value) - {"tcp", "http", "exec", "log", "interval", "timeout"}
    if unknown:
        raise _Bad(f"unknown ready key(s) {sorted(unknown)}: expected tcp, http, exec or log, "
                   "with interval and timeout")  # fmt: skip
    if len(kinds) != 1:
        raise _Bad("expected exactly one of tcp, http, exec, log")
    kind = kinds[0]
    raw = value[kind]
    interval = _duration(value.get("interval", 0.2))
    timeout = _duration(value["timeout"]) if "timeout" in value else None
    if interval <= 0:
        raise _Bad("ready.interval: expected a duration above 0")
    if kind == "exec":
        return Probe(kind, command=_hook(raw), interval=interval, timeout=timeout)
    target = _nonempty_string(raw)
    if kind == "tcp":
        _host_port(target)
    elif kind == "http":
        if not re.match(r"^http://[^/\s]+(/\S*)?$", target):
            raise _Bad(
                f'ready.http: expected a URL such as "http://127.0.0.1:8000/health", got "{target}"'
            )
    else:
        try:
            re.compile(target)
        except re.error as exc:
            raise _Bad(f"ready.log: not a valid regular expression: {exc}") from None
    return Probe(kind, target=target, interval=interval, timeout=timeout)


ACTION_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _actions(value: object) -> dict[str, Action]:
    if not isinstance(value, dict):
        raise _Bad(f"expected a table of NAME = command, got {_type_name(value)}")
    actions: dict[str, Action] = {}
    for name, raw in value.items():
        if not ACTION_NAME.match(name):
            raise _Bad(f'"{name}" is not a valid action name (letters, digits, _ and -)')
        if isinstance(raw, dict):
            unknown = set(raw) - {"command", "timeout"}
            if unknown or "command" not in raw:
                raise _Bad(f"{name}: expected {{ command = ..., timeout = ... }}")
            timeout = _duration(raw.get("timeout", 60.0))
            actions[name] = Action(_hook(raw["command"]), timeout)
        else:
            try:
                actions[name] = Action(_hook(raw))
            except _Bad as exc:
                raise _Bad(f"{name}: {exc}") from None
    return actions


_PARSERS: dict[str, Callable[[object], Any]] = {
    "description": _string,
    "exec": _argv,
    "script": _nonempty_string,
    "type": _choice(ServiceType),
    "env": _env,
    "env_file": _paths,
    "cwd": _nonempty_string,
    "user": _user_or_group,
    "group": _user_or_group,
    "umask": _umask,
    "restart": _choice(RestartMode),
    "restart_delay": _duration,
    "restart_limit": _restart_limit,
    "normal_exit": _normal_exit,
    "stop_signal": _signal_number,
    "stop_timeout": _duration,
    "reload_signal": _signal_number,
    "timeout_start": _duration,
    "pre_start": _hook,
    "post_start": _hook,
    "pre_stop": _hook,
    "post_stop": _hook,
    "autostart": _boolean,
    "log": _log,
    "requires": _names,
    "wants": _names,
    "after": _names,
    "provides": _names,
    "ready_fd": _ready_fd,
    "pid_file": _nonempty_string,
    "ready": _probe,
    "actions": _actions,
    "start_on": _condition(parse_events),
    "stop_on": _condition(parse_events),
    "while": _condition(parse_states),
    "instance": _instance_template,
}

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


def parse_definition(
    name: str, table: object, source: str, where: Where, problems: list[ConfigProblem]
) -> Definition | None:
    """One service's merged table as a Definition; every problem goes to ``problems``."""
    count_before = len(problems)

    def problem(message: str, key: str | None = None) -> None:
        file, line = where(key)
        problems.append(ConfigProblem(file, message, name, key, line))

    if not SERVICE_NAME.match(name):
        problem("a service name uses letters, digits and _ . @ - and does not start with . @ -")
        return None
    if not isinstance(table, dict):
        problem(f"expected a table [service.{name}], got {_type_name(table)}")
        return None
    values: dict[str, Any] = {}
    for key, raw in table.items():
        if key in NOT_YET:
            problem(f'"{key}" is part of the design but not implemented in this version yet', key)
        elif key not in _PARSERS:
            problem(f'unknown key "{key}"; known keys: {", ".join(sorted(_PARSERS))}', key)
        else:
            try:
                values[key] = _PARSERS[key](raw)
            except _Bad as exc:
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
    if "ready_fd" in values and service_type is not ServiceType.SIMPLE:
        problem(f'ready_fd is for type "simple"; type "{service_type}" has its own readiness',
                "ready_fd")  # fmt: skip
    is_state = "exec" not in table and "script" not in table
    if is_state:
        for key in (*PROCESS_KEYS, "type"):
            if key in table and not (key == "type" and service_type is ServiceType.SIMPLE):
                problem(
                    "a state (a service without exec or script) has no process for this key", key
                )
    if len(problems) > count_before:
        return None
    main = None
    if "exec" in values:
        main = Command(argv=values["exec"])
    elif "script" in values:
        main = Command(script=values["script"])
    # Started by its conditions, or per instance on demand: not by ``corral up`` by default.
    on_demand = "start_on" in values or "while" in values or "instance" in values
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
        hooks=hooks,
        start_on=values.get("start_on"),
        stop_on=values.get("stop_on"),
        while_=values.get("while"),
        instance=values.get("instance"),
        **({"autostart": not on_demand} | plain),
    )


def graph_of(definitions: Mapping[str, Definition]) -> Graph:
    """The dependency graph of a set of definitions (its ``problems`` say what is wrong)."""
    return Graph(
        {name: Node(d.requires, d.wants, d.after, d.provides) for name, d in definitions.items()}
    )


def activation_problems(
    definitions: Mapping[str, Definition], graph: Graph
) -> list[tuple[str, str, str]]:
    """(service, key, message) for conditions and instances that cannot work: ``while``
    naming no service, a dependency on an instantiated service (which instance?), an
    instance key that nothing would ever give a value."""
    problems: list[tuple[str, str, str]] = []
    for name, d in definitions.items():
        if d.while_ is not None:
            for state in d.while_.names:
                if graph.resolve(state) is None:
                    problems.append((name, "while", f'no service or alias named "{state}"'))
        for edge in ("requires", "wants", "after"):
            for need in getattr(d, edge):
                real = graph.resolve(need)
                if real is not None and definitions[real].instance is not None:
                    problems.append((name, edge, f"{real} is instantiated (one instance per "
                                     f"{definitions[real].instance}); depend on it with while "
                                     f'= "{real}(KEY=VALUE)" instead'))  # fmt: skip
        if d.instance is None:
            continue
        known = set(d.env)
        if d.while_ is not None:
            known |= wildcard_keys(d.while_.node)
        missing = [v for v in variables_of(d.instance) if v not in known]
        if missing and d.start_on is None and (d.while_ is not None or d.autostart):
            why = "while binds" if d.while_ is not None else "env sets"
            problems.append((name, "instance", f"the instance key uses ${missing[0]}, which "
                             f"no {why}: nothing would give it a value"))  # fmt: skip
    return problems


#: Definition fields that do not change what a running process is; a reload that changes
#: only these applies them to running instances at once (no restart, not stale).
POLICY_FIELDS = frozenset({
    "source", "description", "restart", "stop_signal", "stop_timeout", "reload_signal",
    "timeout_start", "autostart", "log", "requires", "wants", "after", "provides", "actions",
    "start_on", "stop_on", "while_",
})  # fmt: skip

#: How a field is spelled in the config, where that differs.
_KEY_OF_FIELD = {
    "main": "exec/script",
    "shell_script": "exec/script",
    "hooks": "hooks",
    "while_": "while",
    "restart": "restart*",
}


def changed_fields(old: Definition, new: Definition) -> set[str]:
    """The fields two definitions differ in."""
    return {
        name
        for name in Definition.__struct_fields__
        if name != "policy" and getattr(old, name) != getattr(new, name)
    }


def keys_of(fields: Iterable[str]) -> list[str]:
    """Fields as config keys, for messages (``restart*`` covers restart, restart_delay,
    restart_limit and normal_exit; ``hooks`` the four hooks)."""
    return sorted({_KEY_OF_FIELD.get(f, f) for f in fields} - {"source"})
