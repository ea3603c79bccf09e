"""The fast path of ``corral status``, which scripts run in loops.

It imports only ``os``, ``sys`` and ``_socket`` (argparse, ``socket``, ``typing``, and
``json`` with the ``re`` it pulls in, together cost more than the rest of the call), parses
its few flags by hand and speaks the protocol directly; the daemon renders the table, which
is written out as it comes (``_json`` decodes only replies with other escapes than line
breaks: colour, errors). Anything it does not recognise (``--help``, a typo) falls back to
the full argparse CLI, so errors and help read the same as for every other command.
"""

import sys

# No ``from __future__ import annotations``: it imports the __future__ module at run time.
TYPE_CHECKING = False  # typing costs milliseconds at start-up; mypy still reads the hints
if TYPE_CHECKING:
    from typing import Any

EXIT_UNREACHABLE = 4
MAX_REPLY = 64 * 1024 * 1024
#: How every successful reply starts (the daemon's encoder writes compact JSON, keys in order).
OK_PREFIX = b'{"ok":true,"result":'


def parse_status(argv: list[str]) -> tuple[bool, str | None, list[str]] | None:
    """``status [--json] [--socket PATH] [NAME...]`` → (json, socket, names); None if the
    arguments need the full parser."""
    as_json = False
    socket_path = None
    names: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--json":
            as_json = True
        elif word == "--socket":
            socket_path = next(words, None)
            if socket_path is None:
                return None
        elif word.startswith("--socket="):
            socket_path = word.partition("=")[2]
        elif word.startswith("-") or "=" in word or not word:
            return None  # help, unknown flags and KEY=VALUE addresses: the full CLI
        else:
            names.append(word)
    return as_json, socket_path, names


def _request(path: str, line: bytes) -> bytes:
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(5.0)
        sock.connect(path)
        sock.settimeout(None)
        sock.sendall(line)
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


def status(argv: list[str]) -> int | None:
    """Run ``corral status`` the fast way; None means: use the full CLI instead."""
    parsed = parse_status(argv)
    if parsed is None:
        return None
    as_json, explicit, names = parsed
    from corral.control.paths import HUNG_UP, client_socket, unreachable

    path = client_socket(explicit)
    table = (
        "" if as_json else f',"table":true,"colour":{"true" if sys.stdout.isatty() else "false"}'
    )
    request = '{"cmd":"status","names":[' + ",".join(map(json_string, names)) + "]" + table + "}\n"
    try:
        raw = _request(path, request.encode())
    except OSError as exc:
        sys.stderr.write(f"corral: {unreachable(path, exc.strerror or str(exc))}\n")
        return EXIT_UNREACHABLE
    if not raw.endswith(b"\n"):
        sys.stderr.write(f"corral: {HUNG_UP}\n")
        return EXIT_UNREACHABLE
    if as_json and raw.startswith(OK_PREFIX) and raw.endswith(b"}\n"):
        sys.stdout.buffer.write(raw[len(OK_PREFIX) : -2] + b"\n")  # the result, as sent
        sys.stdout.flush()
        return 0
    plain = plain_result(raw)
    if plain is not None:
        sys.stdout.buffer.write(plain + b"\n")
        sys.stdout.flush()
        return 0
    reply = parse_json(raw)
    if not reply.get("ok"):
        error = reply.get("error") or {}
        sys.stderr.write(f"corral: {error.get('message', 'failed')}\n")
        return int(error.get("code", 1))
    sys.stdout.write(reply["result"] + "\n")  # the daemon rendered the table
    sys.stdout.flush()
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
    """Console entry point: the quick path for ``status``, the full CLI for the rest."""
    argv = sys.argv[1:]
    if argv and argv[0] == "status":
        try:
            code = status(argv[1:])
        except BrokenPipeError:
            code = 0
        if code is not None:
            leave(code)
    from corral.cli.main import main as full

    sys.exit(full(argv))
