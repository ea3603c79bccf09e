"""``bus_name`` and ``type = "dbus"`` for real: the service file corral writes for the test's
own bus, a call to the unowned name starting the service through corral (its process
corral's child, seen in ``/proc``), and readiness when the name gets an owner."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from tests.system.conftest import Corral, pid_alive, wait_until
from tests.system.test_dbus import Bus, bus, up

__all__ = ["bus"]  # the fixture, for the tests below

NAME = "org.example.Foo"


def service(bus: Bus, command: list[str] | None = None, extra: str = "") -> str:
    argv = command if command is not None else bus.owner_argv(NAME)
    return f"""
[service.foo]
type = "dbus"
bus_name = "{NAME}"
exec = {json_list(argv)}
autostart = false
{extra}
"""


def json_list(words: list[str]) -> str:
    return "[" + ", ".join(f'"{word}"' for word in words) + "]"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def ping(bus: Bus) -> subprocess.CompletedProcess[str]:
    return bus.send("--print-reply", f"--dest={NAME}", "/", "org.freedesktop.DBus.Peer.Ping")


def test_a_call_to_the_unowned_name_starts_the_service_as_corrals_child(
    corral: Corral, bus: Bus
) -> None:
    daemon = up(corral, bus, service(bus))
    assert corral.one("foo")["state"] == "waiting"
    answered = ping(bus)
    assert answered.returncode == 0, answered.stderr
    row = corral.one("foo")
    assert (row["state"], row["ready"]) == ("running", True)
    assert parent_of(row["pid"]) == daemon.pid


def test_a_dbus_service_is_ready_once_it_owns_its_name_not_before(corral: Corral, bus: Bus) -> None:
    go = corral.root / "go"
    waits = f"while [ ! -e {go} ]; do sleep 0.05; done; exec {shlex.join(bus.owner_argv(NAME))}"
    up(corral, bus, service(bus, ["sh", "-c", waits]))
    corral.ok("start", "foo", "--no-wait")
    row = corral.wait_state("foo", "spawned")
    assert not row["ready"] and not bus.has_owner(NAME)
    go.write_text("")
    corral.ok("wait", "foo", "--timeout", "15")
    assert bus.has_owner(NAME) and corral.one("foo")["ready"]


def test_a_dbus_service_whose_name_never_gets_an_owner_fails_its_start(
    corral: Corral, bus: Bus
) -> None:
    up(corral, bus, service(bus, ["sleep", "600"], 'timeout_start = "1s"'))
    result = corral.run("start", "foo")
    assert result.returncode == 1
    assert corral.one("foo")["state"] in ("waiting", "failed")


def test_a_running_dbus_service_whose_name_loses_its_owner_keeps_running_and_says_so(
    corral: Corral, bus: Bus
) -> None:
    owner = shlex.join(bus.owner_argv(NAME))
    up(corral, bus, service(bus, ["sh", "-c", f"{owner} & echo $$! > owner.pid; exec sleep 600"]))
    corral.ok("start", "foo")
    main = corral.one("foo")["pid"]
    owner_pid = int(wait_until(lambda: (corral.root / "owner.pid").read_text().strip(), 5, "pid"))
    subprocess.run(["kill", str(owner_pid)], check=True)
    wait_until(lambda: f"{NAME} has no owner now" in corral.ok("logs", "foo"), 15, "the log line")
    row = corral.one("foo")
    assert (row["state"], row["pid"]) == ("running", main) and pid_alive(main)


def test_the_service_file_runs_corral_start_and_follows_the_configuration(
    corral: Corral, bus: Bus
) -> None:
    foreign = bus.services / "org.example.Theirs.service"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("[D-BUS Service]\nName=org.example.Theirs\nExec=/bin/true\n")
    up(corral, bus, service(bus))
    written = bus.services / f"{NAME}.service"
    lines = written.read_text().splitlines()
    assert f"Name={NAME}" in lines
    exec_line = next(line for line in lines if line.startswith("Exec="))
    assert shlex.split(exec_line.removeprefix("Exec="))[1:] == [
        "-m", "corral", "start", "--socket", corral.socket, "foo"
    ]  # fmt: skip
    corral.write("""
        [service.desk]
        exec = ["sleep", "600"]
        while = "dbus-name(NAME=org.example.Desktop)"
        """)  # fmt: skip
    corral.ok("config", "reload")
    wait_until(lambda: not written.exists(), 15, "the file of a bus_name gone from the config")
    assert foreign.exists()


def test_a_call_to_a_service_that_fails_to_start_fails_and_the_file_goes_with_corral(
    corral: Corral, bus: Bus
) -> None:
    up(corral, bus, service(bus, ["sh", "-c", "exit 3"]))
    failed = ping(bus)
    assert failed.returncode != 0
    assert failed.stderr.startswith("Error org.freedesktop.DBus.Error.Spawn.ChildExited")
    assert corral.one("foo")["state"] in ("waiting", "failed")
    written = bus.services / f"{NAME}.service"
    assert written.exists()
    corral.down()
    assert not written.exists()
