"""corral's definitions as a docker-compose file: each service a compose service in the given
image, ``requires``/``wants`` as ``depends_on`` (on a oneshot: completed successfully; on a
service with an exec ``ready`` probe: healthy; else started), an exec probe as the
healthcheck, ``autostart = false`` as the ``manual`` profile (``docker compose up`` leaves it
out until asked for by name or profile).

compose interpolates ``$VAR`` from the host when it reads the file, so every dollar of a
command is doubled; a command that uses corral's ``${VAR}`` runs through ``/bin/sh -c`` in
the container, whose shell expands it from the container's environment as corral would.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from typing import Any

from corral.convert import unit_values as uv
from corral.convert.export_common import Exported, Report, Where, argv_of, on_demand
from corral.convert.export_kubernetes import container_name
from corral.core.definition import Command, Definition
from corral.core.states import ProcessKind, RestartMode, ServiceType

_NOT_IN_COMPOSE = {
    "umask": "compose has no umask",
    "restart_delay": "compose backs off by itself",
    "restart_limit": "compose restarts without a limit",
    "normal_exit": "compose counts only status 0 as success",
    "timeout_start": "compose has no startup deadline",
    "start_grace": "compose has no grace after the start",
    "after": "compose has no order-only dependency",
    "provides": "a compose service has one name (networks give aliases)",
    "actions": "compose has no actions (docker compose exec runs commands)",
    "log": "compose keeps container output itself",
    "reload_signal": "compose has no reload (docker compose kill -s sends a signal)",
    "ready_fd": "compose knows health by healthchecks only",
    "pid_file": "a container's main process is its own",
    "description": "compose has no description",
}
_HOOKS = {ProcessKind.PRE_START: "pre_start", ProcessKind.POST_START: "post_start",
          ProcessKind.PRE_STOP: "pre_stop", ProcessKind.POST_STOP: "post_stop"}  # fmt: skip
_VARIABLE = re.compile(r"\$(?:\{[A-Za-z_][A-Za-z0-9_]*\}|[A-Za-z_][A-Za-z0-9_]*)")


def export_compose(definitions: Mapping[str, Definition], where: Where, image: str) -> Exported:
    """``compose.yaml`` with every service that has a process."""
    exported = Exported()
    report = Report(where, exported)
    names = {name: container_name(name) for name in definitions}
    services: dict[str, Any] = {}
    for d in definitions.values():
        reason = on_demand(d)
        if reason is not None:
            report.skip(d, "exec" if d.main is None else "instance",
                        f"{reason}: compose runs each service once", always=True)  # fmt: skip
            continue
        services[names[d.name]] = _service(d, definitions, names, image, report)
    import yaml

    exported.files["compose.yaml"] = yaml.safe_dump({"services": services}, sort_keys=False)
    return exported


def _service(
    d: Definition, definitions: Mapping[str, Definition], names: Mapping[str, str],
    image: str, report: Report,
) -> dict[str, Any]:  # fmt: skip
    report.skip_all(d, _NOT_IN_COMPOSE)
    for kind, key in _HOOKS.items():
        if kind in d.hooks:
            report.skip(d, key, "compose runs one command per service")
    assert d.main is not None
    service: dict[str, Any] = {"image": image, "entrypoint": _command(d, d.main)}
    if d.cwd:
        service["working_dir"] = d.cwd
    if d.user is not None:
        service["user"] = f"{d.user}:{d.group}" if d.group is not None else str(d.user)
    if d.env:
        service["environment"] = {k: v.replace("$", "$$") for k, v in d.env.items()}
    if d.env_file:
        service["env_file"] = [path.removeprefix("-") for path in d.env_file]
        if any(path.startswith("-") for path in d.env_file):
            report.skip(d, "env_file", "compose needs every env file to exist")
    service["restart"] = {RestartMode.ALWAYS: "always", RestartMode.ON_FAILURE: "on-failure",
                          RestartMode.NO: "no"}[d.restart.mode]  # fmt: skip
    service["stop_signal"] = f"SIG{_signal_name(d.stop_signal)}"
    service["stop_grace_period"] = uv.span(d.stop_timeout)
    health = _healthcheck(d, report)
    if health is not None:
        service["healthcheck"] = health
    depends = _depends_on(d, definitions, names)
    if depends:
        service["depends_on"] = depends
    if not d.autostart:
        service["profiles"] = ["manual"]
    return service


def _depends_on(
    d: Definition, definitions: Mapping[str, Definition], names: Mapping[str, str]
) -> dict[str, Any]:
    aliases = {alias: name for name, other in definitions.items() for alias in other.provides}
    depends: dict[str, Any] = {}
    for need in (*d.requires, *d.wants):
        other = definitions.get(aliases.get(need, need))
        if other is None or on_demand(other) is not None:
            continue
        if other.type is ServiceType.ONESHOT:
            condition = "service_completed_successfully"
        elif other.ready is not None and other.ready.kind == "exec":
            condition = "service_healthy"
        else:
            condition = "service_started"
        depends[names[other.name]] = {"condition": condition}
    return depends


def _healthcheck(d: Definition, report: Report) -> dict[str, Any] | None:
    ready = d.ready
    if ready is None:
        return None
    if ready.kind != "exec" or ready.command is None:
        report.skip(d, "ready", "a healthcheck runs in the image: give ready an exec probe")
        return None
    if ready.command.script is not None:
        test = ["CMD-SHELL", ready.command.script.replace("$", "$$")]
    else:
        test = ["CMD", *(_dollars(word) for word in ready.command.argv)]
    health: dict[str, Any] = {"test": test, "interval": uv.span(ready.interval)}
    if ready.timeout is not None:
        health["start_period"] = uv.span(ready.timeout)
    return health


def _command(d: Definition, command: Command) -> list[str]:
    """The command as compose's ``entrypoint``; through the shell where corral would have
    expanded variables in it."""
    argv = argv_of(d, command)
    if command.script is not None:
        return [*argv[:-1], argv[-1].replace("$", "$$")]
    if any(_VARIABLE.search(word.replace("$$", "")) for word in argv):
        line = " ".join(_shell_word(word) for word in argv)
        return ["/bin/sh", "-c", "exec " + line.replace("$", "$$")]
    return [_dollars(word) for word in argv]


def _dollars(word: str) -> str:
    """A corral word with no variables, as compose reads it: ``$$`` is corral's dollar."""
    return word.replace("$$", "$").replace("$", "$$")


def _shell_word(word: str) -> str:
    """A corral word for sh: its variables left for the shell to expand."""
    pieces = re.split(r"(\$\$|\$\{[A-Za-z_][A-Za-z0-9_]*\}|\$[A-Za-z_][A-Za-z0-9_]*)", word)
    out = []
    for piece in pieces:
        if piece == "$$":
            out.append("'$'")
        elif piece.startswith("$"):
            out.append('"' + piece + '"')
        elif piece:
            out.append(shlex.quote(piece))
    return "".join(out) or "''"


def _signal_name(number: int) -> str:
    import signal

    return signal.Signals(number).name.removeprefix("SIG")
