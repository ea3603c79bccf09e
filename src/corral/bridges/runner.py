"""How every bridge runs: ``python -m corral.bridges NAME``.

One asyncio loop per bridge, waiting on its sources (a netlink socket, an inotify fd) and on
its connection to the daemon, with no timer armed while nothing happens. SIGTERM and SIGINT
end it cleanly (exit 0); the daemon hanging up ends it with exit 1 (corral, where it still
runs, starts it again); so does an error of its own, after saying what it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import signal
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from corral.bridges.link import Link
from corral.errors import CorralError

#: corral's bridges (``core/bridge_jobs.py`` BRIDGES; named here so that a bridge does not
#: load the configuration's modules).
BRIDGES = ("devices", "network", "files", "timers", "dbus")

#: A bridge's body: reports what it sees through the link, until cancelled.
Serve = Callable[[Link], Coroutine[Any, Any, None]]


async def run(source: str, serve: Serve, socket: str | None = None) -> int:
    """Run one bridge until SIGTERM (0), the daemon hanging up (1) or its own failure (1)."""
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[None] = loop.create_future()

    failed: asyncio.Future[None] = loop.create_future()

    def stopping() -> None:
        if not stop.done():
            stop.set_result(None)

    def broken(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An error in a reader callback: said, and the end of the bridge (rather than a
        callback failing again at every turn of the loop)."""
        loop.default_exception_handler(context)
        if not failed.done():
            failed.set_result(None)

    for number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(number, stopping)
    loop.set_exception_handler(broken)
    link = await Link.open(source, socket)
    body: asyncio.Task[None] = loop.create_task(serve(link))
    try:
        await asyncio.wait([stop, failed, link.closed, body], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not body.done():
            body.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await body
        link.close()
    if stop.done():
        return 0
    if failed.done():
        return 1
    if body.done() and not body.cancelled() and (error := body.exception()) is not None:
        traceback.print_exception(error)
        return 1
    print(f"{source}: corral hung up; exiting", file=sys.stderr)
    return 1


def main(argv: list[str]) -> int:
    names = ", ".join(BRIDGES)
    if len(argv) != 1 or argv[0] not in BRIDGES:
        print(f"usage: python -m corral.bridges NAME   (NAME: {names})", file=sys.stderr)
        return 2
    name = argv[0]
    module = importlib.import_module(f"corral.bridges.{name}")
    try:
        return asyncio.run(run(name, module.serve))
    except CorralError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
