"""Each command's arguments, as argparse takes them (``corral.cli.main`` builds the parser
of the one command asked for)."""

from __future__ import annotations

import argparse

from corral.cli.up import parse_address


def health_address(text: str) -> tuple[str, int]:
    """``--health``'s value, read as the quick path reads it."""
    address = parse_address(text)
    if address is None:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT, [HOST]:PORT or :PORT (every address), not {text!r}"
        )
    return address


def up_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        metavar="PATH",
        help="config file or directory; repeat for increasing precedence",
    )
    p.add_argument(
        "-d",
        "--detach",
        action="store_true",
        help="run in the background; return once the socket accepts",
    )
    p.add_argument(
        "--health",
        type=health_address,
        metavar="ADDR",
        help="serve /healthz, /readyz and /metrics over HTTP on ADDR (HOST:PORT, or :PORT "
        "for every address); needs the extra corral[health]",
    )
    p.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)


def goal_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="NAME, NAME:INSTANCE or NAME KEY=VALUE...; 'all': every service (unless one is "
        "named so): for start, those `up` starts; for restart, those with goal start",
    )
    p.add_argument("--no-wait", action="store_true", help="return once the goal is set")


def names_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="+", metavar="NAME")


def status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--json", action="store_true", help="a JSON list of objects")


def wait_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--timeout", type=float, metavar="S")


def logs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "names", nargs="*", metavar="NAME",
        help="NAME, NAME:INSTANCE or NAME KEY=VALUE (none: every service, merged)",
    )  # fmt: skip
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--lines", type=int, default=10, metavar="N")


def emit_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("event", metavar="EVENT")
    p.add_argument("env", nargs="*", metavar="KEY=VALUE")
    p.add_argument("--no-wait", action="store_true", help="return once the event is emitted")


def events_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="the last N (default: all kept)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def config_args(p: argparse.ArgumentParser) -> None:
    config_sub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", required=True)
    check = config_sub.add_parser("check", help="exit 1 with errors, 0 when clean (offline)")
    check.add_argument("-c", "--config", action="append", default=[], metavar="PATH")
    config_sub.add_parser("reload", help="load the sources again; nothing changes on error")
    show = config_sub.add_parser("show", help="a service's merged definition, key by key")
    show.add_argument("name", metavar="NAME")
    show.add_argument("-c", "--config", action="append", default=[], metavar="PATH",
                      help="read these sources instead of asking the daemon")  # fmt: skip


def no_args(p: argparse.ArgumentParser) -> None:
    pass


def action_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="NAME or NAME:INSTANCE")
    p.add_argument("action", metavar="ACTION")
    p.add_argument("args", nargs=argparse.REMAINDER, metavar="ARG")


def graph_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["dot", "json"], default="dot")
