"""A unit's ``[Service]`` directives as corral's keys (the unit importer's largest table)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from corral.convert import unit_values as uv
from corral.convert.ini import Setting
from corral.convert.model import not_yet, supported
from corral.convert.unit_context import UnitContext
from corral.convert.unit_exec import ExecLine

Handler = Callable[[UnitContext, Setting], None]

_TYPES = {"simple": "simple", "exec": "simple", "idle": "simple", "notify": "notify",
          "notify-reload": "notify", "forking": "forking", "oneshot": "oneshot"}  # fmt: skip
_RESTARTS = {"no": "no", "always": "always", "on-failure": "on-failure"}
_KILL = re.compile(r"^(?:/usr)?(?:/bin/)?kill\s+(?:-s\s+)?-?(?:SIG)?([A-Z0-9]+)\s+\$\{?MAINPID\}?$")
_SHELLS = ("/bin/sh", "sh")


def _type(ctx: UnitContext, setting: Setting) -> None:
    kind = _TYPES.get(setting.value)
    if kind is None:
        ctx.skip(setting, f"corral has no type {setting.value!r}")
        return
    ctx.service_type = kind
    if kind != "simple":
        ctx.set("type", kind, setting)


def _exec_start(ctx: UnitContext, setting: Setting) -> None:
    lines = ctx.commands(setting)
    if not lines:
        return
    if len(lines) == 1 and not set(lines[0].prefixes) - set("+!:"):
        script = _script_of(lines[0].argv, "-e")
        if script is not None:
            ctx.set("script", script, setting)
        else:
            ctx.set("exec", lines[0].argv, setting)
        _privileged(ctx, setting, lines)
        return
    if any("-" in line.prefixes for line in lines):
        ctx.skip(setting, "corral has no way to ignore a failed main process", "ExecStart -")
    if any("@" in line.prefixes for line in lines):
        ctx.skip(setting, "corral runs argv[0] as the program's name", "ExecStart @")
    if len(lines) == 1:
        ctx.set("exec", lines[0].argv, setting)
    else:
        ctx.set("script", "\n".join(_shell_command(line.argv) for line in lines), setting)


def _privileged(ctx: UnitContext, setting: Setting, lines: list[ExecLine]) -> None:
    if any(set(line.prefixes) & set("+!") for line in lines):
        ctx.skip(setting, "corral runs every process of a service as its user",
                 f"{setting.key} +/!")  # fmt: skip


def _hook(key: str) -> Handler:
    """ExecStartPre= and the like: one command as argv, several (or ``-`` ones) as a script
    run by ``/bin/sh -c`` that stops at the first failure that counts."""

    def handle(ctx: UnitContext, setting: Setting) -> None:
        lines = ctx.commands(setting)
        if not lines:
            return
        _privileged(ctx, setting, lines)
        earlier = ctx.draft.keys.pop(key, None)
        previous = [] if earlier is None else [_as_script(earlier.value)]
        if not previous and len(lines) == 1 and not set(lines[0].prefixes) & set("-@"):
            script = _script_of(lines[0].argv, None)
            ctx.set(key, lines[0].argv if script is None else script, setting)
            return
        commands = [_shell_command(line.argv) + (" || true" if "-" in line.prefixes else "")
                    for line in lines]  # fmt: skip
        body = [p.removeprefix("set -e\n") for p in previous] + commands
        ctx.set(key, "set -e\n" + "\n".join(body), setting)

    return handle


def _as_script(value: object) -> str:
    return _shell_command(list(value)) if isinstance(value, list) else str(value)


def _script_of(argv: list[str], flag: str | None) -> str | None:
    """The script of ``/bin/sh [-e] -c SCRIPT``, as corral's ``script`` (or a string hook)
    runs it; None for any other command."""
    expected = [*([flag] if flag else []), "-c"]
    if len(argv) != len(expected) + 2 or argv[0] not in _SHELLS or argv[1:-1] != expected:
        return None
    return argv[-1].replace("$$", "$")


def _shell_command(argv: list[str]) -> str:
    """corral words as a line of sh: variables left for the shell, the rest quoted."""
    return " ".join(_shell_word(word) for word in argv)


def _shell_word(word: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", word):
        return word
    out = []
    for piece in re.split(r"(\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*)", word):
        if piece == "$$":
            out.append("\\$")
        elif piece.startswith("$"):
            out.append(piece)
        else:
            out.append(re.sub(r'(["\\`$])', r"\\\1", piece))
    return '"' + "".join(out) + '"'


def _exec_stop(ctx: UnitContext, setting: Setting) -> None:
    ctx.planned("stop_exec", _as_value(ctx.commands(setting)), setting)


def _exec_reload(ctx: UnitContext, setting: Setting) -> None:
    match = _KILL.match(setting.value.strip())
    if match is not None:
        ctx.set("reload_signal", uv.signal_name(match.group(1)), setting)
    else:
        ctx.planned("reload_exec", _as_value(ctx.commands(setting)), setting)


def _as_value(lines: list[ExecLine]) -> list[str] | str:
    if len(lines) == 1:
        return lines[0].argv
    return "\n".join(_shell_command(line.argv) for line in lines)


def _timeout(key: str, what: str) -> Handler:
    def handle(ctx: UnitContext, setting: Setting) -> None:
        try:
            value = uv.seconds(setting.value)
        except uv.Infinite:
            value = 0.0
        except ValueError as exc:
            ctx.fail(setting, str(exc))
            return
        if value == 0:
            ctx.skip(setting, f"corral has no unlimited {key}; its default {what} applies")
        else:
            ctx.set(key, uv.number(value), setting)

    return handle


def _timeout_both(ctx: UnitContext, setting: Setting) -> None:
    _timeout("timeout_start", "(90 s)")(ctx, setting)
    _timeout("stop_timeout", "(10 s)")(ctx, setting)


def _restart(ctx: UnitContext, setting: Setting) -> None:
    if setting.value in _RESTARTS:
        ctx.set("restart", _RESTARTS[setting.value], setting)
    else:
        ctx.skip(setting, f"corral restarts no, on-failure or always, not {setting.value}")


def _seconds(key: str, planned: bool = False) -> Handler:
    def handle(ctx: UnitContext, setting: Setting) -> None:
        try:
            value = uv.number(uv.seconds(setting.value))
        except ValueError as exc:
            ctx.skip(setting, str(exc))
            return
        (ctx.planned if planned else ctx.set)(key, value, setting)

    return handle


def _success_status(ctx: UnitContext, setting: Setting) -> None:
    statuses: list[int | str] = [0]
    for word in setting.value.split():
        item = uv.signal_name(word)
        if isinstance(item, int) and not 0 <= item <= 255:
            ctx.fail(setting, f"exit statuses are 0 to 255, got {word}")
            return
        if item not in statuses:
            statuses.append(item)
    ctx.set("normal_exit", statuses, setting)


def _environment(ctx: UnitContext, setting: Setting) -> None:
    try:
        words = shlex.split(setting.value)
    except ValueError as exc:
        ctx.fail(setting, str(exc))
        return
    if not words:
        ctx.env.clear()
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            ctx.fail(setting, f"expected NAME=VALUE, got {word!r}")
        elif ctx.instance_var is not None and value in ("%i", "%I") and name == ctx.instance_var:
            continue  # the template's instance: corral sets it from the instance key
        elif (text := ctx.static(setting, value)) is not None:
            ctx.env[name] = text
    ctx.env_line = ctx.env_line or setting.line


def _env_file(ctx: UnitContext, setting: Setting) -> None:
    path = ctx.static(setting)
    if path is None:
        return
    files = list(ctx.draft.value("env_file", [])) if path else []
    ctx.set("env_file", [*files, path] if path else [], setting)
    if not path:
        del ctx.draft.keys["env_file"]


def _plain(key: str, convert: Callable[[str], object] = str, planned: bool = False) -> Handler:
    def handle(ctx: UnitContext, setting: Setting) -> None:
        text = ctx.static(setting)
        if text is None:
            return
        try:
            value = convert(text)
        except ValueError as exc:
            ctx.fail(setting, str(exc))
            return
        (ctx.planned if planned else ctx.set)(key, value, setting)

    return handle


def _umask(text: str) -> str:
    digits = text.lstrip("0") or "0"
    if not re.fullmatch(r"[0-7]{1,3}", digits):
        raise ValueError(f"expected an octal mask, got {text!r}")
    return digits.zfill(3)


def _working_directory(ctx: UnitContext, setting: Setting) -> None:
    if setting.value.startswith("-"):
        ctx.skip(setting, "corral fails a start whose directory is missing", "WorkingDirectory -")
    text = ctx.static(setting, setting.value.removeprefix("-"))
    if text is not None:
        ctx.set("cwd", text, setting)


def _pid_file(ctx: UnitContext, setting: Setting) -> None:
    """Kept for ``forking`` only: corral knows any other type's main process without it (the
    type is read first: see ``import_unit``)."""
    if ctx.service_type != "forking":
        ctx.skip(setting, "corral reads a pid file only for type forking")
    elif (text := ctx.static(setting)) is not None:
        ctx.set("pid_file", text, setting)


def _remain(ctx: UnitContext, setting: Setting) -> None:
    try:
        remain = uv.boolean(setting.value)
    except ValueError as exc:
        ctx.fail(setting, str(exc))
        return
    if not remain:
        ctx.skip(setting, "a corral oneshot stays done (its requirements hold) until stopped")


def _limit(ctx: UnitContext, setting: Setting) -> None:
    name = setting.key.removeprefix("Limit").lower()
    if not supported("limits"):
        ctx.skip(setting, not_yet("limits"))
        return
    try:
        value = uv.limit(setting.value)
    except ValueError as exc:
        ctx.fail(setting, str(exc))
        return
    limits = dict(ctx.draft.value("limits", {}))
    limits[name] = value
    line = ctx.draft.keys["limits"].line if "limits" in ctx.draft.keys else setting.line
    ctx.draft.set("limits", limits, line)


def _directory(key: str) -> Handler:
    def handle(ctx: UnitContext, setting: Setting) -> None:
        names = [n for n in (ctx.static(setting) or "").split() if n]
        if names:
            ctx.planned(key, names[0] if len(names) == 1 else names, setting)

    return handle


def _flag(key: str) -> Handler:
    def handle(ctx: UnitContext, setting: Setting) -> None:
        try:
            ctx.planned(key, uv.boolean(setting.value), setting)
        except ValueError:
            ctx.planned(key, setting.value, setting)

    return handle


def _paths(key: str) -> Handler:
    def handle(ctx: UnitContext, setting: Setting) -> None:
        text = ctx.static(setting)
        if text is None:
            return
        paths = text.split()
        ctx.planned(key, [*ctx.draft.value(key, []), *paths] if paths else [], setting)

    return handle


def _capabilities(key: str) -> Handler:
    def handle(ctx: UnitContext, setting: Setting) -> None:
        if setting.value.startswith("~"):
            ctx.skip(setting, "corral takes the capabilities to keep, not those to drop")
        else:
            ctx.planned(key, setting.value.split(), setting)

    return handle


SERVICE: dict[str, Handler] = {
    "Type": _type,
    "ExecStart": _exec_start,
    "ExecStartPre": _hook("pre_start"),
    "ExecStartPost": _hook("post_start"),
    "ExecStopPost": _hook("post_stop"),
    "ExecStop": _exec_stop,
    "ExecReload": _exec_reload,
    "Restart": _restart,
    "RestartSec": _seconds("restart_delay"),
    "TimeoutStartSec": _timeout("timeout_start", "(90 s)"),
    "TimeoutStopSec": _timeout("stop_timeout", "(10 s)"),
    "TimeoutSec": _timeout_both,
    "KillSignal": _plain("stop_signal", uv.signal_name),
    "SuccessExitStatus": _success_status,
    "Environment": _environment,
    "EnvironmentFile": _env_file,
    "User": _plain("user"),
    "Group": _plain("group"),
    "UMask": _plain("umask", _umask),
    "WorkingDirectory": _working_directory,
    "PIDFile": _pid_file,
    "RemainAfterExit": _remain,
    "RuntimeDirectory": _directory("runtime_directory"),
    "StateDirectory": _directory("state_directory"),
    "CacheDirectory": _directory("cache_directory"),
    "LogsDirectory": _directory("logs_directory"),
    "RuntimeDirectoryMode": _plain("directory_mode", planned=True),
    "NoNewPrivileges": _flag("no_new_privileges"),
    "PrivateTmp": _flag("private_tmp"),
    "ProtectSystem": _flag("protect_system"),
    "ProtectHome": _flag("protect_home"),
    "ReadWritePaths": _paths("read_write_paths"),
    "CapabilityBoundingSet": _capabilities("capabilities"),
    "AmbientCapabilities": _capabilities("ambient_capabilities"),
    "WatchdogSec": _seconds("watchdog", planned=True),
    **{f"Limit{name.upper()}": _limit for name in uv.LIMITS},
}
