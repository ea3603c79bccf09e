"""What every exporter shares: its result, where a key of the configuration was written (so
what cannot be exported is reported at its own line), and commands as argv."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from corral.convert.model import Unmapped
from corral.core.definition import DEFAULT_START_GRACE, Command, Definition
from corral.core.registry import Registry
from corral.core.states import ServiceType

#: ``where(service, key)``: the file and line a key was written at, None where it was not
#: written (its default applies, and nothing needs saying).
Where = Callable[[str, str], tuple[str, int | None] | None]


def where_of(registry: Registry) -> Where:
    """``where`` for a loaded configuration: a key's file and line (``""``: the table's)."""

    def where(name: str, key: str) -> tuple[str, int | None] | None:
        merged = registry.merged(name)
        if key in merged:
            return merged[key][1], merged[key][2]
        if key == "":
            layer = next(iter(registry.origins[name].values()), None)
            return (layer.file, layer.line(name, None)) if layer is not None else None
        return None

    return where


@dataclass
class Exported:
    """The files an exporter made (name in the target directory -> text), and what it could
    not carry over."""

    files: dict[str, str] = field(default_factory=dict)
    unmapped: list[Unmapped] = field(default_factory=list)


class Report:
    """Says what of a service an exporter cannot carry, at the line the key was written."""

    def __init__(self, where: Where, exported: Exported) -> None:
        self.where = where
        self.exported = exported

    def skip(self, d: Definition, key: str, why: str, always: bool = False) -> None:
        """A key not carried over: reported where it was written (``always``: also where
        it was not, for what the service is as a whole)."""
        found = self.where(d.name, key)
        if found is None and not always:
            return
        file, line = found or self.where(d.name, "") or (d.source, None)
        self.exported.unmapped.append(Unmapped(file, line, f"service.{d.name}.{key}", why))

    def skip_all(self, d: Definition, keys: Mapping[str, str]) -> None:
        for key, why in keys.items():
            self.skip(d, key, why)


def argv_of(d: Definition, command: Command) -> list[str]:
    """A command as the argv a process gets: a script through the shell corral uses."""
    if command.script is not None:
        flags = ["-e", "-c"] if command is d.main and d.shell_script else ["-c"]
        return ["/bin/sh", *flags, command.script]
    return list(command.argv)


def default_start_grace(d: Definition) -> float:
    """The ``start_grace`` corral gives a service that does not set it."""
    spawn_only = (d.main is not None and d.type is ServiceType.SIMPLE and d.ready is None
                  and d.ready_fd is None)  # fmt: skip
    return DEFAULT_START_GRACE if spawn_only else 0.0


def on_demand(d: Definition) -> str | None:
    """Why a service is not simply started with the others (then other managers cannot
    run it as corral does), or None."""
    if d.main is None:
        return "a state (no process) has nothing to run"
    if d.start_on is not None or d.while_ is not None:
        return "started by events or states, which only corral has"
    if d.instance is not None:
        return "instantiated"
    return None
