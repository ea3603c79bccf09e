"""corral's definitions as systemd units, one ``NAME.service`` each (``NAME@.service`` for a
service instantiated by one variable, which ``Environment=VAR=%i`` sets from the instance).

Readiness maps to ``Type=``: ``simple`` is systemd's ``exec`` (ready once exec'd), ``notify``
and ``forking`` are the same protocols, a ``oneshot`` stays active (``RemainAfterExit=yes``)
as corral's does. ``requires`` and ``wants`` also order (``After=``), as they do in corral.
``autostart`` is ``WantedBy=multi-user.target``. Every key is written so that the unit
importer reads it back to the same value; what systemd has no place for is reported.
"""

from __future__ import annotations

import signal as _signal
from collections.abc import Mapping

from corral.convert import unit_values as uv
from corral.convert.export_common import (
    Exported,
    Report,
    Where,
    argv_of,
    default_start_grace,
    on_demand,
)
from corral.convert.unit_exec import unit_command, unit_word
from corral.core.definition import Command, Definition
from corral.core.instances import sole_variable
from corral.core.states import ProcessKind, ServiceType

_TYPES = {ServiceType.SIMPLE: "exec", ServiceType.NOTIFY: "notify",
          ServiceType.FORKING: "forking", ServiceType.ONESHOT: "oneshot"}  # fmt: skip
_HOOKS = {ProcessKind.PRE_START: "ExecStartPre", ProcessKind.POST_START: "ExecStartPost",
          ProcessKind.PRE_STOP: "ExecStop", ProcessKind.POST_STOP: "ExecStopPost"}  # fmt: skip
_NOT_IN_SYSTEMD = {
    "ready": "systemd has no readiness probes; Type= is the readiness it knows",
    "ready_fd": "systemd has no readiness on a file descriptor",
    "start_on": "systemd has no event conditions",
    "stop_on": "systemd has no event conditions",
    "while": "systemd has no state conditions",
    "actions": "systemd has no actions",
    "log": "systemd logs to the journal",
}


def export_systemd(definitions: Mapping[str, Definition], where: Where) -> Exported:
    """One unit file per service."""
    exported = Exported()
    report = Report(where, exported)
    for d in definitions.values():
        if d.main is None:
            report.skip(d, "exec", "a state (no process) is no systemd service", always=True)
            continue
        variable = sole_variable(d.instance) if d.instance else None
        if d.instance is not None and variable is None:
            report.skip(d, "instance", "a template unit has one instance variable (%i)")
        name = f"{d.name}@.service" if variable else f"{d.name}.service"
        exported.files[name] = _unit(d, variable, definitions, report)
    return exported


def _unit(
    d: Definition, variable: str | None, definitions: Mapping[str, Definition], report: Report
) -> str:
    report.skip_all(d, _NOT_IN_SYSTEMD)
    if d.start_grace != default_start_grace(d):
        report.skip(d, "start_grace", "systemd has no grace after the start")
    if d.restart.normal_statuses and 0 not in d.restart.normal_statuses:
        report.skip(d, "normal_exit", "systemd always counts exit status 0 as success")
    lines = ["[Unit]"]
    if d.description:
        description = d.description.rstrip("\\")
        if description != d.description:  # a unit line ending in one continues on the next
            report.skip(d, "description", "a unit line cannot end in a backslash", always=True)
        if description:
            lines.append(f"Description={_escape(description)}")
    aliases = {alias: name for name, other in definitions.items() for alias in other.provides}
    for key, directive in (("requires", "Requires"), ("wants", "Wants")):
        for need in getattr(d, key):
            lines.append(f"{directive}={aliases.get(need, need)}.service")
    for need in dict.fromkeys((*d.requires, *d.wants, *d.after)):
        lines.append(f"After={aliases.get(need, need)}.service")
    if (d.restart.burst, d.restart.interval) != (5, 10.0):
        lines.append(f"StartLimitBurst={d.restart.burst}")
        lines.append(f"StartLimitIntervalSec={uv.span(d.restart.interval)}")
    lines += ["", "[Service]", f"Type={_TYPES[d.type]}"]
    if d.type is ServiceType.ONESHOT:
        lines.append("RemainAfterExit=yes")
    if variable:
        lines.append(f"Environment={_quoted_env(variable, '%i')}")
    lines += _service_lines(d)
    assert d.main is not None  # a state is not exported: see export_systemd
    lines.append(f"ExecStart={_command(d, d.main)}")
    for kind, directive in _HOOKS.items():
        if kind in d.hooks:
            lines.append(f"{directive}={_command(d, d.hooks[kind])}")
    if ProcessKind.PRE_STOP in d.hooks:
        report.skip(d, "pre_stop", "written as ExecStop=, which imports as stop_exec")
    lines.append(f"ExecReload=/bin/kill -s {_signal_name(d.reload_signal)} $MAINPID")
    wanted = d.autostart and on_demand(d) is None
    if d.autostart and not wanted:
        report.skip(d, "autostart", f"{on_demand(d)}: systemd starts it only when asked")
    if wanted or d.provides:
        lines += ["", "[Install]"]
    if wanted:
        lines.append("WantedBy=multi-user.target")
    lines += [f"Alias={alias}.service" for alias in d.provides]
    return "\n".join(lines) + "\n"


def _service_lines(d: Definition) -> list[str]:
    lines = [f"Environment={_quoted_env(k, v)}" for k, v in d.env.items()]
    lines += [f"EnvironmentFile={_escape(path)}" for path in d.env_file]
    for value, directive in ((d.cwd, "WorkingDirectory"), (d.user, "User"), (d.group, "Group"),
                             (d.pid_file, "PIDFile")):  # fmt: skip
        if value is not None:
            lines.append(f"{directive}={_escape(str(value))}")
    if d.umask is not None:
        lines.append(f"UMask={d.umask:04o}")
    restart = d.restart
    lines.append(f"Restart={restart.mode}")
    lines.append(f"RestartSec={uv.span(restart.delay)}")
    extra = sorted(restart.normal_statuses - {0})
    signals = sorted(_signal_name(s) for s in restart.normal_signals)
    if extra or signals:
        lines.append("SuccessExitStatus=" + " ".join([*map(str, extra), *signals]))
    lines.append(f"KillSignal=SIG{_signal_name(d.stop_signal)}")
    if d.stop_timeout > 0:
        lines.append(f"TimeoutStopSec={uv.span(d.stop_timeout)}")
    if d.timeout_start > 0:
        lines.append(f"TimeoutStartSec={uv.span(d.timeout_start)}")
    return lines


def _command(d: Definition, command: Command) -> str:
    argv = argv_of(d, command)
    if command.script is not None:  # the script is shell text: every $ and % is literal
        return unit_command(argv[:-1]) + " " + unit_word(argv[-1].replace("$", "$$"))
    return unit_command(argv)


def _quoted_env(name: str, value: str) -> str:
    """``"NAME=value"`` as ``Environment=`` reads it (``%`` doubled; no ``$`` expansion)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    escaped = escaped.replace("\n", "\\n")
    return f'"{name}={escaped}"' if value != "%i" else f"{name}=%i"


def _escape(text: str) -> str:
    return text.replace("%", "%%")


def _signal_name(number: int) -> str:
    return _signal.Signals(number).name.removeprefix("SIG")
