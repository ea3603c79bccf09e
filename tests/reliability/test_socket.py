"""The control socket against hostile peers: other uids, leaked and idle connections, lines
that are not requests. Each found by the reliability suite or its fuzz (reliability/)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corral.control import protocol
from corral.control.server import ControlServer, Peer
from reliability.security_checks import OTHER_UID, connect_as
from tests.conftest import missing
from tests.system.conftest import Corral, wait_until


def _opened_up(corral: Corral) -> None:
    """The socket and every directory on its way open to all (corral's checks remain)."""
    path = Path(corral.socket)
    for directory in [path.parent, *path.parents[1:]]:
        if directory == Path("/"):
            break
        directory.chmod(directory.stat().st_mode | 0o011)
    path.parent.chmod(0o755)
    path.chmod(0o666)


def _needs_root() -> None:
    if os.getuid() != 0:
        missing("root (to connect as another uid)")


def test_another_uid_is_refused_with_a_line_saying_why_even_with_the_socket_opened(
    corral: Corral,
) -> None:
    """Found by reliability/security.py: the refusal was written and the connection closed
    at once, so a client that had sent its request got ECONNRESET or EPIPE, never the line."""
    _needs_root()
    corral.write('[service.a]\nexec = ["sleep", "60"]\n')
    corral.up()
    _opened_up(corral)
    outcomes = [connect_as(OTHER_UID, corral.socket) for _ in range(10)]
    for outcome in outcomes:
        reply = json.loads(outcome.splitlines()[0])
        assert reply["ok"] is False and reply["error"]["code"] == 1, outcome
        assert f"permission denied: uid {OTHER_UID} may not use this corral" in outcome
    assert corral.request("ping")["ok"] is True


def test_root_and_corrals_own_uid_are_served(corral: Corral) -> None:
    corral.write('[service.a]\nexec = ["sleep", "60"]\n')
    corral.up()
    assert corral.request("ping") == {"ok": True, "result": {"pong": True}}


@contextlib.contextmanager
def serving(path: str, group: int | None, limit: int | None = None) -> Iterator[ControlServer]:
    """A ControlServer on its own loop in a thread, answering ``ping`` (and ``events``
    with ``follow``: held until the client hangs up, a busy connection)."""

    async def handler(request: protocol.Request, connection: Any) -> Any:
        if request.cmd == "events":
            await connection.until_peer_closes()
        return {"pong": True}

    loop = asyncio.new_event_loop()
    server = ControlServer(path, handler, group=group, limit=limit)
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(server.close())
        loop.close()


@pytest.fixture
def grouped(tmp_path: Path) -> Iterator[tuple[str, ControlServer]]:
    """A server whose socket belongs to group OTHER_UID + 1."""
    _needs_root()
    tmp_path.chmod(0o755)
    path = str(tmp_path / "sock" / "control.sock")
    with serving(path, group=OTHER_UID + 1) as server:
        os.chmod(os.path.dirname(path), 0o755)
        yield path, server


def test_with_a_group_the_socket_is_0660_of_that_group(grouped: tuple[str, ControlServer]) -> None:
    path, _ = grouped
    info = os.stat(path)
    assert (info.st_mode & 0o777, info.st_gid) == (0o660, OTHER_UID + 1)


def test_with_a_group_its_members_are_served_and_others_refused(
    grouped: tuple[str, ControlServer],
) -> None:
    path, _ = grouped
    member = _connect_with_groups(path, OTHER_UID, OTHER_UID, [OTHER_UID + 1])
    stranger = _connect_with_groups(path, OTHER_UID, OTHER_UID, [OTHER_UID + 2])
    os.chmod(path, 0o666)  # opened to all: the group check still holds
    still = _connect_with_groups(path, OTHER_UID, OTHER_UID, [OTHER_UID + 2])
    assert '"pong":true' in member
    assert "permission denied" in stranger or "PermissionError" in stranger
    assert "permission denied: uid 54321" in still and "pong" not in still


def _connect_with_groups(path: str, uid: int, gid: int, groups: list[int]) -> str:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(10)
                sock.connect(path)
                sock.sendall(b'{"cmd": "ping"}\n')
                os.write(write, sock.makefile("rb").readline() or b"EOF")
        except BaseException as exc:  # the parent is told what happened
            os.write(write, f"{exc.__class__.__name__}: {exc}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        got = reader.read().decode("utf-8", "replace")
    os.waitpid(pid, 0)
    return got


def test_peer_groups_are_the_kernels_list_for_the_connecting_process(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "s"))
        listener.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(tmp_path / "s"))
            accepted, _ = listener.accept()
            with accepted:
                peer = Peer(accepted)
                assert (peer.pid, peer.uid, peer.gid) == (os.getpid(), os.getuid(), os.getgid())
                assert all(peer.in_group(g) for g in os.getgroups())
                assert not peer.in_group(OTHER_UID + 7)


