"""Instance keys: expanded from the environment, refused when they could not be a file name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.core.instances import (
    InstanceError,
    bad_key,
    env_for_key,
    instance_key,
    sole_variable,
    variables_of,
)


def test_a_key_is_the_template_expanded() -> None:
    assert instance_key("getty", "${TTY}", {"TTY": "tty1"}) == "tty1"
    assert instance_key("w", "$HOST-${PORT}", {"HOST": "a", "PORT": "80"}) == "a-80"


def test_a_missing_variable_says_what_to_give() -> None:
    with pytest.raises(InstanceError, match=r"give TTY=VALUE .*getty:KEY"):
        instance_key("getty", "${TTY}", {})


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "cannot be empty"),
        ("a/b", "contains '/'"),
        ("..", "contains '..'"),
        ("x..y", "contains '..'"),
        ("tty\n1", "control character"),
        ("tty\x7f", "control character"),
    ],
)
def test_bad_keys_are_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(InstanceError, match=reason):
        instance_key("getty", "${TTY}", {"TTY": value})


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1))
def test_printable_keys_without_slash_or_dots_are_accepted(key: str) -> None:
    expected_bad = "/" in key or ".." in key or key == "."
    assert (bad_key(key) is not None) == expected_bad


@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), st.text(min_size=1))
def test_a_sole_variable_round_trips_through_the_key(name: str, value: str) -> None:
    for template in (f"${{{name}}}", f"${name}"):
        assert sole_variable(template) == name
        assert env_for_key(template, value) == {name: value}


def test_templates_of_several_variables() -> None:
    assert variables_of("$A-${B}-$A-$$C") == ["A", "B"]
    assert sole_variable("${A}-x") is None
    assert env_for_key("${A}-${B}", "x-y") == {}
