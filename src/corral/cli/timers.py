"""``corral trigger NAME``: run a timer's job now, as if its timer fired (``cli/main.py``
wires it; the daemon's side is ``Commands.cmd_trigger``)."""

from __future__ import annotations

import argparse
import sys

from corral.cli import said
from corral.control.paths import client_socket
from corral.errors import EXIT_OK


def trigger_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="a service with every or on_calendar")
    p.add_argument(
        "--no-wait", action="store_true", help="return once it is started, not when it is up"
    )


def cmd_trigger(args: argparse.Namespace) -> int:
    """Start the job (run a done oneshot again); like ``start``, wait until it is running
    and ready (a oneshot: done), and fail saying why if it does not get there."""
    from corral.control.client import Client

    with Client(client_socket(args.socket)) as client:
        result = client.request("trigger", name=args.name, wait=not args.no_wait)
    if not args.no_wait:
        sys.stdout.write(said(result))
    return EXIT_OK
