"""A supervisord.conf as corral services: each ``[program:x]`` a service, ``numprocs = N`` one
service with an instance per process number, a ``[group:g]`` a state that wants its programs.

supervisord splits ``command`` like a shell (no shell runs), as corral's ``exec`` does; its
``%(name)s`` expansions are resolved here where their value is known, and ``%(ENV_X)s`` and
``%(process_num)d`` in a command become ``${X}`` and ``${PROCESS_NUM}``, which corral expands.
``[include]`` files are read by the caller (``include_patterns`` says which) and passed in.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Callable

from corral.convert.ini import Section, Setting, supervisor_ini
from corral.convert.model import Draft, Imported

_EXPANSION = re.compile(r"%\((\w+)\)[-#0 +]*\d*[sd]|%%")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_OWN_SECTIONS = ("supervisord", "supervisorctl", "unix_http_server", "inet_http_server",
                 "rpcinterface:")  # fmt: skip


def include_patterns(text: str) -> list[str]:
    """The ``[include] files`` globs, relative to the file's directory, for the caller."""
    for section in supervisor_ini(text).sections:
        if section.name == "include" and (files := section.last("files")):
            return files.value.split()
    return []


def import_supervisord(
    path: str, text: str, included: list[tuple[str, str]] | None = None
) -> Imported:
    """Every ``[program:x]`` and ``[group:g]`` of the file and of its included files."""
    result = Imported()
    files = [(path, text), *(included or [])]
    parsed = [(file, supervisor_ini(body)) for file, body in files]
    for file, each in parsed:
        for line, message in each.errors:
            result.fail(file, message, line)
    common = {}
    for file, each in parsed:
        for section in each.sections:
            if section.name == "supervisord" and (env := section.last("environment")):
                common.update(_environment(env, file, result))
    for file, each in parsed:
        for section in each.sections:
            _section(file, section, common, result)
    for file, each in parsed:  # after every program: a group needs to know what they are
        for section in each.sections:
            kind, _, name = section.name.partition(":")
            if kind == "group" and name.strip():
                _group(file, section, name.strip(), result)
    return result


def _section(file: str, section: Section, common: dict[str, str], result: Imported) -> None:
    kind, _, name = section.name.partition(":")
    if kind == "program" and name:
        _program(file, section, name.strip(), common, result)
    elif kind == "group" or section.name == "include":
        pass  # groups come after every program; the caller has read the included files
    elif section.name.startswith(_OWN_SECTIONS):
        keys = [s.key for s in section.settings if s.key != "environment"]
        if keys or section.name != "supervisord":
            result.skip(file, section.line, f"[{section.name}]",
                        "supervisord's own settings; corral has its own socket and logs")  # fmt: skip
    else:
        result.skip(file, section.line, f"[{section.name}]", "corral has no such section")


