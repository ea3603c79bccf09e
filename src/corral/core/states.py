"""Goals, states and process kinds, named exactly as DESIGN.md names them."""

from __future__ import annotations

from enum import StrEnum


class Goal(StrEnum):
    """What the instance is asked to be; the only thing a command changes."""

    START = "start"
    STOP = "stop"


class State(StrEnum):
    """Where an instance is in Upstart's state machine."""

    WAITING = "waiting"
    STARTING = "starting"
    PRE_START = "pre-start"
    SPAWNED = "spawned"
    POST_START = "post-start"
    RUNNING = "running"
    PRE_STOP = "pre-stop"
    STOPPING = "stopping"
    KILLED = "killed"
    POST_STOP = "post-stop"
    FAILED = "failed"


#: States an instance stays in until told otherwise; every other state ends on its own.
REST_STATES = frozenset({State.WAITING, State.RUNNING, State.FAILED})


class ProcessKind(StrEnum):
    """Which of an instance's processes; the value is what the ``PROCESS`` variable says."""

    MAIN = "main"
    PRE_START = "pre-start"
    POST_START = "post-start"
    PRE_STOP = "pre-stop"
    POST_STOP = "post-stop"


class ServiceType(StrEnum):
    """How an instance tells it is ready."""

    SIMPLE = "simple"
    NOTIFY = "notify"
    FORKING = "forking"
    ONESHOT = "oneshot"
    DBUS = "dbus"  # ready once it owns its bus_name


class RestartMode(StrEnum):
    """When a main process that ended is started again."""

    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"


class TimerKind(StrEnum):
    """The one deadline an instance may have armed at a time, by what it guards."""

    HOOK = "hook"  # a hook must finish within its timeout
    START = "start"  # the main process must be ready within timeout_start
    KILL = "kill"  # a signalled process must be gone within stop_timeout, else SIGKILL
    RESPAWN = "respawn"  # the restart delay before a respawn
    WATCHDOG = "watchdog"  # a running main process must say WATCHDOG=1 within ``watchdog``
