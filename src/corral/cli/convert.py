"""``corral import FILE`` and ``corral export systemd|kubernetes|compose DIR``: the files read
and written here, the conversions in ``corral.convert``.

Both run offline, like ``config check``. What could not be carried over is said on stderr,
one line each (``FILE:LINE: KEY: not mapped (why)``), and never stops the command: the TOML
(or the files) for everything else is still written. A file that cannot be read, or whose
conversion has errors, exits 1 as a config error does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable

from corral.errors import EXIT_OK, ConfigError, ConfigProblem, UsageError

TARGETS = ("systemd", "kubernetes", "compose")


def import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE",
                   help="a Procfile, supervisord .conf, process-compose.yaml or systemd unit")  # fmt: skip
    p.add_argument("--formation", metavar="NAME=N,...",
                   help="Procfile: processes per type, as honcho's -c (all=1,web=2)")  # fmt: skip


def export_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", choices=TARGETS)
    p.add_argument("dir", metavar="DIR", help="where the files go (made if missing)")
    p.add_argument("-c", "--config", action="append", default=[], metavar="PATH",
                   help="config sources, as for config check (default: ./corral.toml, ./corral.d/)")  # fmt: skip
    p.add_argument("--image", default="IMAGE",
                   help="kubernetes, compose: the image the programs are in (default: IMAGE)")  # fmt: skip


def cmd_import(args: argparse.Namespace) -> int:
    """The file's services as TOML on stdout; what has no place there on stderr."""
    from corral.convert import detect_format
    from corral.convert.procfile import parse_formation
    from corral.convert.toml_text import pretty
    from corral.daemon.sources import import_file

    path = args.file
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(path, f"cannot read: {exc}")]) from None
    kind = detect_format(path, text)
    if kind is None:
        raise ConfigError([ConfigProblem(path, "not a format corral imports: a Procfile, a "
                          "supervisord .conf, a process-compose.yaml, or a systemd .service "
                          "or .socket unit")])  # fmt: skip
    formation = None
    if args.formation:
        if kind != "procfile":
            raise UsageError("--formation is for a Procfile")
        try:
            formation = parse_formation(args.formation)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    try:
        imported = import_file(path, text, kind, formation)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(path, f"cannot read what goes with it: {exc}")]) from None
    _say_unmapped(imported.unmapped)
    if imported.problems:
        raise ConfigError(imported.problems)
    header = [f"imported from {path} ({kind}) by corral import",
              f"{len(imported.unmapped)} line(s) of it not mapped, listed on stderr"]  # fmt: skip
    if kind == "procfile":
        header.append("paths (env_file) are relative to this file: keep it beside the Procfile")
    sys.stdout.write(pretty(imported.drafts, header))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """The configuration's services as the target's files in DIR."""
    from corral.core.registry import build
    from corral.daemon.sources import default_sources, project_dir, read_sources

    cwd = os.getcwd()
    sources = [os.path.abspath(p) for p in args.config] or default_sources(cwd)
    from corral.convert.export_common import where_of

    registry = build(read_sources(sources))
    where = where_of(registry)
    from corral.core.bridge_jobs import BUILT_IN

    # corral's own bridges are corral's, not the project's: a target has its own means.
    definitions = {n: d for n, d in registry.definitions.items() if d.source != BUILT_IN}
    if args.target == "systemd":
        from corral.convert.export_systemd import export_systemd

        exported = export_systemd(definitions, where)
    elif args.target == "kubernetes":
        from corral.convert.export_kubernetes import export_kubernetes

        project = os.path.basename(project_dir(sources, cwd)) or "corral"
        exported = export_kubernetes(definitions, where, project, args.image)
    else:
        from corral.convert.export_compose import export_compose

        exported = export_compose(definitions, where, args.image)
    _say_unmapped(exported.unmapped)
    os.makedirs(args.dir, exist_ok=True)
    for name, text in exported.files.items():
        target = os.path.join(args.dir, name)
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {target}")
    return EXIT_OK


def _say_unmapped(lines: Iterable[object]) -> None:
    for line in lines:
        print(f"corral: {line}", file=sys.stderr)
