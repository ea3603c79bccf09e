"""Which of corral's bridges a configuration needs, as services of their own; what the files
bridge watches; names and paths ``config check`` refuses. Pure."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from corral.core.bridge_jobs import PREFIX, needed, watched
from corral.core.registry import Registry, build
from corral.errors import ConfigError


def registry(text: str) -> Registry:
    return build([("/etc/corral/corral.toml", text)], python="/usr/bin/python3")


def bridges(text: str) -> list[str]:
    return [name for name in registry(text).definitions if name.startswith(PREFIX)]


def test_no_bridge_where_no_definition_uses_one() -> None:
    assert bridges('[service.a]\nexec = ["true"]\nstart_on = "startup"\n') == []


@pytest.mark.parametrize(
    ("key", "condition", "bridge"),
    [
        ("while", "device(SUBSYSTEM=net, KERNEL=eth0)", "corral-bridge-devices"),
        ("start_on", "device-added SUBSYSTEM=tty", "corral-bridge-devices"),
        ("stop_on", "device-removed", "corral-bridge-devices"),
        ("while", "net-online", "corral-bridge-network"),
        ("start_on", "net-address-added FAMILY=inet", "corral-bridge-network"),
        ("stop_on", "net-address-removed", "corral-bridge-network"),
        ("while", "path-exists(FILE=/srv/ready)", "corral-bridge-files"),
        ("start_on", "path-changed FILE=/etc/app.conf", "corral-bridge-files"),
        ("while", "a and (b or net-online)", "corral-bridge-network"),
    ],
)
def test_each_event_and_state_brings_its_bridge(key: str, condition: str, bridge: str) -> None:
    text = f'[service.job]\nexec = ["true"]\n{key} = "{condition}"\n'
    text += '[service.a]\nexec = ["true"]\n[service.b]\nexec = ["true"]\n'
    assert bridges(text) == [bridge]


def test_a_bridge_is_a_notify_service_always_restarted_run_by_the_given_python() -> None:
    loaded = registry('[service.j]\nexec = ["true"]\nwhile = "net-online"\n')
    bridge = loaded.definitions["corral-bridge-network"]
    assert bridge.main is not None
    assert bridge.main.argv == ("/usr/bin/python3", "-m", "corral.bridges", "network")
    assert (str(bridge.type), str(bridge.restart.mode), bridge.autostart) == (
        "notify", "always", True,
    )  # fmt: skip
    shown = loaded.show("corral-bridge-network")
    assert shown["layers"] == [{"file": "<built-in>", "override": False, "in_effect": True}]


def test_a_service_named_like_a_state_is_that_service_and_needs_no_bridge() -> None:
    text = '[service.device]\nexec = ["true"]\n[service.j]\nexec = ["true"]\nwhile = "device"\n'
    assert bridges(text) == []


def test_a_user_service_may_not_take_a_bridges_name() -> None:
    with pytest.raises(ConfigError) as caught:
        registry('[service.corral-bridge-devices]\nexec = ["true"]\n')
    (problem,) = caught.value.problems
    assert (problem.service, problem.line) == ("corral-bridge-devices", 1)
    assert "corral's own bridges" in problem.message


def test_watched_gives_the_file_values_with_lists_and_variables_expanded() -> None:
    definitions = registry(
        """
        [service.a]
        exec = ["true"]
        env = { SPOOL = "/var/spool/in" }
        while = "path-exists(FILE=/srv/a|/srv/b) and path-exists(FILE=*)"
        start_on = "path-changed FILE=$SPOOL/*.csv"
        [service.b]
        exec = ["true"]
        stop_on = "path-changed FILE!=/not/watched"
        """.replace("\n        ", "\n")
    ).definitions
    assert watched(definitions, "files") == {"FILE": ["/srv/a", "/srv/b", "/var/spool/in/*.csv"]}
    assert watched(definitions, "devices") == {}
    assert [spec.name for spec in needed(definitions)] == ["files"]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("data/ready", "expected an absolute path"),
        ("/srv/*/ready", "a glob (* ? [) may only be in the last part of the path"),
    ],
)
def test_config_check_refuses_a_file_the_bridge_cannot_watch(value: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        registry(f'[service.j]\nexec = ["true"]\nwhile = "path-exists(FILE={value})"\n')
    (problem,) = caught.value.problems
    assert (problem.service, problem.key, problem.line) == ("j", "while", 3)
    assert problem.message.startswith(f"FILE={value}: {why}")


def test_every_recipe_of_docs_activation_loads_with_its_bridge() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "activation.md").read_text()
    recipes = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)
    assert len(recipes) >= 6
    for recipe in recipes:
        assert bridges(recipe), recipe
