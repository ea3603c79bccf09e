"""The command line: one function per command; every outcome maps to the contract's exit codes
(0 done, 1 failed, 2 usage, 3 no such service, 4 cannot reach the daemon).

Kept cheap to import: the daemon's modules load only for ``up`` and ``config check``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from corral.cli import arguments, colour_for, completion, leading_socket, said, shell, timers, tui
from corral.cli import convert as convert_cli
from corral.cli.address import parse_targets
from corral.control.paths import client_socket
from corral.errors import EXIT_FAILED, EXIT_OK, UsageError, reported

Command = Callable[[argparse.Namespace], int]


def _client(args: argparse.Namespace) -> Any:
    from corral.control.client import Client

    return Client(client_socket(args.socket))


def _print_json(value: Any) -> None:
    import json

    sys.stdout.write(json.dumps(value) + "\n")


# -- daemon ----------------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from corral.cli.up import run_up

    return run_up(args.config, args.detach, args.socket, args.ready_fd, args.health)


def cmd_down(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.request("down")
    return EXIT_OK


# -- services --------------------------------------------------------------------------------


def _goal_command(verb: str) -> Command:
    """start, stop or restart: one line per instance on how it ended (nothing with
    --no-wait); while waiting on a terminal, what it waits for on a live line
    (``corral.cli.progress``)."""

    def run(args: argparse.Namespace) -> int:
        request = {"targets": parse_targets(args.names), "wait": not args.no_wait}
        with _client(args) as client:
            if args.no_wait:  # only the goal is set: nothing reached yet, nothing said
                client.request(verb, **request)
                return EXIT_OK
            if sys.stderr.isatty():
                from corral.cli.progress import request_showing_progress

                result = request_showing_progress(client, verb, request)
            else:
                result = client.request(verb, **request)
        sys.stdout.write(said(result))
        return EXIT_OK

    return run


def cmd_reload(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.request("reload", targets=parse_targets(args.names))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {}
    if args.names:
        request["targets"] = parse_targets(args.names)
    if not args.json:  # the daemon makes the table, as for the quick path
        request.update(table=True, colour=colour_for(sys.stdout))
    with _client(args) as client:
        result = client.request("status", **request)
    if args.json:
        _print_json(result)
    else:
        print(result)
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.request("wait", names=args.names, timeout=args.timeout)
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    """The named services' lines (none named: every service's), merged in time order."""
    from corral.cli.render import LogPrinter

    targets = parse_targets(args.names) if args.names else []
    printer = LogPrinter(colour_for(sys.stdout))
    request = {"targets": targets, "lines": args.lines}
    return _show_stream(args, "logs", "log", request, printer.show, printer.fit)


def _show_stream(
    args: argparse.Namespace,
    cmd: str,
    key: str,
    request: dict[str, Any],
    show: Callable[[dict[str, Any]], None],
    before: Callable[[list[dict[str, Any]]], None] | None = None,
) -> int:
    """Print a backlog (``before`` sees it first); with ``--follow``, then every
    ``{key: item}`` the daemon streams."""
    with _client(args) as client:
        if not args.follow:
            backlog = client.request(cmd, **request)
            if before is not None:
                before(backlog)
            for item in backlog:
                show(item)
            return EXIT_OK
        try:
            for index, message in enumerate(client.stream(cmd, follow=True, **request)):
                items = message if index == 0 else [message.get(key)]
                if index == 0 and before is not None:
                    before(items)
                for item in items:
                    if item is not None:
                        show(item)
                sys.stdout.flush()
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def cmd_emit(args: argparse.Namespace) -> int:
    env: dict[str, str] = {}
    for word in args.env:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise UsageError(f"{word!r}: expected KEY=VALUE")
        env[key] = value
    with _client(args) as client:
        client.request("emit", event=args.event, env=env, wait=not args.no_wait)
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    lines = args.lines if args.lines is not None else (10 if args.follow else None)
    return _show_stream(
        args, "events", "event", {"lines": lines}, lambda r: _print_event(r, args.json)
    )


def _print_event(record: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(record)
        return
    import time

    when = record["time"]
    stamp = time.strftime("%H:%M:%S", time.localtime(when)) + f".{int(when % 1 * 1000):03d}"
    env = " ".join(f"{k}={v}" for k, v in record["env"].items())
    print(f"{stamp} {record['name']}" + (f" {env}" if env else ""))


def cmd_destroy(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for row in client.request("destroy", targets=parse_targets(args.names)):
            name = row["name"] + (f":{row['instance']}" if row["instance"] else "")
            print(f"destroyed {name}")
    return EXIT_OK


def cmd_action(args: argparse.Namespace) -> int:
    """Run a service's action and exit with its status; the call chain travels along."""
    target = parse_targets([args.name])[0]
    chain = [link for link in os.environ.get("CORRAL_CALL_CHAIN", "").split(",") if link]
    with _client(args) as client:
        result = client.request(
            "action", target=target, action=args.action, args=args.args, chain=chain
        )
    sys.stdout.write(result["output"])
    if result["timed_out"]:
        print(f"corral: action {args.action} timed out", file=sys.stderr)
        return EXIT_FAILED
    if result["signal"] is not None:
        print(f"corral: action {args.action} killed by {result['signal']}", file=sys.stderr)
        return EXIT_FAILED
    return int(result["status"])


