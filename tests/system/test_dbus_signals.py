"""D-Bus signals as ``dbus-signal`` events, for real: ``dbus-send`` on the test's own bus, the
job's environment read from ``/proc``, the bridge's match rules asked of the bus."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from dbus_fast import Message
from dbus_fast.aio import MessageBus

from tests.system.conftest import Corral, env_of, wait_until
from tests.system.test_dbus import Bus, bus, up

__all__ = ["bus"]  # the fixture, for the tests below

POWER = """
[service.power]
exec = ["sleep", "600"]
start_on = "dbus-signal INTERFACE=org.example.Power MEMBER=Critical"
"""


def events(corral: Corral) -> list[dict[str, str]]:
    records = [json.loads(line) for line in corral.ok("events", "--json").splitlines()]
    return [r["env"] for r in records if r["name"] == "dbus-signal"]


def test_a_signal_starts_the_job_with_its_fields_and_arguments_in_its_environment(
    corral: Corral, bus: Bus
) -> None:
    up(corral, bus, POWER)
    sent = bus.send("--type=signal", "/org/example/Power", "org.example.Power.Critical",
                    "string:battery", "uint32:5", "boolean:true", "array:string:a,b")  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    env = env_of(corral.wait_state("power", "running", 15)["pid"])
    assert {key: env[key] for key in ("INTERFACE", "MEMBER", "OBJECT_PATH")} == {
        "INTERFACE": "org.example.Power", "MEMBER": "Critical", "OBJECT_PATH": "/org/example/Power"
    }  # fmt: skip
    assert env["SENDER"].startswith(":1.")
    assert [env["ARG0"], env["ARG1"], env["ARG2"], env["ARG3"]] == ["battery", "5", "true",
                                                                     '["a","b"]']  # fmt: skip


def test_a_signal_the_condition_does_not_name_starts_nothing_and_is_no_event(
    corral: Corral, bus: Bus
) -> None:
    up(corral, bus, POWER)
    bus.send("--type=signal", "/org/example/Power", "org.example.Power.Low", "string:x")
    bus.send("--type=signal", "/org/example/Power", "org.example.Other.Critical", "string:x")
    bus.send("--type=signal", "/org/example/Power", "org.example.Power.Critical", "string:y")
    corral.wait_state("power", "running", 15)
    assert [(e["MEMBER"], e["ARG0"]) for e in events(corral)] == [("Critical", "y")]


def test_match_rules_on_the_bus_are_only_what_the_definitions_ask_for(
    corral: Corral, bus: Bus
) -> None:
    up(corral, bus, POWER + """
        [service.desk]
        exec = ["sleep", "600"]
        while = "dbus-name(NAME=org.example.Desktop)"
        """.replace("\n        ", "\n"))  # fmt: skip
    bridge = corral.one("corral-bridge-dbus")["pid"]
    assert sorted(rules_of(bus, bridge)) == [
        "type='signal',interface='org.example.Power',member='Critical'",
        "type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged',"
        "path='/org/freedesktop/DBus',sender='org.freedesktop.DBus',arg0='org.example.Desktop'",
    ]  # as the bus writes them back


def test_sender_is_the_well_known_name_a_condition_asks_for(corral: Corral, bus: Bus) -> None:
    up(corral, bus, """
        [service.battery]
        exec = ["sleep", "600"]
        start_on = "dbus-signal SENDER=org.example.UPower MEMBER=Changed"
        """)  # fmt: skip
    bus.own("org.example.Other", "/", "org.example.UPower", "Changed", "not this one")
    bus.own("org.example.UPower", "/", "org.example.UPower", "Changed", "this one")
    env = env_of(corral.wait_state("battery", "running", 15)["pid"])
    assert (env["SENDER"], env["ARG0"]) == ("org.example.UPower", "this one")
    wait_until(lambda: len(events(corral)) == 1, 5, "the one event")


def rules_of(bus: Bus, pid: int) -> list[str]:
    """The match rules that the connection of process ``pid`` holds on the bus."""

    async def ask() -> list[str]:
        client = await MessageBus(bus_address=bus.address).connect()
        try:
            every = await call(client, "org.freedesktop.DBus.Debug.Stats", "GetAllMatchRules")
            for unique, rules in every.items():
                owner = await call(client, "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                   "s", unique)  # fmt: skip
                if owner == pid:
                    return list(rules)
            return []
        finally:
            client.disconnect()

    return asyncio.run(ask())


async def call(client: MessageBus, interface: str, member: str, signature: str = "",
               *body: object) -> Any:  # fmt: skip
    reply = await client.call(Message(destination="org.freedesktop.DBus",
                                      path="/org/freedesktop/DBus", interface=interface,
                                      member=member, signature=signature, body=list(body)))  # fmt: skip
    assert reply.body, reply.error_name
    return reply.body[0]
