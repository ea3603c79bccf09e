"""One attempt of a tcp or http probe, on the loop and never blocking: what a ``ready`` probe
repeats until it passes and a ``liveness`` probe repeats while the service runs.

Each raises OSError or ValueError saying why it failed; the caller bounds its time.
"""

from __future__ import annotations

import asyncio


async def tcp_check(target: str) -> None:
    """A connection to ``HOST:PORT`` is accepted."""
    host, _, port = target.rpartition(":")
    _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
    writer.close()


async def http_check(target: str) -> None:
    """A GET of the URL answers with a status below 400."""
    from urllib.parse import urlsplit  # only here: it costs milliseconds at every start

    url = urlsplit(target)
    host = url.hostname or "localhost"
    reader, writer = await asyncio.open_connection(host, url.port or 80)
    try:
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        writer.write(
            f"GET {path} HTTP/1.0\r\nHost: {url.netloc}\r\nUser-Agent: corral\r\n\r\n".encode()
        )
        line = await reader.readline()
    finally:
        writer.close()
    parts = line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError("not an HTTP answer")
    if int(parts[1]) >= 400:
        raise ValueError(f"HTTP status {int(parts[1])}")
