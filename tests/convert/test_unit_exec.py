"""systemd command lines read as systemd reads them, written so it reads them back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.convert.unit_exec import parse_command_line, unit_command

SPECIFIERS = {"i": "${I}", "n": "x@${I}.service", "p": "x"}


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ('/bin/echo "a b" \'c d\' e\\tf', ["/bin/echo", "a b", "c d", "e\tf"]),
        ("/bin/app --name=%i %n %%", ["/bin/app", "--name=${I}", "x@${I}.service", "%"]),
        ("/bin/app ${HOME} $USER pre$USER $$", ["/bin/app", "${HOME}", "${USER}", "pre$$USER", "$$"]),
        ("/bin/app cost:5$", ["/bin/app", "cost:5$$"]),
    ],
)  # fmt: skip
def test_words_quotes_specifiers_and_dollars(line: str, argv: list[str]) -> None:
    assert parse_command_line(line, SPECIFIERS)[0].argv == argv


def test_prefixes_and_several_commands() -> None:
    lines = parse_command_line("-/bin/a 1 ; @/bin/b b0 ; :/bin/c ${X}", SPECIFIERS)
    assert [(line.prefixes, line.argv) for line in lines] == [
        ("-", ["/bin/a", "1"]), ("@", ["/bin/b", "b0"]), (":", ["/bin/c", "$${X}"]),
    ]  # fmt: skip


def test_an_unknown_specifier_is_said() -> None:
    assert parse_command_line("/bin/a %h", SPECIFIERS)[0].unknown == ["%h"]


WORD = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)
VARIABLE = st.from_regex(r"\$\{[A-Z_][A-Z0-9_]{0,5}\}", fullmatch=True)
CORRAL_WORD = st.lists(st.one_of(WORD.map(lambda w: w.replace("$", "$$")), VARIABLE),
                       min_size=1, max_size=4).map("".join)  # fmt: skip


@given(st.lists(CORRAL_WORD, min_size=1, max_size=5).filter(lambda a: a[0] != ""))
def test_a_written_command_line_reads_back_to_the_same_argv(argv: list[str]) -> None:
    line = unit_command(argv)
    parsed = parse_command_line(line, {})
    assert len(parsed) == 1 and parsed[0].argv == argv and parsed[0].prefixes == ""
