"""Drafts written as TOML read back as the same values, and aligned to their lines."""

from __future__ import annotations

import tomli
from hypothesis import given
from hypothesis import strategies as st

from corral.convert.model import Draft
from corral.convert.toml_text import aligned, pretty

SCALARS = st.one_of(st.booleans(), st.integers(-(2**63), 2**63 - 1),
                    st.text(st.characters(exclude_categories=["Cs"]), max_size=20))  # fmt: skip
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)  # fmt: skip


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), VALUES, max_size=5))
def test_any_value_reads_back_the_same(keys: dict[str, object]) -> None:
    draft = Draft("svc.one", "/f")
    for key, value in keys.items():
        draft.set(key, value)
    assert tomli.loads(pretty([draft])) == {"service": {"svc.one": keys}}


def test_each_key_stands_on_its_line_and_the_rest_on_the_next_free_one() -> None:
    draft = Draft("web", "/f", 2)
    draft.set("exec", ["a"], 2)
    draft.set("env", {"PORT": "5000"}, 2)  # a second key from line 2
    draft.set("user", "me", 5)
    draft.set("cwd", "/x", 1, "/elsewhere")  # from another file: no line of this one
    lines = aligned([draft], "/f").splitlines()
    assert lines[1] == 'service.web.exec = ["a"]'
    assert lines[2] == 'service.web.env = { PORT = "5000" }'
    assert lines[4] == 'service.web.user = "me"'
    assert lines[3] == 'service.web.cwd = "/x"'  # the first free line after its table's
    assert tomli.loads("\n".join(lines))["service"]["web"]["cwd"] == "/x"