def cmd_graph(args: argparse.Namespace) -> int:
    with _client(args) as client:
        graph = client.request("graph")
    if args.format == "dot":
        sys.stdout.write(graph["dot"])
    else:
        del graph["dot"]
        _print_json(graph)
    return EXIT_OK


def cmd_config(args: argparse.Namespace) -> int:
    return {"check": _config_check, "reload": _config_reload, "show": _config_show}[
        args.config_command
    ](args)


def _offline_registry(paths: list[str]) -> Any:
    from corral.core.registry import build
    from corral.daemon.sources import default_sources, read_sources

    sources = [os.path.abspath(p) for p in paths] or default_sources(os.getcwd())
    return build(read_sources(sources)), sources


def _config_check(args: argparse.Namespace) -> int:
    registry, sources = _offline_registry(args.config)
    print(f"ok: {len(registry.definitions)} service(s) in {len(sources)} source(s)")
    return EXIT_OK


def _config_reload(args: argparse.Namespace) -> int:
    from corral.core.registry import describe_changes

    with _client(args) as client:
        summary = client.request("config_reload")
    print(f"reloaded: {describe_changes(summary)}")
    return EXIT_OK


def _config_show(args: argparse.Namespace) -> int:
    """From the daemon's registry; with -c (or no daemon to ask), from the files."""
    from corral.errors import DaemonUnreachable, NoSuchService

    shown = None
    if not args.config:
        try:
            with _client(args) as client:
                shown = client.request("config_show", name=args.name)
        except DaemonUnreachable:
            shown = None
    if shown is None:
        registry, _ = _offline_registry(args.config)
        real = registry.definitions.get(args.name)
        if real is None:
            raise NoSuchService(f"no such service: {args.name}")
        shown = registry.show(args.name)
    from corral.cli.render import config_table

    print(config_table(shown))
    return EXIT_OK


# -- parser ----------------------------------------------------------------------------------


#: name -> (function, one-line help, adds the command's arguments)
COMMANDS: dict[str, tuple[Command, str, Callable[[argparse.ArgumentParser], None]]] = {
    "up": (
        cmd_up,
        "run the supervisor in the foreground (-d: in the background)",
        arguments.up_args,
    ),
    "down": (cmd_down, "stop everything, then the daemon", arguments.no_args),
    "start": (
        _goal_command("start"),
        "start services; wait until they are ready",
        arguments.goal_args,
    ),
    "stop": (_goal_command("stop"), "stop services; wait until they are down", arguments.goal_args),
    "restart": (
        _goal_command("restart"),
        "stop then start services; wait until ready",
        arguments.goal_args,
    ),
    "reload": (cmd_reload, "send services their reload signal", arguments.names_args),
    "status": (cmd_status, "show services and instances", arguments.status_args),
    "wait": (cmd_wait, "wait until services are ready", arguments.wait_args),
    "logs": (cmd_logs, "show services' output, merged in time order", arguments.logs_args),
    "destroy": (
        cmd_destroy,
        "SIGKILL a service, its dependents and all they left",
        arguments.names_args,
    ),
    "action": (cmd_action, "run a service's action; exit with its status", arguments.action_args),
    "graph": (cmd_graph, "print the dependency graph", arguments.graph_args),
    "emit": (
        cmd_emit,
        "emit an event; wait until what it started or stopped settles",
        arguments.emit_args,
    ),
    "events": (cmd_events, "show the event stream (-f: follow it)", arguments.events_args),
    "config": (cmd_config, "check, reload or show the configuration", arguments.config_args),
    "trigger": (
        timers.cmd_trigger,
        "run a timer's job now, as if its timer fired",
        timers.trigger_args,
    ),
    "completion": (
        completion.cmd_completion,
        "print a completion script for bash, zsh or fish",
        completion.completion_args,
    ),
    "shell": (shell.cmd_shell, "an interactive prompt over the control socket", shell.shell_args),
    "tui": (tui.cmd_tui, "a live table of services and their logs", tui.tui_args),
    "import": (
        convert_cli.cmd_import,
        "print a Procfile, supervisord.conf, process-compose.yaml or systemd unit as TOML",
        convert_cli.import_args,
    ),
    "export": (
        convert_cli.cmd_export,
        "write the configuration as systemd units, Kubernetes manifests or a compose file",
        convert_cli.export_args,
    ),
}


SOCKET_HELP = "control socket (default: $CORRAL_SOCKET, then .corral/control.sock)"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's part of it (building all of argparse's
    subparsers costs tens of milliseconds, which every scripted ``corral status`` would pay)."""
    from corral import __version__

    parser = argparse.ArgumentParser(prog="corral", description="a service manager")
    parser.add_argument("--version", action="version", version=f"corral {__version__}")
    parser.add_argument("--socket", metavar="PATH", help=SOCKET_HELP)
    parser.set_defaults(build_parser=build_parser)  # what completion and shell walk
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    names = [only] if only in COMMANDS else list(COMMANDS)
    for name in names:
        func, text, add_arguments = COMMANDS[name]
        p = sub.add_parser(name, help=text, description=text)
        # SUPPRESS: not given after the verb, it leaves the one given before it in place.
        p.add_argument("--socket", metavar="PATH", default=argparse.SUPPRESS, help=SOCKET_HELP)
        p.set_defaults(func=func)
        add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    prefix = leading_socket(argv)
    words = prefix[1] if prefix is not None else argv
    parser = build_parser(words[0] if words else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    return reported(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
