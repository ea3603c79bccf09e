"""The hand-rolled argv parsing of the fast ``corral status`` path."""

from __future__ import annotations

import pytest

from corral.cli.quick import json_string, parse_json, parse_status


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], (False, None, [])),
        (["--json"], (True, None, [])),
        (["web", "db:main", "--json"], (True, None, ["web", "db:main"])),
        (["--socket", "/s", "web"], (False, "/s", ["web"])),
        (["--socket=/s"], (False, "/s", [])),
    ],
)
def test_simple_status_arguments_take_the_fast_path(
    argv: list[str], expected: tuple[bool, str | None, list[str]]
) -> None:
    assert parse_status(argv) == expected


@pytest.mark.parametrize(
    "argv", [["-h"], ["--help"], ["--jsn"], ["getty", "TTY=tty1"], ["--socket"]]
)
def test_anything_else_goes_to_the_full_parser(argv: list[str]) -> None:
    assert parse_status(argv) is None


@pytest.mark.parametrize("text", ["web", "db:main", 'a"b', "back\\slash", "tab\there", "ünï"])
def test_names_are_sent_as_json_strings(text: str) -> None:
    import json

    assert json.loads(json_string(text)) == text


@pytest.mark.parametrize(
    "value", [{"ok": True, "result": [{"a": None, "b": 1.5, "c": "x\ny"}]}, "t\u00e9xt", [1, -2e3]]
)
def test_replies_decode_as_json_does(value: object) -> None:
    import json

    assert parse_json(json.dumps(value).encode()) == value
