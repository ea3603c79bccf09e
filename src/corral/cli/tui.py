"""``corral tui``: the service table, live, and the logs of the selected service.

It needs Textual, the optional extra ``corral[tui]``; without it the command says what to
install and exits 1. Textual is loaded only here, when the command runs
(``corral.cli.tui_app`` holds the application), so no other command pays for it.
"""

from __future__ import annotations

import argparse
import sys

from corral.errors import EXIT_FAILED

#: What to say when Textual is not installed.
INSTALL = "corral tui needs Textual, the extra corral[tui]: pip install 'corral[tui]'"


def tui_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", metavar="NAME", help="the service selected at first")


def cmd_tui(args: argparse.Namespace) -> int:
    try:
        import textual  # noqa: F401  # only to learn whether the extra is installed
    except ImportError:
        print(f"corral: {INSTALL}", file=sys.stderr)
        return EXIT_FAILED
    from corral.cli.tui_app import run_tui

    return run_tui(args.socket, args.name)
