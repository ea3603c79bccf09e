"""D-Bus names as the ``dbus-name(NAME=...)`` state, for real: names owned and dropped by
processes of the test's on its own bus, the job's processes checked in ``/proc``."""

from __future__ import annotations

from tests.system.conftest import Corral, pid_alive, wait_until
from tests.system.test_dbus import WHILE_DESKTOP, Bus, bus, up

__all__ = ["bus"]  # the fixture, for the tests below


def test_a_job_runs_exactly_while_the_name_has_an_owner(corral: Corral, bus: Bus) -> None:
    up(corral, bus, WHILE_DESKTOP)
    assert corral.one("desk")["state"] == "waiting"
    owner = bus.own("org.example.Desktop")
    first = corral.wait_state("desk", "running", 15)["pid"]
    owner.kill()
    corral.wait_state("desk", "waiting", 15)
    assert not pid_alive(first)
    bus.own("org.example.Desktop")
    assert corral.wait_state("desk", "running", 15)["pid"] != first


def test_a_name_owned_before_corral_starts_holds_from_the_start(corral: Corral, bus: Bus) -> None:
    bus.own("org.example.Desktop")
    up(corral, bus, WHILE_DESKTOP)
    corral.wait_state("desk", "running", 15)


def test_a_glob_runs_one_instance_per_owned_name_keyed_by_it(corral: Corral, bus: Bus) -> None:
    bus.own("org.example.Player.one")
    up(corral, bus, """
        [service.scrobble]
        exec = ["sleep", "600"]
        instance = "${NAME}"
        while = "dbus-name(NAME=org.example.Player.*)"
        """)  # fmt: skip

    def running() -> list[str]:
        rows = corral.status("scrobble")
        return sorted(r["instance"] for r in rows if r["state"] == "running")

    wait_until(lambda: running() == ["org.example.Player.one"], 15, "the instance of one")
    two = bus.own("org.example.Player.two")
    bus.own("org.example.Other")
    wait_until(lambda: running() == ["org.example.Player.one", "org.example.Player.two"], 15,
               "the instance of two")  # fmt: skip
    two.kill()
    wait_until(lambda: running() == ["org.example.Player.one"], 15, "two's instance to go")
