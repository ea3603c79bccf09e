"""The fast path of the commands scripts run in loops: ``status``, ``start``, ``stop``,
``restart``, ``reload`` and ``down`` (also after ``--socket PATH``); and of ``up``, whose
start it shortens (``--health`` included).

A status imports only ``os``, ``sys`` and ``_socket``, and a verb the address parser
besides (argparse, ``socket``, ``typing``, and ``json`` with the ``re`` it pulls in, together
cost more than the rest of the call: a ``corral down`` through argparse took 29 ms, 9 of
them the interpreter's start). It parses the few flags by hand and speaks the protocol
directly; the daemon renders the status table, which is written out as it comes (``_json``
decodes only replies with other escapes than line breaks: colour, errors). Anything it does
not recognise (``--help``, a typo, a missing name) falls back to the full argparse CLI, so
errors and help read the same as for every other command. On a terminal a waiting start,
stop or restart draws its live line through ``corral.cli.progress`` (imported only there).
"""

import sys

from corral.cli import colour_for, leading_socket, said  # the package: loaded already

# The contract's exit codes, as in corral.errors (whose import, with its classes, costs a
# tenth of a millisecond here; tests/cli/test_quick.py checks they agree).
EXIT_FAILED, EXIT_USAGE, EXIT_NO_SUCH_SERVICE, EXIT_UNREACHABLE = 1, 2, 3, 4
#: corral.control.version's PROTOCOL_VERSION, sent in every request (the test checks it too).
PROTOCOL_VERSION = 2

# No ``from __future__ import annotations``: it imports the __future__ module at run time.
TYPE_CHECKING = False  # typing costs milliseconds at start-up; mypy still reads the hints
if TYPE_CHECKING:
    from typing import Any

MAX_REPLY = 64 * 1024 * 1024
#: How every successful reply starts (the daemon's encoder writes compact JSON, keys in order).
OK_PREFIX = b'{"ok":true,"result":'

#: The commands besides ``status`` taken here: verb -> its one flag (None: none), and
#: whether it needs names (``down`` takes none).
VERBS: "dict[str, tuple[str | None, bool]]" = {
    "start": ("--no-wait", True),
    "stop": ("--no-wait", True),
    "restart": ("--no-wait", True),
    "reload": (None, True),
    "down": (None, False),
}
#: The verbs that say, one line per instance, how each ended (``said``).
SAYING = frozenset({"start", "stop", "restart"})


def parse_words(
    argv: list[str], flag: str | None, addresses: bool, socket_path: str | None = None
) -> tuple[bool, str | None, list[str]] | None:
    """``[FLAG] [--socket PATH] [NAME...]`` → (flag given, socket, names); None if the
    arguments need the full parser. ``addresses`` lets ``KEY=VALUE`` words through. The
    names must come in one run, as argparse takes them: ``a --json b`` is its error.
    ``socket_path``: one given before the command word (a later one wins, as in argparse)."""
    flagged = False
    names: list[str] = []
    after_names = False  # a flag came after some names: no more names may follow
    words = iter(argv)
    for word in words:
        if word == flag:
            flagged = True
        elif word == "--socket":
            socket_path = next(words, None)
            if socket_path is None or socket_path.startswith("-"):
                return None  # argparse's error: a flag where the path should be
        elif word.startswith("--socket="):
            socket_path = word.partition("=")[2]
        elif word.startswith("-") or not word or ("=" in word and not addresses):
            return None  # help, unknown flags (and for status, KEY=VALUE): the full CLI
        elif after_names:
            return None
        else:
            names.append(word)
            continue
        after_names = bool(names)
    return flagged, socket_path, names


#: ``up``'s flags that take a value.
UP_VALUES = ("-c", "--config", "--socket", "--ready-fd", "--health")


def parse_up(
    argv: list[str], socket_path: str | None = None
) -> tuple[list[str], bool, str | None, int | None, tuple[str, int] | None] | None:
    """``up [-c PATH]... [-d] [--socket PATH] [--health ADDR]`` → (configs, detach, socket,
    ready fd, health address); None if the arguments need the full parser (abbreviations,
    joined flags, a missing or malformed value)."""
    configs: list[str] = []
    detach = False
    ready_fd = None
    health = None
    words = iter(argv)
    for word in words:
        flag, joined, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if flag in UP_VALUES:
            if not joined:
                value = next(words, "")
            if not value or value.startswith("-"):
                return None
            if flag == "--socket":
                socket_path = value
            elif flag == "--ready-fd":
                if not value.isdigit():
                    return None
                ready_fd = int(value)
            elif flag == "--health":
                from corral.cli.up import parse_address

                health = parse_address(value)
                if health is None:
                    return None
            else:
                configs.append(value)
        elif word in ("-d", "--detach"):
            detach = True
        else:
            return None
    return configs, detach, socket_path, ready_fd, health