def _idle(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def test_past_the_limit_the_longest_idle_connection_is_closed_with_a_line_saying_why(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "control.sock")
    with serving(path, group=None, limit=4):
        first = _idle(path)
        wait_until(lambda: _pinged(path), 5, "the server")
        others = [_idle(path) for _ in range(3)]
        with _idle(path) as newcomer:
            newcomer.sendall(b'{"cmd": "ping"}\n')
            assert b'"pong":true' in newcomer.makefile("rb").readline()
        said = first.makefile("rb").read()
        assert b"corral closed this idle connection: 4 connections were open" in said
        for sock in [first, *others]:
            sock.close()


def _pinged(path: str) -> bool:
    """Whether a new connection is served."""
    with _idle(path) as sock:
        sock.sendall(b'{"cmd": "ping"}\n')
        return b"pong" in sock.makefile("rb").readline()


def test_past_the_limit_with_none_idle_a_newcomer_is_refused_with_a_line_saying_why(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "control.sock")
    with serving(path, group=None, limit=3) as server:
        busy = [_idle(path) for _ in range(3)]
        for sock in busy:
            sock.sendall(b'{"cmd": "events", "follow": true}\n')
        wait_until(lambda: server.connections == (3, 0), 5, "three busy connections")
        said = _refused(path)
        assert "too many connections: corral serves at most 3 at once" in said
        for sock in busy:
            sock.close()
        wait_until(lambda: _pinged(path), 5, "a newcomer to be served once some finished")


def _refused(path: str) -> str:
    with _idle(path) as sock:
        sock.sendall(b'{"cmd": "ping"}\n')
        return sock.makefile("rb").read().decode()


def _lines(path: str, payload: bytes, half_close: bool = True) -> list[dict[str, Any]]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(20)
        sock.connect(path)
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return [json.loads(line) for line in sock.makefile("rb").read().splitlines()]


def test_every_bad_line_gets_its_error_reply_and_the_connection_goes_on(corral: Corral) -> None:
    """Invalid UTF-8 inside a string (msgspec raised UnicodeDecodeError past the server:
    the connection died without a reply), nesting past the decoder's depth, a line over
    MAX_LINE, and a last line without its newline before the client half-closes."""
    corral.write('[service.a]\nexec = ["sleep", "60"]\n')
    corral.up()
    deep = b"[" * 100_000 + b"]" * 100_000
    long = b'{"cmd": "ping", "pad": "' + b"x" * (protocol.MAX_LINE + 10) + b'"}'
    lines = [b'{"cmd": "ping", "x": "\x80"}', deep, long, b"garbage", b'{"cmd": "ping"}']
    replies = _lines(corral.socket, b"\n".join(lines) + b'\n{"cmd": "ping"}')
    assert [r["ok"] for r in replies] == [False, False, False, False, True, True], replies
    assert all(r["error"]["code"] == 2 for r in replies[:4])
    assert "not valid JSON" in replies[0]["error"]["message"]
    assert "request line too long" in replies[2]["error"]["message"]


def test_a_reply_naming_a_file_whose_name_is_not_utf8_still_reaches_the_client(
    corral: Corral,
) -> None:
    """Found by reliability/config_fuzz.py: a refused reload's message named a file called
    b"\\xff.toml" (a surrogate escape in Python), which the JSON encoder refused; the
    exception ended the connection, and the client got no reply at all."""
    sources = corral.root / "corral.d"
    sources.mkdir()
    (sources / "a.toml").write_text('[service.a]\nexec = ["sleep", "60"]\n')
    corral.up(env={"CORRAL_WATCH": "0"})
    with open(os.path.join(os.fsencode(sources), b"\xff.toml"), "wb") as bad:
        bad.write(b"[service.b]\nexec = 5\n")
    reply = corral.request("config_reload")
    assert reply["ok"] is False and reply["error"]["code"] == 1, reply
    assert "\\xff.toml:2: service.b.exec" in reply["error"]["message"], reply
    assert corral.request("ping")["ok"] is True


def _found_as(uid: int, cwd: Path) -> str:
    """The socket ``client_socket`` finds for a process of ``uid`` working in ``cwd``."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.chdir(cwd)
            os.environ.pop("CORRAL_SOCKET", None)
            from corral.control.paths import client_socket

            os.write(write, client_socket(None).encode())
        except BaseException as exc:  # the parent is told what happened
            os.write(write, f"{exc.__class__.__name__}: {exc}".encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        found = reader.read().decode()
    os.waitpid(pid, 0)
    return found


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's own are root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="corral-open-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_socket_another_user_left_in_a_parent_directory_is_not_used(open_dir: Path) -> None:
    """As git's safe.directory: walking up from the current directory, the CLI took any
    ``.corral/control.sock`` it met, so a user working under a shared directory (/tmp/x/y)
    talked to whatever daemon another user had put at /tmp/.corral/control.sock."""
    _needs_root()
    shared = open_dir / "shared"
    (shared / ".corral").mkdir(parents=True)
    work = shared / "work" / "deeper"
    work.mkdir(parents=True)
    for directory in (shared, shared / "work", work):
        directory.chmod(0o777)
    planted = shared / ".corral" / "control.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(planted))
        os.chown(planted, OTHER_UID + 5, OTHER_UID + 5)
        found = _found_as(OTHER_UID, work)
        assert found != str(planted), found
        assert found == str(work / ".corral" / "control.sock")
        os.chown(planted, OTHER_UID, OTHER_UID)  # the user's own: found
        assert _found_as(OTHER_UID, work) == str(planted)
