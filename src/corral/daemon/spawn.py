"""Start one child: the command line, its environment and its process credentials.

The usual child (no ``cwd``, ``user``, ``group`` or ``umask``) is started by
``os.posix_spawn``: glibc's vfork-style spawn with exec errors reported synchronously, at
about half the CPU of ``subprocess.Popen``, which matters when thousands start at once. The
others use Popen as a fork+exec primitive (it gives cwd, credentials and umask), also once
corral holds enough fds for plain children to go through the spawner thread: credentials are
set in this one place, the way a login sets them (:func:`credentials`). Neither closes fds
in the child: every fd corral holds is close-on-exec. Neither waits here: the one reaper
collects every exit, and Popen is told its child is already collected, so its own
bookkeeping never reaps one of ours.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from msgspec import Struct

from corral.core.definition import Command, Definition
from corral.core.expand import expand, parse_env_file
from corral.daemon.fdpass import (
    Handed,
    placements,
    placer,
    raised,
    spawn_actions,
    with_own_pid,
)
from corral.daemon.spawner import STDIN_ON_NULL, spawn_through


class SpawnError(Exception):
    """The process could not be started; the message says why, for the user."""


class Child(Struct):
    """A running process of an instance: its pid and process group. ``ours`` is False for
    a main process adopted from a pid file or ``MAINPID=`` (not necessarily our child)."""

    pid: int
    pgid: int
    ours: bool = True


def command_argv(command: Command, env: Mapping[str, str], main_script: bool) -> list[str]:
    """The argv to exec: an exec list with ``$VAR`` expanded, or a script under ``/bin/sh``.

    The main ``script`` runs with ``-e`` (stop at the first failing command), as DESIGN.md
    says; hooks and actions given as strings run with plain ``sh -c``.
    """
    if command.script is not None:
        return ["/bin/sh", "-e", "-c", command.script] if main_script else [
            "/bin/sh", "-c", command.script,
        ]  # fmt: skip
    return [expand(word, env) for word in command.argv]


def process_env(
    definition: Definition, base: Mapping[str, str], extra: Mapping[str, str]
) -> dict[str, str]:
    """The environment of a child: corral's own, then env_file(s), then ``env``, then what
    the start request or event carried, then corral's variables. Reads env files (small
    local files, like systemd does at each start)."""
    env = dict(base)
    for path in definition.env_file:
        optional = path.startswith("-")
        path = path.removeprefix("-")
        try:
            with open(path, encoding="utf-8") as handle:
                env.update(parse_env_file(handle.read()))
        except FileNotFoundError:
            if not optional:
                raise SpawnError(f"env_file {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise SpawnError(f"env_file {path}: {exc}") from None
    env.update(definition.env)
    env.update(extra)
    return env


@contextlib.contextmanager
def fd_placed(target: int, source: int, wakeup_fd: int | None) -> Iterator[None]:
    """Make ``source`` visible as fd ``target`` while a child is spawned (``ready_fd``).

    Popen can only pass fds under their own numbers, so fd ``target`` of corral itself is
    set aside for the moment of the spawn and put back after. If it is the loop's signal
    wakeup fd, signals are pointed at the set-aside copy meanwhile so none is lost.
    """
    try:
        saved: int | None = os.dup(target)
    except OSError:
        saved = None  # not open in corral: nothing to set aside
    swapped_wakeup = saved is not None and target == wakeup_fd
    if swapped_wakeup:
        assert saved is not None
        signal.set_wakeup_fd(saved)
    os.dup2(source, target, inheritable=True)
    try:
        yield
    finally:
        if saved is None:
            os.close(target)
        else:
            os.dup2(saved, target, inheritable=False)
            os.close(saved)
        if swapped_wakeup:
            signal.set_wakeup_fd(target)


def spawn(
    definition: Definition,
    command: Command,
    env: Mapping[str, str],
    output_fd: int,
    *,
    main_script: bool = False,
    extra_fd: tuple[int, int] | None = None,
    wakeup_fd: int | None = None,
    handed: Handed | None = None,
) -> Child:
    """Fork and exec one command of an instance in a new process group; stdin is /dev/null,
    stdout and stderr go to ``output_fd``; ``extra_fd`` (target, source) gives the child
    one more fd, ``handed`` its sockets, connection and own-pid variables (``fdpass.py``).
    Raises SpawnError with a message for the user."""
    try:
        argv = command_argv(command, env, main_script=main_script)
    except KeyError as exc:
        raise SpawnError(str(exc)) from None
    unspawnable = _unspawnable(argv, env)
    if unspawnable is not None:
        raise SpawnError(unspawnable)
    cwd = os.path.expanduser(definition.cwd) if definition.cwd else None
    plain = cwd is None and definition.user is None and definition.group is None
    if handed is not None and not handed.empty:
        in_place = plain and definition.umask is None and output_fd > 2
        return _spawn_handed(definition, argv, env, output_fd, cwd, extra_fd, handed, in_place)
    if plain and definition.umask is None and output_fd > 2:
        pid = _posix_spawn(argv, env, output_fd, extra_fd)
        return Child(pid, pid)
    placed: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
    if extra_fd is not None:
        placed = fd_placed(extra_fd[0], extra_fd[1], wakeup_fd)
    try:
        with placed:
            popen = _popen(argv, env, cwd, definition, output_fd)
    except OSError as exc:
        raise SpawnError(str(exc)) from None
    popen.returncode = 0  # collected by the reaper, never by Popen's own polling
    return Child(popen.pid, popen.pid)


def _unspawnable(argv: list[str], env: Mapping[str, str]) -> str | None:
    """What exec cannot take (posix_spawn and Popen raise ValueError, past every spawn
    path's handling): a NUL byte in an argument or a variable, a variable name that is
    empty or holds '='."""
    if any("\0" in word for word in argv):
        return f"{argv[0]!r}: an argument holds a NUL byte"
    for key, value in env.items():
        if not key or "=" in key or "\0" in key:
            return f"{key!r} cannot be the name of an environment variable"
        if "\0" in value:
            return f"environment variable {key} holds a NUL byte"
    return None


def _spawn_handed(
    definition: Definition,
    argv: list[str],
    env: Mapping[str, str],
    output_fd: int,
    cwd: str | None,
    extra_fd: tuple[int, int] | None,
    handed: Handed,
    in_place: bool,
) -> Child:
    """A main process handed fds, a connection or its own pid: posix_spawn where nothing
    else is asked, else Popen placing the fds in its preexec. Never the spawner thread: a
    socket cannot be reopened through /proc, which is how the thread's children get fds."""
    program = _executable(argv[0], env)  # said here: the wrapper's sh would only exit 127
    argv = with_own_pid(argv, handed.own_pid)
    if handed.own_pid:
        program = argv[0]
    with raised(placements(handed, extra_fd)) as placed:
        if in_place:
            actions = spawn_actions(output_fd, handed.stdio, placed)
            pid = _posix_spawn_with(program, argv, env, actions)
            return Child(pid, pid)
        try:
            popen = _popen(argv, env, cwd, definition, output_fd, handed.stdio, placer(placed))
        except OSError as exc:
            raise SpawnError(str(exc)) from None
    popen.returncode = 0  # collected by the reaper, never by Popen's own polling
    return Child(popen.pid, popen.pid)


def keep_inherited_fds() -> None:
    """Make the fds corral was started with (above stdio) close-on-exec, so no child
    inherits them: neither spawn path closes fds in the child, both pass on every
    inheritable fd."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc (yet) in this container: try the usual range
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2:
            with contextlib.suppress(OSError):  # the listing's own fd, closed by now
                os.set_inheritable(fd, False)


# Python ignores these; an exec keeps them ignored unless they are reset (Popen's
# ``restore_signals``).
_RESET_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFZ", "SIGXFSZ") if hasattr(signal, name)
)


def _posix_spawn(
    argv: list[str], env: Mapping[str, str], output_fd: int, extra_fd: tuple[int, int] | None
) -> int:
    """Spawn in a new process group with stdin on /dev/null, stdout and stderr on
    ``output_fd``, and ``extra_fd`` (target, source) placed. Relies on corral's fds being
    close-on-exec (Python's default; the daemon marks the ones it inherited at start). Once
    corral holds many fds, the spawner thread does it."""
    program = _executable(argv[0], env)
    fds = [(1, output_fd), (2, output_fd)] + ([extra_fd] if extra_fd is not None else [])
    pid = spawn_through(output_fd, program, argv, env, fds, _RESET_SIGNALS)
    if pid is not None:
        return pid
    actions: list[tuple[Any, ...]] = [
        STDIN_ON_NULL,
        (os.POSIX_SPAWN_DUP2, output_fd, 1),
        (os.POSIX_SPAWN_DUP2, output_fd, 2),
    ]
    spare = None
    if extra_fd is not None:
        target, source = extra_fd
        if source == target:  # a dup2 onto itself would leave it close-on-exec
            source = spare = os.dup(source)
        actions.append((os.POSIX_SPAWN_DUP2, source, target))
    try:
        return _posix_spawn_with(program, argv, env, actions)
    finally:
        if spare is not None:
            os.close(spare)


def _posix_spawn_with(
    program: str, argv: list[str], env: Mapping[str, str], actions: list[tuple[Any, ...]]
) -> int:
    """posix_spawn in a new process group, with Python's ignored signals reset."""
    try:
        return os.posix_spawn(
            program, argv, env, file_actions=actions, setpgroup=0, setsigdef=_RESET_SIGNALS
        )
    except FileNotFoundError:
        raise SpawnError(f"{argv[0]}: command not found") from None
    except PermissionError:
        raise SpawnError(f"{program}: permission denied") from None
    except OSError as exc:
        raise SpawnError(f"{program}: {exc.strerror or exc}") from None


def _executable(name: str, env: Mapping[str, str]) -> str:
    """Where a command is: itself if it names a path, else the first executable file of
    that name on the child's PATH (as execvpe looks)."""
    if "/" in name:
        return name
    for directory in os.get_exec_path(env):
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    raise SpawnError(f"{name}: command not found")


def _popen(
    argv: list[str],
    env: Mapping[str, str],
    cwd: str | None,
    definition: Definition,
    output_fd: int,
    stdio: int | None = None,
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Fork and exec with cwd, credentials or umask. No fd is closed in the child: every fd
    of corral's is close-on-exec but the one ``fd_placed`` put there, and closing them one by
    one (Python 3.11 does, after a fork) took milliseconds with thousands open. ``stdio``
    is a connection for stdin and stdout; ``preexec`` places handed fds."""
    ids = credentials(definition)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if stdio is None else stdio,
            stdout=output_fd if stdio is None else stdio,
            stderr=output_fd,
            env=dict(env),
            cwd=cwd,
            user=ids.uid,
            group=ids.gid,
            extra_groups=ids.groups,
            umask=-1 if definition.umask is None else definition.umask,
            process_group=0,
            close_fds=False,
            preexec_fn=preexec,
        )
    except FileNotFoundError as exc:
        missing = exc.filename if exc.filename else argv[0]
        if cwd and missing == cwd:
            raise SpawnError(f"cwd {cwd} does not exist") from None
        raise SpawnError(f"{missing}: command not found") from None
    except PermissionError as exc:
        raise SpawnError(f"{exc.filename or argv[0]}: permission denied") from None
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        raise SpawnError(str(exc)) from None


class Credentials(Struct, frozen=True):
    """What the child's uid, gid and supplementary groups become; None leaves it as corral's."""

    uid: int | None = None
    gid: int | None = None
    groups: list[int] | None = None


def credentials(definition: Definition) -> Credentials:
    """The credentials of a child, as a login gives them: with ``user``, its uid, its own
    primary group (or ``group``) and the groups that list it as a member (``initgroups``), so
    nothing of root's gid or groups is kept; with ``group`` alone, that gid. Not as root,
    only what is configured is asked for (setgroups would be refused). Raises SpawnError."""
    gid = None if definition.group is None else _group_id(definition.group)
    if definition.user is None:
        return Credentials(gid=gid)
    entry = _passwd_entry(definition.user)
    if os.geteuid() != 0:
        return Credentials(uid=entry.pw_uid, gid=gid)
    primary = entry.pw_gid if gid is None else gid
    return Credentials(entry.pw_uid, primary, os.getgrouplist(entry.pw_name, primary))


def _passwd_entry(user: str | int) -> pwd.struct_passwd:
    try:
        return pwd.getpwuid(user) if isinstance(user, int) else pwd.getpwnam(user)
    except KeyError:
        raise SpawnError(f"no such user: {user}") from None


def _group_id(group: str | int) -> int:
    if isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise SpawnError(f"no such group: {group}") from None