def parse_status(
    argv: list[str], socket_path: str | None = None
) -> tuple[bool, str | None, list[str]] | None:
    """``status [--json] [--socket PATH] [NAME...]`` → (json, socket, names)."""
    return parse_words(argv, "--json", addresses=False, socket_path=socket_path)


def _request(path: str, line: bytes, live: bool = False) -> bytes:
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(5.0)
        sock.connect(path)
        sock.settimeout(None)
        sock.sendall(line)
        if live:  # a terminal: the waiting is shown, as the full CLI shows it
            from corral.cli.progress import receive

            return receive(sock, sys.stderr)
        chunks = []
        size = 0
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if chunk.endswith(b"\n") or size > MAX_REPLY:
                break
        return b"".join(chunks)
    finally:
        sock.close()


def json_string(text: str) -> str:
    """``text`` as a JSON string; plain names need no escaping and no json import."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    import json

    return json.dumps(text)


class _ScanContext:
    """What ``_json.make_scanner`` reads from json.JSONDecoder, without importing json."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name)


def parse_json(raw: bytes) -> "Any":
    """Decode one reply with the C scanner that json itself uses."""
    try:
        from _json import make_scanner
    except ImportError:  # an interpreter without the accelerator
        import json

        return json.loads(raw)
    scan = make_scanner(_ScanContext())  # type: ignore[arg-type]  # duck-typed, as in C
    value, _ = scan(raw.decode(), 0)
    return value


def plain_result(raw: bytes) -> bytes | None:
    """A successful reply's string result as UTF-8 text, when its only escapes are line
    breaks (a table without colour); None for anything else, which ``parse_json`` decodes.
    Once every ``\\n`` is a newline, any backslash left means another escape was there."""
    start, end = len(OK_PREFIX) + 1, len(raw) - 3
    if not (raw.startswith(OK_PREFIX + b'"') and raw.endswith(b'"}\n') and end >= start):
        return None
    text = raw[start:end].replace(b"\\n", b"\n")
    return None if b"\\" in text else text


#: The fields of a start/stop/restart result row, in the order the daemon writes them.
ROW_FIELDS = ("name", "instance", "state", "pid", "done")
CONSTANTS = {"true": True, "false": False, "null": None}


def plain_rows(raw: bytes) -> "list[dict[str, Any]] | None":
    """The rows of a successful start/stop/restart reply, read without json where no string
    in it holds an escape (then every ``"`` is the JSON's own, and splitting at the fields'
    names is exact); None for anything else, which ``parse_json`` decodes."""
    if not raw.startswith(OK_PREFIX + b"[") or not raw.endswith(b"]}\n") or b"\\" in raw:
        return None
    body = raw[len(OK_PREFIX) + 1 : -3].decode()
    if not body:
        return []
    rows = []
    for item in body.split("},{"):
        values = item.removeprefix("{").removesuffix("}").split(',"')
        if len(values) != len(ROW_FIELDS):
            return None
        row: dict[str, Any] = {}
        for field, value in zip(ROW_FIELDS, values, strict=True):
            key, colon, text = value.removeprefix('"').partition('":')
            if key != field or not colon:
                return None
            if text.startswith('"') and text.endswith('"') and len(text) > 1:
                row[field] = text[1:-1]
            elif text in CONSTANTS:
                row[field] = CONSTANTS[text]
            elif text.isascii() and text.isdigit():
                row[field] = int(text)
            else:
                return None
        rows.append(row)
    return rows


def targets_json(targets: "list[dict[str, Any]]") -> str:
    """Protocol targets (from ``parse_targets``) as the JSON json.dumps would give."""
    encoded = []
    for target in targets:
        fields = ['"name":' + json_string(target["name"])]
        if "instance" in target:
            fields.append('"instance":' + json_string(target["instance"]))
        if "env" in target:
            pairs = (json_string(k) + ":" + json_string(v) for k, v in target["env"].items())
            fields.append('"env":{' + ",".join(pairs) + "}")
        encoded.append("{" + ",".join(fields) + "}")
    return "[" + ",".join(encoded) + "]"


def _call(explicit: str | None, request: str, live: bool = False) -> bytes | int:
    """Send one request line to the daemon; its whole reply, or the exit code after saying
    on stderr why there is none. ``live``: progress lines come first, shown on stderr."""
    from corral.control.paths import HUNG_UP, client_socket, unreachable

    path = client_socket(explicit)
    try:
        raw = _request(path, request.encode(), live)
    except OSError as exc:
        sys.stderr.write(f"corral: {unreachable(path, exc.strerror or str(exc))}\n")
        return EXIT_UNREACHABLE
    if not raw.endswith(b"\n"):
        sys.stderr.write(f"corral: {HUNG_UP}\n")
        return EXIT_UNREACHABLE
    return raw


