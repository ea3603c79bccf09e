"""How a bridge runs and talks to corral, against a small stand-in for the daemon's socket:
replies taken in order, errors logged, and the ways a bridge ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from corral.bridges.link import Link
from corral.bridges.runner import run

#: The stand-in's answer to each request line.
Answer = Callable[[dict[str, object]], dict[str, object] | None]


def with_daemon(tmp_path: Path, answer: Answer, body: Callable[[str], Awaitable[object]]) -> object:
    """Run ``body(socket path)`` while a server there answers each line with ``answer``
    (None: it hangs up)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            reply = answer(json.loads(line))
            if reply is None:
                break
            writer.write(json.dumps(reply).encode() + b"\n")
        writer.close()

    async def main() -> object:
        path = str(tmp_path / "control.sock")
        server = await asyncio.start_unix_server(serve, path)
        async with server:
            return await body(path)

    return asyncio.run(main())


def test_replies_are_matched_to_requests_in_order_and_refusals_logged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []

    def answer(request: dict[str, object]) -> dict[str, object]:
        seen.append(str(request["cmd"]))
        if request["cmd"] == "emit":
            return {"ok": False, "error": {"code": 2, "message": "'bad key' is not valid"}}
        return {"ok": True, "result": {"FILE": ["/a"]}}

    async def body(path: str) -> object:
        link = await Link.open("files", path)
        link.emit("path-changed", {"bad key": "x"})
        result = await link.request("watched", source="files")
        link.close()
        return result

    assert with_daemon(tmp_path, answer, body) == {"FILE": ["/a"]}
    assert seen == ["emit", "watched"]
    assert "files: corral refused a report: 'bad key' is not valid" in capsys.readouterr().err


def test_a_bridge_ends_with_1_when_corral_hangs_up(tmp_path: Path) -> None:
    async def forever(link: Link) -> None:
        await asyncio.get_running_loop().create_future()

    async def body(path: str) -> object:
        async def hang_up_soon(link: Link) -> None:
            link.send("ping")  # answered by hanging up
            await forever(link)

        return await run("files", hang_up_soon, path)

    assert with_daemon(tmp_path, lambda request: None, body) == 1


def test_an_error_in_a_callback_ends_the_bridge_with_1(tmp_path: Path) -> None:
    async def failing(link: Link) -> None:
        def boom() -> None:
            raise OSError("the netlink socket broke")

        loop = asyncio.get_running_loop()
        loop.call_soon(boom)
        await loop.create_future()

    async def body(path: str) -> object:
        return await run("devices", failing, path)

    assert with_daemon(tmp_path, lambda request: {"ok": True, "result": None}, body) == 1


def test_the_runner_knows_every_bridge_the_configuration_can_ask_for() -> None:
    from corral.bridges import runner
    from corral.core.bridge_jobs import BRIDGES

    assert tuple(BRIDGES) == runner.BRIDGES
