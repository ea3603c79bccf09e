"""What a service is once its configuration is read: frozen records, shared by every part.

A ``Definition`` is one parsed ``[service.NAME]`` table. It is frozen: a running instance
keeps the one it was started with, whatever a reload makes current (DESIGN.md, "Reload
semantics"). Pure, like the rest of ``core``.
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Iterable, Mapping

from msgspec import Struct, field, structs

from corral.core.calendar import Calendar
from corral.core.expr import Condition
from corral.core.graph import Graph, Node
from corral.core.records import Policy
from corral.core.restart import RestartPolicy
from corral.core.states import ProcessKind, ServiceType

#: ``start_grace`` of a simple service whose spawn is its only sign of life (no ready_fd, no
#: ready probe): like supervisord's startsecs, a start that dies this soon is a failed start.
DEFAULT_START_GRACE = 1.0


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


class LivenessCheck(Struct, frozen=True):
    """``liveness = {...}``: a probe repeated every ``probe.interval`` while the service
    runs; ``failures`` in a row count as a hung main process (killed with SIGABRT)."""

    probe: Probe
    failures: int = 3


class SocketSpec(Struct, frozen=True):
    """One entry of ``sockets``: where corral listens for the service, before it starts.

    ``kind`` is tcp, udp or unix; ``address`` is the host (an IP address, without brackets)
    or the path (``@name``: Linux's abstract namespace); ``name`` goes into
    ``LISTEN_FDNAMES`` ("": the service's name); ``mode`` is a unix socket file's.
    """

    kind: str
    address: str
    port: int = 0
    name: str = ""
    mode: int = 0o666

    @property
    def where(self) -> str:
        """As a user writes it: ``127.0.0.1:8000``, ``udp:[::1]:53``, ``unix:/run/x.sock``."""
        if self.kind == "unix":
            return f"unix:{self.address}"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{'udp:' if self.kind == 'udp' else ''}{host}:{self.port}"

    @property
    def place(self) -> tuple[str, str, int]:
        """What two sockets cannot share (the name and mode aside)."""
        return (self.kind, self.address, self.port)


#: The instance key template of an ``accept = true`` service: one instance per connection.
ACCEPT_INSTANCE = "${REMOTE_ADDR}:${REMOTE_PORT}"


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
    # How long ``corral start`` waits after ready for the process to stay up. Derived by the
    # loader when not given (DEFAULT_START_GRACE or 0); a Definition built by hand has none.
    start_grace: float = 0.0
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
    sockets: tuple[SocketSpec, ...] = ()  # fds 3, 4, ... of the main process
    on_connection: bool = False  # ``activate = "on-connection"``: a connection starts it
    accept: bool = False  # one instance per connection (``instance`` is ACCEPT_INSTANCE)
    max_connections: int = 64  # accept: connections past this many are closed at once
    fd_store_max: int = 16  # fds a notify service may keep in corral (FDSTORE=1)
    watchdog: float | None = None  # seconds within which a running main says WATCHDOG=1
    liveness: LivenessCheck | None = None
    every: float | None = None  # a timer: fire this many seconds after the last firing
    on_calendar: Calendar | None = None  # a timer: fire at each matching moment
    persistent: bool = False  # a timer's firing missed while corral was down runs at start
    random_delay: float = 0.0  # a timer fires up to this many seconds late, at random
    bus_name: str | None = None  # D-Bus: the name it owns (type dbus: ready when it does)
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
            watchdog=self.watchdog,
            liveness_failures=self.liveness.failures if self.liveness is not None else 0,
        )
        # Equal definitions share one Policy (a thousand alike services: one object).
        structs.force_setattr(self, "policy", _POLICIES.setdefault(policy, policy))

    def command(self, kind: ProcessKind) -> Command | None:
        return self.main if kind is ProcessKind.MAIN else self.hooks.get(kind)

    @property
    def timer(self) -> bool:
        """Started by its timer (``every`` or ``on_calendar``) rather than by ``up``."""
        return self.every is not None or self.on_calendar is not None

    @property
    def socket_activated(self) -> bool:
        """Started by a connection to its sockets, which accept before it runs: what
        requires it need not wait for it."""
        return self.on_connection or self.accept


def node_of(definition: Definition) -> Node:
    """What the dependency graph needs of a definition."""
    d = definition
    return Node(d.requires, d.wants, d.after, d.provides)


def graph_of(definitions: Mapping[str, Definition]) -> Graph:
    """The dependency graph of a set of definitions (its ``problems`` say what is wrong)."""
    return Graph({name: node_of(d) for name, d in definitions.items()})


#: Definition fields that do not change what a running process is; a reload that changes
#: only these applies them to running instances at once (no restart, not stale).
POLICY_FIELDS = frozenset({
    "source", "description", "restart", "stop_signal", "stop_timeout", "reload_signal",
    "timeout_start", "start_grace", "autostart", "log", "requires", "wants", "after",
    "provides", "actions", "start_on", "stop_on", "while_", "max_connections", "fd_store_max",
    "every", "on_calendar", "persistent", "random_delay",
})  # fmt: skip

#: How a field is spelled in the config, where that differs.
_KEY_OF_FIELD = {
    "main": "exec/script",
    "shell_script": "exec/script",
    "hooks": "hooks",
    "while_": "while",
    "restart": "restart*",
    "on_connection": "activate",
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
