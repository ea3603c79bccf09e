"""``corral.Client`` and ``corral.AsyncClient`` driving a real daemon: real services, the real
socket, errors of corral's own family."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from corral import (
    AsyncClient,
    Client,
    DaemonUnreachable,
    Event,
    NoSuchService,
    OperationFailed,
    Outcome,
)
from tests.system.conftest import Corral, pid_alive, wait_until

CONFIG = """
[service.web]
script = "echo web says hello; exec sleep 600"

[service.db]
script = "echo db is up; exec sleep 600"
autostart = false

[service.broken]
script = "echo about to fail; exit 3"
restart = "no"
autostart = false

[service.getty]
exec = ["sleep", "600"]
instance = "${TTY}"
start_on = "tty-added TTY=*"
"""


@pytest.fixture
def client(corral: Corral) -> Client:
    corral.write(CONFIG)
    corral.up()
    corral.wait_state("web", "running")
    return Client(corral.socket)


def test_status_records_carry_what_status_json_says(corral: Corral, client: Client) -> None:
    rows = json.loads(corral.ok("status", "--json"))
    records = client.status()
    assert [{key: getattr(r, key) for key in row} for r, row in zip(records, rows, strict=True)] \
        == rows  # fmt: skip
    (web,) = client.status("web")
    assert (web.name, web.goal, web.state, web.ready) == ("web", "start", "running", True)
    assert pid_alive(web.pid or 0)


def test_start_stop_and_restart_say_where_each_instance_got(client: Client) -> None:
    (started,) = client.start("db")
    assert (started.name, started.state) == ("db", "running") and pid_alive(started.pid or 0)
    (web,) = client.status("web")
    (restarted,) = client.restart("web")
    assert restarted.state == "running" and restarted.pid not in (None, web.pid)
    assert client.stop("db") == [Outcome(name="db", instance="", state="waiting", pid=None)]
    assert not pid_alive(started.pid or 0)
    assert client.status("db")[0].goal == "stop"


def test_a_start_without_waiting_returns_once_the_goal_is_set(
    corral: Corral, client: Client
) -> None:
    (outcome,) = client.start("db", wait=False)
    assert outcome.name == "db"
    corral.wait_state("db", "running")


def test_a_failed_start_raises_operation_failed_saying_why(client: Client) -> None:
    with pytest.raises(OperationFailed, match="about to fail"):
        client.start("broken")
    assert client.status("broken")[0].exit_status == 3


def test_an_unknown_name_raises_no_such_service(client: Client) -> None:
    with pytest.raises(NoSuchService, match="nosuch"):
        client.start("nosuch")
    with pytest.raises(NoSuchService):
        client.status("nosuch")


def test_no_daemon_raises_daemon_unreachable(tmp_path: Path) -> None:
    with pytest.raises(DaemonUnreachable, match="cannot reach corral"):
        Client(tmp_path / "nobody.sock").status()


def test_wait_returns_when_ready_and_fails_for_what_is_stopped(client: Client) -> None:
    assert [o.name for o in client.wait("web", timeout=10)] == ["web"]
    with pytest.raises(OperationFailed, match="not running: db"):
        client.wait("db", timeout=10)


def test_emit_says_what_the_event_started(client: Client) -> None:
    emitted = client.emit("tty-added", TTY="tty1")
    assert [(o.name, o.instance, o.state) for o in emitted.started] == [
        ("getty", "tty1", "running")
    ]
    assert emitted.stopped == []
    assert client.status("getty", "TTY=tty1")[0].pid == emitted.started[0].pid


def test_events_yields_each_event_with_its_name_and_environment(client: Client) -> None:
    seen: list[Event] = []
    with client.events() as events:
        client.start("db")
        for event in events:
            seen.append(event)
            if event.name == "started" and event.env.get("JOB") == "db":
                break
    assert [e.name for e in seen if e.env.get("JOB") == "db"] == ["starting", "started"]
    assert seen[-1].env == {"JOB": "db", "INSTANCE": ""}


def test_events_end_when_the_daemon_exits(corral: Corral, client: Client) -> None:
    names: list[str] = []
    events = client.events()
    next_one = threading.Thread(target=lambda: names.extend(e.name for e in events))
    with events:
        next_one.start()
        corral.ok("down")
        next_one.join(30)
    assert not next_one.is_alive(), "the stream did not end with the daemon"
    assert "stopped" in names


def test_a_stream_closed_from_another_thread_stops_its_reader(client: Client) -> None:
    events = client.events()
    reader = threading.Thread(target=lambda: list(events))
    with events:
        reader.start()
    reader.join(30)
    assert not reader.is_alive()


def test_logs_and_followed_logs(client: Client) -> None:
    wait_until(lambda: client.logs("web"), what="web's output")
    assert [line.text for line in client.logs("web") if line.process == "main"] == [
        "web says hello"
    ]
    with client.follow_logs("db", lines=0) as lines:
        client.start("db")
        first = next(line for line in lines if line.process == "main")
    assert (first.service, first.text) == ("db", "db is up")


def test_without_a_socket_it_finds_the_one_the_cli_would(
    corral: Corral, client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    below = corral.root / "src" / "deep"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    monkeypatch.delenv("CORRAL_SOCKET", raising=False)
    found = Client()
    assert found.socket == corral.socket
    assert [s.name for s in found.status("web")] == ["web"]


def test_the_async_client_does_the_same_with_asyncio(corral: Corral, client: Client) -> None:
    async def scenario() -> dict[str, Any]:
        aclient = AsyncClient(corral.socket)
        async with aclient.events() as events:
            both = await asyncio.gather(aclient.start("db"), aclient.emit("tty-added", TTY="t2"))
            started = [e async for e in _until_started(events, "db")]
        with pytest.raises(NoSuchService):
            await aclient.stop("nosuch")
        with pytest.raises(DaemonUnreachable):
            await AsyncClient(corral.root / "nobody.sock").status()
        return {
            "db": both[0],
            "emitted": both[1],
            "events": started,
            "status": await aclient.status("db"),
            "logs": await aclient.logs("db"),
            "waited": await aclient.wait("db", timeout=10),
            "stopped": await aclient.stop("db"),
        }

    got = asyncio.run(scenario())
    assert [(o.name, o.state) for o in got["db"]] == [("db", "running")]
    assert [(o.name, o.instance) for o in got["emitted"].started] == [("getty", "t2")]
    assert got["events"][-1].name == "started"
    assert got["status"][0].pid == got["db"][0].pid
    assert "db is up" in [line.text for line in got["logs"]]
    assert [o.name for o in got["waited"]] == ["db"]
    assert got["stopped"][0].state == "waiting"


async def _until_started(events: Any, job: str) -> Any:
    async for event in events:
        yield event
        if event.name == "started" and event.env.get("JOB") == job:
            return


def test_corral_status_loads_none_of_the_client(corral: Corral, client: Client) -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "corral", "status"],
        env=corral.env(), capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    loaded = {line.rpartition("|")[2].strip() for line in run.stderr.splitlines()}
    assert "web" in run.stdout
    assert loaded & {"corral.control.api", "corral.control.aio", "corral.control.records",
                     "corral.control.calls", "asyncio", "msgspec"} == set()  # fmt: skip
