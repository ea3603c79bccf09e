"""Instance keys: expanded from the environment, refused when they could not be a file name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.core.instances import (
    InstanceError,
    bad_key,
    escaped,
    instance_key,
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
        ("tty\n1", "control character"),
        ("tty\x7f", "control character"),
    ],
)
def test_bad_keys_are_refused_with_the_reason(value: str, reason: str) -> None:
    with pytest.raises(InstanceError, match=reason):
        instance_key("getty", "${TTY}", {"TTY": value})


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1))
def test_printable_keys_are_accepted_paths_included(key: str) -> None:
    assert bad_key(key) is None


@given(st.text(max_size=12), st.text(max_size=12))
def test_escaped_labels_are_single_file_names_that_never_collide(a: str, b: str) -> None:
    for label in (a, b):
        name = escaped(label)
        assert "/" not in name and name not in ("", ".", "..")
    assert (escaped(a) == escaped(b)) == (a == b)
