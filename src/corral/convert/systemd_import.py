"""systemd units as corral services: a ``.service`` unit is a service, a template
``foo@.service`` an instantiated service (``%i`` its instance variable, ``I`` unless an
``Environment=NAME=%i`` names it), a ``.socket`` unit the ``sockets`` of its service.

Directives map to the keys DESIGN.md gives them (``unit_service.py`` holds the ``[Service]``
table); keys DESIGN.md names that this corral does not have yet are reported, and taken as
soon as it has them. Dependencies on units that are not services, or not imported with this
one, are reported too: a config that names them would not load.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from corral.convert import unit_values as uv
from corral.convert.ini import Section, Setting, unit_ini
from corral.convert.model import Imported
from corral.convert.unit_context import UnitContext
from corral.convert.unit_service import SERVICE

DEFAULT_VARIABLE = "I"
_EDGES = {"Requires": "requires", "BindsTo": "requires", "Wants": "wants", "After": "after"}


def service_names(stems: Iterable[str]) -> dict[str, str]:
    """Each service unit's stem (``redis``, ``getty@``) -> its corral name: a template is
    named by its prefix, unless a plain unit of that name is imported with it."""
    stems = list(stems)
    return {stem: stem[:-1] if stem.endswith("@") and stem[:-1] not in stems else stem
            for stem in stems}  # fmt: skip


def import_units(units: list[tuple[str, str]], known: Iterable[str] = ()) -> Imported:
    """``(path, text)`` of ``.service`` and ``.socket`` units, imported together: they may
    depend on one another, and on ``known`` services defined elsewhere."""
    result = Imported()
    parsed = {path: (_stem(path), unit_ini(text)) for path, text in units}
    stems = [stem for path, (stem, _) in parsed.items() if path.endswith(".service")]
    services = service_names(stems) | {name: name for name in known}
    for path, (stem, unit) in parsed.items():
        for line, message in unit.errors:
            result.fail(path, message, line)
        if path.endswith(".service"):
            _import_service(path, stem, unit.sections, services, result)
    for path, (stem, unit) in parsed.items():
        if path.endswith(".socket"):
            _import_socket(path, stem, unit.sections, services, result)
    return result


def _stem(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.rpartition(".")[0]


def _import_service(
    path: str, stem: str, sections: list[Section], services: dict[str, str], result: Imported
) -> None:
    template = stem.endswith("@")
    draft = result.draft(services[stem], path, sections[0].line if sections else 1)
    if draft is None:
        return
    variable = _instance_variable(sections) if template else None
    instance = "${" + variable + "}" if variable else ""
    prefix = stem.removesuffix("@")
    full = f"{prefix}@{instance}" if template else prefix
    specifiers = {"i": instance, "I": instance, "n": f"{full}.service", "N": full, "p": prefix,
                  "P": prefix, "t": "/run"}  # fmt: skip
    ctx = UnitContext(path, draft, result, specifiers, variable, services)
    for section in sections:
        if section.name == "Service":
            _service_section(ctx, section)
        elif section.name == "Unit":
            _unit_section(ctx, section)
        elif section.name == "Install":
            _install_section(ctx, section)
        else:
            result.skip(path, section.line, f"[{section.name}]", "not a section of a service")
    _finish(ctx, template)


def _instance_variable(sections: list[Section]) -> str:
    """The variable a template's ``Environment=NAME=%i`` gives the instance (as corral's
    export writes it), else ``I``."""
    for section in sections:
        for setting in section.settings:
            if section.name == "Service" and setting.key == "Environment":
                found = re.search(
                    r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=%[iI](?:\s|$)",
                    setting.value.replace('"', ""),
                )
                if found:
                    return found.group(1)
    return DEFAULT_VARIABLE


def _service_section(ctx: UnitContext, section: Section) -> None:
    # Type first: whether a PIDFile= matters depends on it, wherever it is written.
    ordered = sorted(section.settings, key=lambda s: s.key != "Type")
    for setting in ordered:
        handler = SERVICE.get(setting.key)
        if handler is not None:
            handler(ctx, setting)
        elif setting.key == "StartLimitInterval":
            _start_limit(ctx, setting)
        else:
            ctx.skip(setting, "corral has no key for this")


def _unit_section(ctx: UnitContext, section: Section) -> None:
    for setting in section.settings:
        if setting.key == "Description":
            text = re.sub(r"%(.)", lambda m: "%" if m.group(1) == "%" else
                          ctx.specifiers.get(m.group(1), m.group(0)), setting.value)  # fmt: skip
            ctx.set("description", text, setting)
        elif setting.key in _EDGES:
            _edges(ctx, setting, _EDGES[setting.key])
        elif setting.key.startswith("StartLimit"):
            _start_limit(ctx, setting)
        else:
            ctx.skip(setting, "corral has no key for this")


def _edges(ctx: UnitContext, setting: Setting, key: str) -> None:
    for unit in setting.value.split():
        parts = uv.unit_name(unit)
        if parts is None or parts[1] != "service":
            why = ("corral has no targets; what it orders by are services"
                   if parts and parts[1] == "target" else "corral depends on services only")  # fmt: skip
            ctx.skip(setting, why, f"{setting.key} {unit}")
        elif "@" in parts[0] and not parts[0].endswith("@"):
            ctx.skip(setting, "corral depends on services, not on one instance",
                     f"{setting.key} {unit}")  # fmt: skip
        elif parts[0] not in ctx.services:
            ctx.skip(setting, f"{unit} is not among the units imported with this one",
                     f"{setting.key} {unit}")  # fmt: skip
        else:
            ctx.deps.setdefault(key, []).append((ctx.services[parts[0]], setting.line))


def _start_limit(ctx: UnitContext, setting: Setting) -> None:
    try:
        if setting.key == "StartLimitBurst":
            value: float = int(setting.value)
        else:
            value = uv.seconds(setting.value)
    except ValueError:
        ctx.skip(setting, "corral's restart_limit needs a number and a finite window")
        return
    if setting.key not in ("StartLimitBurst", "StartLimitIntervalSec", "StartLimitInterval"):
        ctx.skip(setting, "corral has no key for this")
    elif value <= 0:
        ctx.skip(setting, "corral always limits restarts (restart_limit is at least [1, ...])")
    else:
        ctx.collected["burst" if setting.key == "StartLimitBurst" else "window"] = (
            value, setting.line)  # fmt: skip


def _install_section(ctx: UnitContext, section: Section) -> None:
    for setting in section.settings:
        if setting.key in ("WantedBy", "RequiredBy"):
            ctx.wanted_by = True
        elif setting.key == "Alias":
            aliases = [uv.unit_name(a) for a in setting.value.split()]
            names = [a[0] for a in aliases if a and a[1] == "service"]
            ctx.set("provides", [*ctx.draft.value("provides", []), *names], setting)
        else:
            ctx.skip(setting, "corral has no key for this")


def _finish(ctx: UnitContext, template: bool) -> None:
    """The keys several directives add to, once the whole unit is read."""
    draft = ctx.draft
    if ctx.env:
        draft.set("env", dict(ctx.env), ctx.env_line)
    ordering = set()
    for key in ("requires", "wants", "after"):
        names = [(n, line) for n, line in ctx.deps.get(key, []) if n not in ordering]
        ordering |= {n for n, _ in names}
        if names:
            draft.set(key, list(dict.fromkeys(n for n, _ in names)), names[0][1])
    if "burst" in ctx.collected or "window" in ctx.collected:
        burst, line = ctx.collected.get("burst", (5, None))
        window, other = ctx.collected.get("window", (10, None))
        draft.set("restart_limit", [int(burst), uv.number(window)], line or other)
    if draft.value("type") == "forking" and "pid_file" not in draft.keys:
        draft.set("type", "oneshot", draft.keys["type"].line)
        ctx.result.skip(ctx.path, draft.keys["type"].line, "Type=forking", "without its "
                        "PIDFile corral cannot follow the daemon; imported as oneshot: ready "
                        "when the launcher exits 0, what it started runs until the stop")  # fmt: skip
    if template:
        draft.set("instance", "${" + (ctx.instance_var or DEFAULT_VARIABLE) + "}")
    elif not ctx.wanted_by:
        draft.set("autostart", False)  # a static unit: started only when asked for
    if "exec" not in draft.keys and "script" not in draft.keys:
        ctx.result.fail(ctx.path, "a service unit without ExecStart=", draft.line)


# -- socket units ----------------------------------------------------------------------------


def _import_socket(
    path: str, stem: str, sections: list[Section], services: dict[str, str], result: Imported
) -> None:
    socket = next((s for s in sections if s.name == "Socket"), None)
    if socket is None:
        result.skip(path, None, "[Socket]", "a socket unit without a [Socket] section")
        return
    target = socket.last("Service")
    service_stem = target.value.rpartition(".")[0] if target else stem
    if service_stem not in services:
        service_stem = f"{stem}@" if f"{stem}@" in services else service_stem
    draft = next((d for d in result.drafts if d.name == services.get(service_stem)), None)
    if draft is None:
        result.skip(path, socket.line, "[Socket]",
                    f"{service_stem}.service is not among the units imported with it")  # fmt: skip
        return
    sockets, extra = _listeners(path, socket, result)
    if not sockets:
        return
    draft.set("sockets", [*draft.value("sockets", []), *sockets], socket.line, path)
    for key, value in extra.items():
        draft.set(key, value, socket.line, path)
    if draft.value("autostart") is False:
        draft.set("activate", "on-connection", socket.line, path)
    for section in sections:
        if section.name not in ("Socket", "Unit", "Install"):
            result.skip(path, section.line, f"[{section.name}]", "not a section of a socket")


def _listeners(
    path: str, socket: Section, result: Imported
) -> tuple[list[dict[str, object]], dict[str, object]]:
    sockets: list[dict[str, object]] = []
    common: dict[str, object] = {}
    extra: dict[str, object] = {}
    unix: list[bool] = []  # whether each listener is a unix socket's file (mode applies)
    for setting in socket.settings:
        key, value = setting.key, setting.value
        if key in ("ListenStream", "ListenDatagram"):
            listen = _listen(value, datagram=key == "ListenDatagram")
            if listen is None:
                result.skip(path, setting.line, key, "corral listens on TCP, UDP and unix "
                            "stream sockets")  # fmt: skip
            else:
                sockets.append({"listen": listen})
                unix.append(value.startswith("/"))
        elif key == "FileDescriptorName":
            common["name"] = value
        elif key == "SocketMode":
            common["mode"] = value
        elif key == "Accept":
            extra["accept"] = uv.boolean(value)
        elif key == "MaxConnections" and value.isdigit():
            extra["max_connections"] = int(value)
        elif key != "Service":
            result.skip(path, setting.line, key, "corral has no key for this")
    mode = common.pop("mode", None)
    if mode is not None and not any(unix):
        result.skip(path, None, "SocketMode", "corral sets the mode of unix sockets' files only")
    return [s | common | ({"mode": mode} if mode and file else {})
            for s, file in zip(sockets, unix, strict=True)], extra  # fmt: skip


def _listen(value: str, datagram: bool) -> str | None:
    """A ``Listen*=`` address in corral's ``listen`` syntax."""
    if value.startswith(("/", "@")):
        return None if datagram else f"unix:{value}"
    if value.isdigit():
        value = f"[::]:{value}"
    if not re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):\d+", value):
        return None
    return f"udp:{value}" if datagram else value
