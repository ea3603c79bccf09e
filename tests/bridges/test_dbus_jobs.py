"""What the D-Bus bridge is told to watch, and what ``config check`` says of the D-Bus keys and
conditions. Pure: the configuration as text, through the real loader."""

from __future__ import annotations

from typing import Any

import pytest

from corral.core.bridge_jobs import PREFIX, watched
from corral.core.registry import Registry, build
from corral.errors import ConfigError


def registry(text: str) -> Registry:
    return build([("/etc/corral/corral.toml", text)], python="/usr/bin/python3")


def wanted(text: str) -> dict[str, Any]:
    return watched(registry(text).definitions, "dbus")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        registry(text)
    return [str(problem) for problem in caught.value.problems]


def job(key: str, condition: str, extra: str = "") -> str:
    return f'[service.job]\nexec = ["true"]\n{key} = "{condition}"\n{extra}'


@pytest.mark.parametrize(
    ("key", "condition"),
    [
        ("start_on", "dbus-signal MEMBER=Critical"),
        ("stop_on", "dbus-signal"),
        ("while", "dbus-name(NAME=org.example.Foo)"),
    ],
)
def test_a_dbus_condition_brings_the_dbus_bridge(key: str, condition: str) -> None:
    names = [n for n in registry(job(key, condition)).definitions if n.startswith(PREFIX)]
    assert names == ["corral-bridge-dbus"]


def test_a_bus_name_brings_the_bridge_and_is_watched_and_activated() -> None:
    text = '[service.foo]\nexec = ["foo"]\ntype = "dbus"\nbus_name = "org.example.Foo"\n'
    loaded = registry(text)
    assert "corral-bridge-dbus" in loaded.definitions
    assert loaded.definitions["foo"].bus_name == "org.example.Foo"
    assert wanted(text) == {"signals": [], "names": ["org.example.Foo"], "senders": [],
                            "services": {"org.example.Foo": "foo"}}  # fmt: skip


def test_a_signal_rule_carries_only_plain_values_of_the_keys_a_rule_has() -> None:
    text = job(
        "start_on",
        "dbus-signal INTERFACE=org.example.Power MEMBER=Crit* OBJECT_PATH=$P ARG0=battery",
        'env = { P = "/org/example/Power" }\n',
    )
    assert wanted(text)["signals"] == [{"interface": "org.example.Power",
                                        "path": "/org/example/Power"}]  # fmt: skip


def test_positional_values_of_a_signal_are_interface_then_member() -> None:
    text = job("start_on", "dbus-signal org.example.Power Critical")
    assert wanted(text)["signals"] == [{"interface": "org.example.Power", "member": "Critical"}]


def test_a_well_known_sender_is_followed_so_that_it_can_be_named() -> None:
    text = job("start_on", "dbus-signal SENDER=org.example.UPower or dbus-signal SENDER=:1.7")
    got = wanted(text)
    assert got["senders"] == ["org.example.UPower"]
    assert got["signals"] == [{"sender": ":1.7"}, {"sender": "org.example.UPower"}]


def test_names_keep_globs_and_a_name_only_an_instance_knows_is_every_name() -> None:
    both = job("while", "dbus-name(NAME=org.mpris.MediaPlayer2.*) or dbus-name(NAME=$X)")
    assert wanted(both)["names"] == ["*", "org.mpris.MediaPlayer2.*"]


def test_a_service_named_dbus_name_is_a_service_not_the_worlds_state() -> None:
    text = job("while", "dbus-name") + '[service.dbus-name]\nexec = ["true"]\n'
    assert wanted(text)["names"] == []


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (job("start_on", "dbus-signal INTERFACE=Power"),
         'INTERFACE=Power: expected an interface name such as "org.example.Power"'),
        (job("start_on", "dbus-signal OBJECT_PATH=org/x"), "OBJECT_PATH=org/x: expected an object"),
        (job("start_on", "dbus-signal a.b C /d :1.2 e"), "takes at most 4 positional values"),
        (job("start_on", "dbus-signal PATH=/x"), "dbus-signal has no PATH; its keys are INTERFACE"),
        (job("while", "dbus-name(NAME=foo)"), 'NAME=foo: expected a bus name such as'),
        (job("while", "dbus-name(OWNER=x)"), "dbus-name has no OWNER; its keys are NAME"),
        ('[service.a]\nexec = ["a"]\ntype = "dbus"\n', 'type "dbus" needs bus_name'),
        ('[service.a]\nbus_name = "org.example.A"\n', "a state (a service without exec or"),
        ('[service.a]\nexec = ["a"]\nbus_name = "a"\n', '"a" is not a D-Bus name'),
        ('[service.a]\nexec = ["a"]\ninstance = "${X}"\nenv = { X = "1" }\n'
         'bus_name = "org.example.A"\n', "bus_name is not for an instantiated service"),
        ('[service.a]\nexec = ["a"]\nbus_name = "org.example.A"\n'
         '[service.b]\nexec = ["b"]\nbus_name = "org.example.A"\n',
         "service.b.bus_name: org.example.A is the bus_name of a already"),
    ],
)  # fmt: skip
def test_config_check_says_what_is_wrong_with_dbus_keys_and_conditions(
    text: str, said: str
) -> None:
    assert any(said in problem for problem in problems(text)), problems(text)


def test_globs_and_variables_only_an_instance_knows_are_not_judged() -> None:
    text = job("start_on", "dbus-signal INTERFACE=org.* MEMBER=$M SENDER=:1.*")
    registry(text)  # no ConfigError
