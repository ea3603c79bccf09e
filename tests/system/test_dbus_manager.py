"""``org.corral.Manager1`` for real: its methods called with ``busctl`` and ``dbus-send`` on
the test's own bus, their effects checked in ``corral status`` and ``/proc``, a caller of
another uid refused, failures as the CLI says them."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import missing
from tests.system.conftest import Corral, pid_alive, wait_until
from tests.system.test_dbus import Bus, bus, up

__all__ = ["bus"]  # the fixture, for the tests below

MANAGER = ("org.corral.Manager1", "/org/corral/Manager1", "org.corral.Manager1")

SERVICES = """
[service.web]
exec = ["sleep", "600"]
autostart = false

[service.bad]
exec = ["sh", "-c", "echo cannot start; exit 3"]
autostart = false

[service.on_event]
type = "oneshot"
exec = ["sh", "-c", "echo $$LEVEL > {root}/level"]
start_on = "battery-low"

[service.desk]
exec = ["sleep", "600"]
while = "dbus-name(NAME=org.example.Desktop)"
"""


def call(bus: Bus, method: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A method of corral's, as a user calls it with busctl."""
    return bus.busctl("call", *MANAGER, method, *args)


def setup(corral: Corral, bus: Bus) -> None:
    up(corral, bus, SERVICES.format(root=corral.root))


def test_start_returns_once_running_and_stop_once_stopped(corral: Corral, bus: Bus) -> None:
    setup(corral, bus)
    started = call(bus, "Start", "s", "web")
    assert started.returncode == 0, started.stderr
    row = corral.one("web")
    assert (row["state"], row["ready"]) == ("running", True) and pid_alive(row["pid"])
    restarted = call(bus, "Restart", "s", "web")
    assert restarted.returncode == 0, restarted.stderr
    assert corral.one("web")["pid"] not in (None, row["pid"])
    stopped = call(bus, "Stop", "s", "web")
    assert stopped.returncode == 0, stopped.stderr
    assert corral.one("web")["state"] == "waiting" and not pid_alive(row["pid"])


def test_list_services_gives_name_instance_state_pid_and_ready(corral: Corral, bus: Bus) -> None:
    setup(corral, bus)
    corral.ok("start", "web")
    pid = corral.one("web")["pid"]
    listed = call(bus, "ListServices")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith("a(sssib) 5 ")
    assert f'"web" "" "running" {pid} true' in listed.stdout
    assert '"bad" "" "waiting" 0 false' in listed.stdout


def test_a_failing_start_is_org_corral_error_failed_with_the_clis_message(
    corral: Corral, bus: Bus
) -> None:
    setup(corral, bus)
    result = bus.send("--print-reply", "--dest=org.corral.Manager1", "/org/corral/Manager1",
                      "org.corral.Manager1.Start", "string:bad")  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.startswith("Error org.corral.Error.Failed: ")
    said = result.stderr.removeprefix("Error org.corral.Error.Failed: ").strip()
    cli = corral.run("start", "bad")
    assert cli.returncode == 1
    assert said and said in cli.stderr
    assert "exited with status 3" in said


def test_an_unknown_service_is_org_corral_error_no_such_service(corral: Corral, bus: Bus) -> None:
    setup(corral, bus)
    result = bus.send("--print-reply", "--dest=org.corral.Manager1", "/org/corral/Manager1",
                      "org.corral.Manager1.Stop", "string:nosuch")  # fmt: skip
    assert result.stderr.strip() == "Error org.corral.Error.NoSuchService: no such service: nosuch"


def test_emit_returns_once_what_the_event_started_has_settled(corral: Corral, bus: Bus) -> None:
    setup(corral, bus)
    emitted = call(bus, "Emit", "sa{ss}", "battery-low", "1", "LEVEL", "4")
    assert emitted.returncode == 0, emitted.stderr
    assert (corral.root / "level").read_text() == "4\n"  # the oneshot ran before the answer
    assert corral.one("on_event")["state"] == "running"


def test_a_caller_of_another_uid_is_refused_and_changes_nothing(corral: Corral, bus: Bus) -> None:
    if os.getuid() != 0:
        missing("root, to call as another uid")
    setup(corral, bus)
    refused = bus.send("--print-reply", "--dest=org.corral.Manager1", "/org/corral/Manager1",
                       "org.corral.Manager1.Start", "string:web", uid=65534)  # fmt: skip
    assert refused.stderr.startswith("Error org.freedesktop.DBus.Error.AccessDenied: "
                                     "permission denied: uid 65534 may not use this corral")  # fmt: skip
    assert corral.one("web")["state"] == "waiting"
    allowed = bus.send("--print-reply", "--dest=org.corral.Manager1", "/org/corral/Manager1",
                       "org.corral.Manager1.Start", "string:web")  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert corral.one("web")["state"] == "running"


def test_shutdown_stops_every_service_and_corral_exits(corral: Corral, bus: Bus) -> None:
    daemon = up(corral, bus, SERVICES.format(root=corral.root))
    corral.ok("start", "web")
    web = corral.one("web")["pid"]
    bus.own("org.example.Desktop")
    desk = corral.wait_state("desk", "running", 15)["pid"]
    shut = call(bus, "Shutdown")
    assert shut.returncode == 0, shut.stderr
    assert daemon.wait(timeout=30) == 0
    assert not pid_alive(web) and not pid_alive(desk)


def test_introspection_shows_the_methods(corral: Corral, bus: Bus) -> None:
    setup(corral, bus)
    shown = bus.busctl("introspect", "org.corral.Manager1", "/org/corral/Manager1")
    assert shown.returncode == 0, shown.stderr
    methods = {line.split()[0] for line in shown.stdout.splitlines() if " method " in line}
    assert {".Start", ".Stop", ".Restart", ".Emit", ".Shutdown", ".ListServices"} <= methods
    wait_until(lambda: bus.has_owner("org.corral.Manager1"), 5, "corral's name")
