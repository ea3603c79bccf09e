"""What a main process is handed, spawned for real by both paths (posix_spawn, and Popen for
a umask): fds at 3, 4, ..., a connection on fds 0 and 1, its own pid in LISTEN_PID."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator

import pytest
from msgspec import structs

from corral.core.definition import Command, Definition
from corral.daemon.fdpass import Handed, raised
from corral.daemon.spawn import spawn

#: Says its pid and LISTEN_PID, then writes on fds 3 and 4 and echoes a line of stdin.
SCRIPT = 'echo "$$ $LISTEN_PID" >&2; echo three >&3; echo four >&4; read line; echo "got $line"'


@pytest.fixture(params=["posix_spawn", "popen"])
def definition(request: pytest.FixtureRequest) -> Definition:
    plain = Definition(name="svc", source="t.toml", main=Command(script=SCRIPT))
    return plain if request.param == "posix_spawn" else structs.replace(plain, umask=0o022)


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(3)]
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


def read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_fds_connection_and_own_pid_reach_the_child(
    definition: Definition, pairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    (three, three_child), (four, four_child), (conn, conn_child) = pairs
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    handed = Handed(
        (three_child.fileno(), four_child.fileno()), conn_child.fileno(), ("LISTEN_PID",)
    )
    env = dict(os.environ)
    assert definition.main is not None
    child = spawn(definition, definition.main, env, write_end, main_script=True, handed=handed)
    os.close(write_end)
    for theirs in (three_child, four_child, conn_child):
        theirs.close()
    conn.sendall(b"hello\n")
    assert conn.makefile().readline() == "got hello\n"
    assert three.makefile().readline() == "three\n" and four.makefile().readline() == "four\n"
    pid, listen_pid = read_all(read_end).split()
    os.close(read_end)
    assert int(pid) == int(listen_pid) == child.pid
    deadline = time.monotonic() + 10
    while os.waitpid(child.pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
        time.sleep(0.01)


def test_sources_are_raised_above_every_target_before_they_are_placed() -> None:
    low = os.open(os.devnull, os.O_RDONLY)  # a low number, maybe one of the targets
    try:
        placed = [(3, low), (4, low), (9, low)]
        with raised(placed) as copies:
            assert [target for target, _ in copies] == [3, 4, 9]
            assert all(copy > 9 for _, copy in copies)
            kept = [copy for _, copy in copies]
        for copy in kept:
            with pytest.raises(OSError):
                os.fstat(copy)  # closed once the spawn is done
    finally:
        os.close(low)