def _program(
    file: str, section: Section, name: str, common: dict[str, str], result: Imported
) -> None:
    draft = result.draft(name, file, section.line)
    if draft is None:
        return
    settings = {s.key: s for s in section.settings}
    count = _count(settings.get("numprocs"), file, result)
    first = _count(settings.get("numprocs_start"), file, result, minimum=0, default=0)
    names = {"program_name": name, "group_name": name, "here": posixpath.dirname(file) or ".",
             "process_num": "${PROCESS_NUM}" if count > 1 else str(first)}  # fmt: skip
    env = dict(common)
    for setting in section.settings:
        key = setting.key
        mapper = _MAPPERS.get(key)
        if mapper is not None:
            mapper(draft, setting, names, result)
        elif key == "environment":
            env.update(_environment(setting, file, result))
        elif key in ("numprocs", "numprocs_start", "stdout_logfile", "stdout_logfile_maxbytes",
                     "stdout_logfile_backups"):  # fmt: skip
            pass  # read with numprocs or with stdout_logfile
        elif key in ("stopasgroup", "killasgroup") and _boolean(setting) is not False:
            pass  # corral signals the whole group: what true asks for
        elif key in ("stopasgroup", "killasgroup"):
            result.skip(file, setting.line, key, "corral always signals the whole process group")
        elif key == "redirect_stderr" or (key == "process_name" and "%(" in setting.value):
            pass  # corral logs stdout and stderr together; instance keys name the processes
        elif key == "priority":
            result.skip(file, setting.line, key, "corral orders starts by requires and after")
        elif key == "stderr_logfile" and setting.value.upper() not in ("AUTO", "NONE"):
            result.skip(file, setting.line, key, "corral writes stdout and stderr to one log")
        else:
            result.skip(file, setting.line, key, "corral has no key for this")
    if "exec" not in draft.keys:
        result.fail(file, f"[program:{name}] has no command", section.line)
    if count > 1:
        env["PROCESS_NUM"] = str(first)
        draft.set("instance", "${PROCESS_NUM}", settings["numprocs"].line)
        draft.set("autostart", draft.value("autostart", True))
        others = " ".join(f"{name}:{n}" for n in range(first + 1, first + count))
        result.skip(file, settings["numprocs"].line, "numprocs", f"corral up starts {name}:"
                    f"{first}; start the others with: corral start {others}")  # fmt: skip
    if env:
        line = settings["environment"].line if "environment" in settings else None
        draft.set("env", env, line)
    _log(draft, settings, result)


def _command(draft: Draft, setting: Setting, names: dict[str, str], result: Imported) -> None:
    try:
        words = shlex.split(setting.value)
    except ValueError as exc:
        result.fail(draft.file, f"command: cannot split it: {exc}", setting.line)
        return
    argv = [_expand(word.replace("$", "$$"), names, setting, draft, result, True)
            for word in words]  # fmt: skip
    if argv:
        draft.set("exec", argv, setting.line)