def failed(reply: "Any") -> int:
    """Say a refused request's message on stderr; its exit code, as the full CLI maps it."""
    if not isinstance(reply, dict) or "ok" not in reply:
        sys.stderr.write(f"corral: unexpected reply from corral: {reply!r}\n")
        return EXIT_FAILED
    error = reply.get("error") or {}
    message = error.get("message", "failed")
    code = error.get("code", EXIT_FAILED)
    if code == EXIT_USAGE:
        from corral.control.version import OLDER_DAEMON, older_daemon

        if older_daemon(message):
            message, code = OLDER_DAEMON, EXIT_UNREACHABLE
    sys.stderr.write(f"corral: {message}\n")
    known = (EXIT_USAGE, EXIT_NO_SUCH_SERVICE, EXIT_UNREACHABLE)
    return code if code in known else EXIT_FAILED


def status(argv: list[str], socket_path: str | None = None) -> int | None:
    """Run ``corral status`` the fast way; None means: use the full CLI instead."""
    parsed = parse_status(argv, socket_path)
    if parsed is None:
        return None
    as_json, explicit, names = parsed
    colour = "false" if as_json or not colour_for(sys.stdout) else "true"
    table = "" if as_json else f',"table":true,"colour":{colour}'
    request = (
        f'{{"cmd":"status","v":{PROTOCOL_VERSION},"names":['
        + ",".join(map(json_string, names)) + "]" + table + "}\n"
    )  # fmt: skip
    raw = _call(explicit, request)
    if isinstance(raw, int):
        return raw
    if as_json and raw.startswith(OK_PREFIX) and raw.endswith(b"}\n"):
        sys.stdout.buffer.write(raw[len(OK_PREFIX) : -2] + b"\n")  # the result, as sent
        return 0
    plain = plain_result(raw)
    if plain is not None:
        sys.stdout.buffer.write(plain + b"\n")
        return 0
    reply = parse_json(raw)
    if not (isinstance(reply, dict) and reply.get("ok")):
        return failed(reply)
    sys.stdout.write(reply["result"] + "\n")  # the daemon rendered the table
    return 0


def verb(command: str, argv: list[str], socket_path: str | None = None) -> int | None:
    """Run ``start``, ``stop``, ``restart``, ``reload`` or ``down`` the fast way: the same
    request as the full CLI sends, and the same said (``said``, or an error); None means:
    use the full CLI instead (which also gives the usage error for a missing name)."""
    flag, needs_names = VERBS[command]
    parsed = parse_words(argv, flag, addresses=needs_names, socket_path=socket_path)
    if parsed is None or bool(parsed[2]) != needs_names:
        return None
    flagged, explicit, names = parsed
    request = f'{{"cmd":"{command}","v":{PROTOCOL_VERSION}'
    if needs_names:
        from corral.cli.address import parse_targets
        from corral.errors import UsageError

        try:
            targets = parse_targets(names)
        except UsageError as exc:
            sys.stderr.write(f"corral: {exc}\n")
            return EXIT_USAGE
        request += ',"targets":' + targets_json(targets)
    if flag is not None:
        request += ',"wait":' + ("false" if flagged else "true")
    live = command in SAYING and not flagged and sys.stderr.isatty()
    if live:
        request += ',"progress":true'
    raw = _call(explicit, request + "}\n", live)
    if isinstance(raw, int):
        return raw
    if not raw.startswith(OK_PREFIX):
        return failed(parse_json(raw))
    if command in SAYING and not flagged:  # --no-wait: nothing reached yet, nothing said
        rows = plain_rows(raw)
        sys.stdout.write(said(parse_json(raw)["result"] if rows is None else rows))
    return 0


def leave(code: int) -> None:
    """Exit without the interpreter's finalisation: the output is flushed and nothing else
    needs tearing down, and freeing every object costs more than the rest of the exit."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:  # a closed pipe: nothing more can be said there
            pass
    os._exit(code)


def main() -> None:
    """Console entry point: the quick path where it applies, the full CLI for the rest."""
    argv = sys.argv[1:]
    prefix = leading_socket(argv)
    socket_path, rest = prefix if prefix is not None else (None, [])
    command = rest[0] if rest else ""
    if command == "status" or command in VERBS:
        try:
            if command == "status":
                code = status(rest[1:], socket_path)
            else:
                code = verb(command, rest[1:], socket_path)
        except BrokenPipeError:
            code = 0
        except KeyboardInterrupt:  # a waiting start given up, as the full CLI exits
            code = 130
        if code is not None:
            leave(code)
    elif command == "up" and (parsed := parse_up(rest[1:], socket_path)) is not None:
        from corral.cli.up import run_up
        from corral.errors import reported

        sys.exit(reported(lambda: run_up(*parsed)))  # a normal exit: the daemon's files close
    from corral.cli.main import main as full

    sys.exit(full(argv))
