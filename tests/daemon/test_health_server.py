"""The health endpoints' HTTP on a real socket and a real loop, with rows handed in: what
a slow, silent or odd client gets (the daemon's own tests are tests/system/test_health.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from corral.control.protocol import StatusRow
from corral.daemon.health import MAX_CONNECTIONS, HealthServer, listen, not_ready


def _row(name: str, goal: str, state: str, ready: bool, instance: str = "") -> StatusRow:
    return StatusRow(
        name, instance, goal, state, None, ready, 0, None, None, 0.0, False, "", None, None
    )


ROWS = [
    _row("web", "start", "running", True),
    _row("db", "start", "spawned", False),
    _row("getty", "start", "pre-start", False, instance="tty1"),
    _row("idle", "stop", "waiting", False),
]


def test_not_ready_names_each_goal_start_instance_that_is_not_ready() -> None:
    assert not_ready(ROWS) == ["db: spawned", "getty:tty1: pre-start"]


Scenario = Callable[[int, HealthServer], Awaitable[None]]


def _serve(scenario: Scenario, head_timeout: float = 10.0) -> None:
    async def main() -> None:
        sock = listen("127.0.0.1", 0)
        server = HealthServer(
            sock,
            lambda: ROWS,
            lambda: False,
            lambda accept: (f"accept={accept}\n".encode(), "text/x-test"),
            head_timeout=head_timeout,
        )
        await server.start()
        try:
            await scenario(sock.getsockname()[1], server)
        finally:
            await server.close()

    asyncio.run(asyncio.wait_for(main(), 30))


async def _exchange(port: int, data: bytes) -> bytes:
    """The whole reply to ``data``; b"" when the server closed the connection unanswered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await reader.read()
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_a_client_that_sends_no_head_in_time_gets_408_and_is_closed() -> None:
    async def scenario(port: int, server: HealthServer) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # and never the empty line
        reply = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert reply.startswith(b"HTTP/1.1 408 ")

    _serve(scenario, head_timeout=0.2)


def test_a_head_request_gets_the_headers_and_no_body() -> None:
    async def scenario(port: int, server: HealthServer) -> None:
        reply = await _exchange(port, b"HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Content-Length: 3\r\n" in head
        assert body == b""

    _serve(scenario)


def test_bare_line_feeds_and_a_query_string_are_understood() -> None:
    async def scenario(port: int, server: HealthServer) -> None:
        reply = await _exchange(port, b"GET /readyz?verbose=1 HTTP/1.0\nHost: x\n\n")
        assert reply.startswith(b"HTTP/1.1 503 ")
        assert reply.endswith(b"\r\n\r\nnot ready:\ndb: spawned\ngetty:tty1: pre-start\n")

    _serve(scenario)


def test_the_scrapers_accept_header_reaches_the_renderer() -> None:
    async def scenario(port: int, server: HealthServer) -> None:
        request = b"GET /metrics HTTP/1.1\r\nACCEPT: application/openmetrics-text\r\n\r\n"
        reply = await _exchange(port, request)
        assert b"Content-Type: text/x-test\r\n" in reply
        assert reply.endswith(b"accept=application/openmetrics-text\n")

    _serve(scenario)


def test_a_malformed_request_line_is_400() -> None:
    async def scenario(port: int, server: HealthServer) -> None:
        assert (await _exchange(port, b"hello\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
        assert (await _exchange(port, b"\r\n")).startswith(b"HTTP/1.1 400 ")

    _serve(scenario)


def test_past_the_connection_limit_a_new_connection_is_closed_at_once() -> None:
    async def scenario(port: int, server: HealthServer) -> None:
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(MAX_CONNECTIONS)]
        await _until(lambda: server.connections == MAX_CONNECTIONS)
        assert await _exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n") == b""
        for _, writer in held:
            writer.close()
        await _until(lambda: server.connections == 0)
        reply = await _exchange(port, b"GET /healthz HTTP/1.1\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200 ")

    _serve(scenario)