def _expand(
    text: str, names: dict[str, str], setting: Setting, draft: Draft, result: Imported,
    in_exec: bool = False,
) -> str:  # fmt: skip
    """supervisord's ``%(name)s`` in a value; an unknown name is reported and left as is."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name.startswith("ENV_") and in_exec:
            return "${" + name[4:] + "}"
        if name in names and (in_exec or "$" not in names[name]):
            return names[name]
        result.skip(draft.file, setting.line, f"{setting.key} %({name})",
                    "corral has no value for this expansion here")  # fmt: skip
        return match.group(0)

    return _EXPANSION.sub(replace, text)


def _plain(key: str, convert: Callable[[str], object] = str) -> Mapper:
    def mapper(draft: Draft, setting: Setting, names: dict[str, str], result: Imported) -> None:
        text = _expand(setting.value, names, setting, draft, result)
        try:
            draft.set(key, convert(text), setting.line)
        except ValueError as exc:
            result.fail(draft.file, f"{setting.key}: {exc}", setting.line)

    return mapper


def _bool(text: str) -> bool:
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    raise ValueError(f"expected true or false, got {text!r}")


def _seconds(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"expected a number of seconds, got {text!r}")
    return int(text)


def _restart(text: str) -> str:
    modes = {"true": "always", "false": "no", "unexpected": "on-failure"}
    if text.lower() not in modes:
        raise ValueError(f"expected true, false or unexpected, got {text!r}")
    return modes[text.lower()]


def _exitcodes(text: str) -> list[int]:
    codes = [c.strip() for c in text.split(",") if c.strip()]
    if not all(c.isdigit() and int(c) < 256 for c in codes):
        raise ValueError(f"expected exit statuses such as 0,2, got {text!r}")
    return [int(c) for c in codes]


def _startretries(text: str) -> list[int]:
    retries = _seconds(text)
    if retries < 1:
        raise ValueError("startretries 0: corral allows at least 1 restart in restart_limit")
    return [retries, 10]


def _signal(text: str) -> str:
    return text.upper().removeprefix("SIG")


Mapper = Callable[[Draft, Setting, dict[str, str], Imported], None]
_MAPPERS: dict[str, Mapper] = {
    "command": _command,
    "autostart": _plain("autostart", _bool),
    "startsecs": _plain("start_grace", _seconds),
    "startretries": _plain("restart_limit", _startretries),
    "autorestart": _plain("restart", _restart),
    "exitcodes": _plain("normal_exit", _exitcodes),
    "stopsignal": _plain("stop_signal", _signal),
    "stopwaitsecs": _plain("stop_timeout", _seconds),
    "user": _plain("user"),
    "directory": _plain("cwd"),
    "umask": _plain("umask"),
}


def _log(draft: Draft, settings: dict[str, Setting], result: Imported) -> None:
    """``stdout_logfile`` (with its size and backups) as ``log``."""
    logfile = settings.get("stdout_logfile")
    if logfile is None or logfile.value.upper() == "AUTO":
        return
    if logfile.value.upper() == "NONE":
        draft.set("log", False, logfile.line)
        return
    log: dict[str, object] = {"file": logfile.value}
    size = settings.get("stdout_logfile_maxbytes")
    if size is not None and re.fullmatch(r"0*[1-9]\d*\s*[kKmMgG]?[bB]?", size.value):
        log["max_size"] = size.value
    elif size is not None:
        result.skip(draft.file, size.line, size.key, "corral's log needs a size above 0")
    backups = settings.get("stdout_logfile_backups")
    if backups is not None and backups.value.isdigit():
        log["keep"] = int(backups.value)
    draft.set("log", log, logfile.line)


def _group(file: str, section: Section, name: str, result: Imported) -> None:
    programs = section.last("programs")
    if programs is None:
        result.skip(file, section.line, f"[group:{name}]", "a group without programs")
        return
    drafts = {d.name: d for d in result.drafts}
    members = []
    for program in filter(None, (p.strip() for p in programs.value.split(","))):
        member = drafts.get(program)
        if member is not None and "instance" in member.keys:
            result.skip(file, programs.line, f"programs {program}", "a service with instances "
                        "cannot be wanted (which instance?); start them by name")  # fmt: skip
        else:
            members.append(program)
    draft = result.draft(name, file, section.line)
    if draft is None:
        return
    draft.comments.append(f"supervisord's group {name}: starting it starts its programs")
    draft.set("wants", members, programs.line)
    draft.set("autostart", False)
    for setting in section.settings:
        if setting.key != "programs":
            result.skip(file, setting.line, setting.key, "corral has no key for this in a group")


def _environment(setting: Setting, file: str, result: Imported) -> dict[str, str]:
    """``KEY="value",KEY2=value2`` (values may be quoted, and hold commas when they are)."""
    lexer = shlex.shlex(setting.value.replace("\n", " "), posix=True)
    lexer.whitespace = ","
    lexer.whitespace_split = True
    env: dict[str, str] = {}
    try:
        for item in lexer:
            key, sep, value = item.strip().partition("=")
            if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
                result.fail(file, f"environment: expected KEY=VALUE, got {item!r}", setting.line)
                continue
            if "%(" in value:
                result.skip(file, setting.line, f"environment {key.strip()}",
                            "corral does not expand %(...)s in env values")  # fmt: skip
                continue
            env[key.strip()] = value
    except ValueError as exc:
        result.fail(file, f"environment: {exc}", setting.line)
    return env


def _count(
    setting: Setting | None, file: str, result: Imported, minimum: int = 1, default: int = 1
) -> int:
    if setting is None:
        return default
    if not setting.value.isdigit() or int(setting.value) < minimum:
        result.fail(file, f"{setting.key}: expected an integer >= {minimum}", setting.line)
        return default
    return int(setting.value)


def _boolean(setting: Setting) -> bool | None:
    text = setting.value.lower()
    return True if text in _TRUE else False if text in _FALSE else None
