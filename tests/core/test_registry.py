"""Sources with precedence and overrides: which definition is current, where each key came
from, and errors that name the file the offending key is in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.core.registry import build, load
from corral.errors import ConfigError

A = ("a.toml", "[service.web]\nexec = 'one'\nstop_timeout = 5\n")
B = ("b.toml", "[service.web]\nexec = 'two'\n")


def test_a_later_definition_replaces_and_the_lesser_returns_when_it_goes() -> None:
    assert load([A, B])["web"].main.argv == ("two",)  # type: ignore[union-attr]
    assert load([A, B])["web"].stop_timeout == 10.0  # replaced whole, not merged
    assert load([A])["web"].main.argv == ("one",)  # type: ignore[union-attr]
    registry = build([A, B])
    assert registry.sources_of("web") == [("a.toml", False), ("b.toml", False)]


def test_an_override_table_amends_single_keys() -> None:
    over = ("c.toml", "[service.web]\noverride = true\nrestart = 'always'\nenv = { X = '1' }\n")
    registry = build([A, over])
    web = registry.definitions["web"]
    assert web.main.argv == ("one",) and web.stop_timeout == 5  # type: ignore[union-attr]
    assert str(web.restart.mode) == "always" and web.env == {"X": "1"}
    merged = registry.merged("web")
    assert merged["exec"] == ("one", "a.toml", 2)
    assert merged["restart"] == ("always", "c.toml", 3)
    assert web.source == "a.toml"


def test_an_override_file_amends_by_top_level_keys() -> None:
    over = ("conf.d/web.override.toml", "stop_timeout = 30\n")
    registry = build([A, over])
    assert registry.definitions["web"].stop_timeout == 30
    assert registry.merged("web")["stop_timeout"] == (30, "conf.d/web.override.toml", 1)


def test_a_definition_after_an_override_replaces_it_too() -> None:
    over = ("c.toml", "[service.web]\noverride = true\nstop_timeout = 1\n")
    assert load([A, over, B])["web"].stop_timeout == 10.0
    assert load([A, B, over])["web"].stop_timeout == 1


def test_an_override_of_nothing_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        build([("x.override.toml", "stop_timeout = 1\n")])
    assert "an override for x, but no source defines [service.x]" in str(info.value)


def test_an_error_names_the_file_and_line_of_the_key_it_came_from() -> None:
    over = ("drop/web.override.toml", "# a drop-in\nstop_timeout = 'soon'\n")
    with pytest.raises(ConfigError) as info:
        build([A, over])
    assert str(info.value).startswith("drop/web.override.toml:2: service.web.stop_timeout:")


def test_override_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="override: expected true or false"):
        build([A, ("c.toml", "[service.web]\noverride = 'yes'\n")])


@given(st.lists(st.sampled_from(["define", "override"]), min_size=1, max_size=6))
def test_the_current_definition_is_the_last_one_with_later_overrides(kinds: list[str]) -> None:
    sources = []
    for index, kind in enumerate(kinds):
        flag = "override = true\n" if kind == "override" else "exec = 'x'\n"
        sources.append((f"s{index}.toml", f"[service.w]\n{flag}stop_timeout = {index}\n"))
    defines = [i for i, k in enumerate(kinds) if k == "define"]
    if not defines:
        with pytest.raises(ConfigError):
            build(sources)
        return
    # Every layer sets stop_timeout, so the value comes from the very last layer when it is
    # at or after the last definition (always true: the last layer is at or after it).
    assert build(sources).definitions["w"].stop_timeout == len(kinds) - 1
    assert build(sources).merged("w")["exec"][1] == f"s{defines[-1]}.toml"
