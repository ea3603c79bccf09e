"""Sources with precedence and overrides: which definition is current, where each key came
from, and errors that name the file the offending key is in."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.core.definition import Definition
from corral.core.registry import build, load
from corral.errors import ConfigError

A = ("a.toml", "[service.web]\nexec = 'one'\nstop_timeout = 5\n")
B = ("b.toml", "[service.web]\nexec = 'two'\n")


def test_a_later_definition_replaces_and_the_lesser_returns_when_it_goes() -> None:
    assert load([A, B])["web"].main.argv == ("two",)  # type: ignore[union-attr]
    assert load([A, B])["web"].stop_timeout == 10.0  # replaced whole, not merged
    assert load([A])["web"].main.argv == ("one",)  # type: ignore[union-attr]
    layers = build([A, B]).show("web")["layers"]
    assert [(layer["file"], layer["in_effect"]) for layer in layers] == [
        ("a.toml", False),
        ("b.toml", True),
    ]


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


def test_an_override_amends_a_definition_in_a_later_source_too() -> None:
    over = ("c.toml", "[service.web]\noverride = true\nstop_timeout = 1\n")
    assert load([A, over, B])["web"].stop_timeout == 1
    assert load([A, over, B])["web"].main.argv == ("two",)  # type: ignore[union-attr]
    assert load([A, B, over])["web"].stop_timeout == 1


def test_an_override_file_that_sorts_before_its_definition_amends_it() -> None:
    # One directory, read in name order: web.override.toml comes before web.toml.
    over = ("conf.d/web.override.toml", "stop_timeout = 30\nenv = { FROM = 'override' }\n")
    web = ("conf.d/web.toml", "[service.web]\nexec = 'w'\nenv = { FROM = 'web' }\n")
    definition = load([over, web])["web"]
    assert definition.stop_timeout == 30 and definition.env == {"FROM": "override"}
    assert load([web])["web"].env == {"FROM": "web"}  # without it, the original again
    layers = build([over, web]).show("web")["layers"]
    assert [(layer["file"], layer["override"], layer["in_effect"]) for layer in layers] == [
        (over[0], True, True),
        (web[0], False, True),
    ]


def test_of_two_overrides_of_one_key_the_later_source_wins() -> None:
    first = ("early/web.override.toml", "stop_timeout = 1\n")
    later = ("z.toml", "[service.web]\noverride = true\nstop_timeout = 2\n")
    assert load([first, A, later])["web"].stop_timeout == 2
    assert load([later, A, first])["web"].stop_timeout == 1


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


#: A key that only layer i sets, how it is written, and how to read it from a Definition.
UNIQUE: list[tuple[str, Callable[[int], str], Callable[[Definition], object]]] = [
    ("description", lambda i: f'"layer {i}"', lambda d: d.description),
    ("timeout_start", lambda i: str(100 + i), lambda d: d.timeout_start),
    ("restart_delay", lambda i: f'"{i}s"', lambda d: d.restart.delay),
    ("cwd", lambda i: f'"/l{i}"', lambda d: d.cwd),
    ("user", lambda i: f'"u{i}"', lambda d: d.user),
    ("group", lambda i: f'"g{i}"', lambda d: d.group),
]
UNIQUE_VALUES: list[Callable[[int], object]] = [
    lambda i: f"layer {i}", lambda i: 100.0 + i, lambda i: float(i), lambda i: f"/l{i}",
    lambda i: f"u{i}", lambda i: f"g{i}",
]  # fmt: skip


@given(st.lists(st.sampled_from(["define", "override"]), min_size=1, max_size=len(UNIQUE)))
def test_the_last_definition_holds_with_every_override_wherever_it_stands(
    kinds: list[str],
) -> None:
    sources = []
    for index, kind in enumerate(kinds):
        flag = "override = true\n" if kind == "override" else f"exec = 'x{index}'\n"
        key, write, _ = UNIQUE[index]
        body = f"{flag}stop_timeout = {index}\n{key} = {write(index)}\n"
        sources.append((f"s{index}.toml", f"[service.w]\n{body}"))
    defines = [i for i, k in enumerate(kinds) if k == "define"]
    if not defines:
        with pytest.raises(ConfigError):
            build(sources)
        return
    current = defines[-1]
    overrides = [i for i, k in enumerate(kinds) if k == "override"]
    landing = sorted([current, *overrides])  # an earlier definition is replaced whole
    registry = build(sources)
    w = registry.definitions["w"]
    merged = registry.merged("w")
    assert w.main.argv == (f"x{current}",)  # type: ignore[union-attr]
    assert merged["exec"][1] == f"s{current}.toml"
    assert set(merged) == {"exec", "stop_timeout"} | {UNIQUE[i][0] for i in landing}
    for index in landing:
        key, _, read = UNIQUE[index]
        assert read(w) == UNIQUE_VALUES[index](index), key
        assert merged[key][1] == f"s{index}.toml"
    # Every layer sets stop_timeout: the last override's wins, else the definition's.
    winner = overrides[-1] if overrides else current
    assert w.stop_timeout == winner and merged["stop_timeout"][1] == f"s{winner}.toml"
