"""The quick CLI path: its hand-rolled argv parsing, request encoding and reply handling."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from corral.cli import leading_socket, said
from corral.cli.address import parse_targets
from corral.cli.quick import (
    OK_PREFIX,
    ROW_FIELDS,
    json_string,
    parse_json,
    parse_status,
    parse_up,
    parse_words,
    plain_result,
    plain_rows,
    targets_json,
)
from corral.cli.up import address_text, parse_address
from corral.errors import UsageError


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


@given(st.text())
def test_a_table_reply_is_passed_through_as_the_daemon_encoded_it_or_decoded_in_full(
    text: str,
) -> None:
    """The bytes the fast path writes are the string the daemon sent, whatever it holds;
    it declines only where the string holds escapes other than line breaks."""
    raw = OK_PREFIX + msgspec.json.encode({"r": text})[5:-1] + b"}\n"
    assert parse_json(raw) == {"ok": True, "result": text}
    shown = plain_result(raw)
    assert shown is None or shown == text.encode("utf-8", "surrogatepass")
    if all(c == "\n" or (c.isprintable() and c not in '"\\') for c in text):
        assert shown == text.encode("utf-8", "surrogatepass")


def test_a_plain_table_takes_the_fast_path_and_a_coloured_one_does_not() -> None:
    assert plain_result(OK_PREFIX + b'"NAME  GOAL\\nweb   start"}\n') == b"NAME  GOAL\nweb   start"
    assert plain_result(OK_PREFIX + b'"\\u001b[1mNAME\\u001b[0m"}\n') is None
    assert plain_result(OK_PREFIX + b'[{"name":"web"}]}\n') is None
    assert plain_result(OK_PREFIX + b'""}\n') == b""


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["web"], (False, None, ["web"])),
        (["web", "db:main", "--no-wait"], (True, None, ["web", "db:main"])),
        (["--no-wait", "web", "db:main"], (True, None, ["web", "db:main"])),
        (["getty", "TTY=tty1", "--socket=/s"], (False, "/s", ["getty", "TTY=tty1"])),
    ],
)
def test_goal_verbs_take_addresses_and_no_wait(
    argv: list[str], expected: tuple[bool, str | None, list[str]]
) -> None:
    assert parse_words(argv, "--no-wait", addresses=True) == expected


@pytest.mark.parametrize("argv", [["-h"], ["--no-wait"], ["web", "--json"], ["web", ""]])
def test_a_verb_without_that_flag_goes_to_the_full_parser(argv: list[str]) -> None:
    assert parse_words(argv, None, addresses=True) is None


@pytest.mark.parametrize("argv", [["web", "--no-wait", "db"], ["web", "--socket=/s", "db"]])
def test_names_around_a_flag_go_to_the_full_parser_which_refuses_them(argv: list[str]) -> None:
    assert parse_words(argv, "--no-wait", addresses=True) is None


WORDS = st.text(alphabet=st.characters(codec="utf-8"), min_size=1).filter(
    lambda w: not w.startswith("-")
)


@given(st.lists(WORDS, min_size=1, max_size=6))
def test_targets_are_encoded_as_json_dumps_would(words: list[str]) -> None:
    import json

    try:
        targets = parse_targets(words)
    except UsageError:
        return
    assert json.loads(targets_json(targets)) == targets


def test_the_exit_codes_are_the_contracts() -> None:
    from corral import errors
    from corral.cli import quick

    for name in ("EXIT_FAILED", "EXIT_USAGE", "EXIT_NO_SUCH_SERVICE", "EXIT_UNREACHABLE"):
        assert getattr(quick, name) == getattr(errors, name)


def test_the_protocol_version_sent_is_the_protocols() -> None:
    from corral.cli import quick
    from corral.control.protocol import PROTOCOL_VERSION

    assert quick.PROTOCOL_VERSION == PROTOCOL_VERSION


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status"], (None, ["status"])),
        (["--socket", "/s", "stop", "all"], ("/s", ["stop", "all"])),
        (["--socket=/s", "status"], ("/s", ["status"])),
        (["--socket"], None),
        (["--socket", "--json"], None),
        ([], (None, [])),
    ],
)
def test_a_socket_before_the_command_word(
    argv: list[str], expected: tuple[str | None, list[str]] | None
) -> None:
    assert leading_socket(argv) == expected


def test_each_instance_reached_is_said_on_one_line() -> None:
    rows = [
        {"name": "web", "instance": "", "state": "running", "pid": 123, "done": False},
        {"name": "setup", "instance": "", "state": "running", "pid": None, "done": True},
        {"name": "getty", "instance": "tty1", "state": "waiting", "pid": None, "done": False},
        {"name": "tty", "instance": "tty2", "state": "running", "pid": None, "done": False},
        {"name": "db", "instance": "", "state": "failed", "pid": None, "done": False},
    ]
    assert said(rows) == (
        "web: running (pid 123)\nsetup: done\ngetty:tty1: stopped\ntty:tty2: running\ndb: failed\n"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ([], False, None, None, None)),
        (
            ["-c", "a.toml", "--config", "b", "--config=c"],
            (["a.toml", "b", "c"], False, None, None, None),
        ),
        (["-d", "--socket", "/s"], ([], True, "/s", None, None)),
        (["--detach", "--socket=/s", "--ready-fd", "7"], ([], True, "/s", 7, None)),
        (["--ready-fd=3"], ([], False, None, 3, None)),
        (["--health", "127.0.0.1:9000"], ([], False, None, None, ("127.0.0.1", 9000))),
        (["-d", "--health=:9000"], ([], True, None, None, ("", 9000))),
    ],
)
def test_up_arguments_take_the_fast_path(
    argv: list[str],
    expected: tuple[list[str], bool, str | None, int | None, tuple[str, int] | None],
) -> None:
    assert parse_up(argv) == expected


@pytest.mark.parametrize(
    "argv",
    [["-h"], ["-c"], ["-c", "-d"], ["--conf", "x"], ["-dc", "x"], ["--ready-fd", "x"], ["x"],
     ["--health"], ["--health", "9000"], ["--heal", ":9000"]],
)  # fmt: skip
def test_up_arguments_it_does_not_know_go_to_argparse(argv: list[str]) -> None:
    assert parse_up(argv) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("localhost:0", ("localhost", 0)),
        (":9000", ("", 9000)),
        ("[::1]:9000", ("::1", 9000)),
        ("[::]:65535", ("::", 65535)),
    ],
)
def test_health_addresses_are_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert parse_address(text) == expected


@given(st.text(max_size=12).map(lambda t: t + ":80") | st.sampled_from(["[::1]:80", ":0"]))
def test_an_address_read_reads_back_from_its_text(text: str) -> None:
    """``up -d`` hands the daemon its ``--health`` address as ``address_text`` writes it."""
    address = parse_address(text)
    if address is not None:
        assert parse_address(address_text(address)) == address


@pytest.mark.parametrize(
    "text",
    ["9000", "localhost", "host:", "host:65536", "host:-1", "host:+1", "host:\uff19", "::1:80",
     "[::1]", "[]:80", "a b:80", "host:80:", "[::1:80"],
)  # fmt: skip
def test_anything_else_is_no_health_address(text: str) -> None:
    assert parse_address(text) is None


# -- the quick parsers against argparse: whatever the quick path takes, argparse reads alike --

TOKENS = st.sampled_from(
    ["-c", "--config", "--config=b.toml", "-d", "--detach", "--socket", "--socket=/s",
     "--ready-fd", "--ready-fd=4", "3", "a.toml", "web", "db:main", "TTY=tty1", "--json",
     "--no-wait", "-x", "--conf", "--sock", "-h", "", "-", "--socket=", "--config=", "-c=x",
     "-cx", "--ready-fd=x", "-5", "--no-wait=1", "--json=1", "-dc", "a=b", ":x",
     "--health", "--health=:9000", "127.0.0.1:9000", "[::1]:0", "--health=x", "--heal",
     "--health=9000", ":65536", "--health=[::1]:80"]
)  # fmt: skip


def _argparse(command: str, argv: list[str], before: Sequence[str] = ()) -> object | None:
    """The full CLI's reading of ``corral [BEFORE] COMMAND ARGV``; None where it refuses it."""
    import contextlib
    import io

    from corral.cli.main import build_parser

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return build_parser(command).parse_args([*before, command, *argv])
        except SystemExit:
            return None


@settings(max_examples=500)
@given(st.lists(TOKENS, max_size=6))
def test_up_reads_as_argparse_does(argv: list[str]) -> None:
    quick = parse_up(argv)
    if quick is None:
        return
    full = _argparse("up", argv)
    assert full is not None, argv
    read = vars(full)
    assert quick == tuple(read[k] for k in ("config", "detach", "socket", "ready_fd", "health"))


@given(
    st.sampled_from(["start", "stop", "restart", "reload", "status"]),
    st.lists(TOKENS, max_size=6),
    st.sampled_from([[], ["--socket", "/first"], ["--socket=/first"]]),
)
@example("start", ["a=b", "--socket=/s", "3"], [])  # found once: names around a flag
@example("status", ["web", "--json", "db:main"], [])
@example("stop", ["--socket", "--no-wait", "web"], [])  # found once: a flag for the path
@example("stop", ["web", "--socket=/s"], ["--socket", "/first"])  # the later one wins
def test_verbs_and_status_read_as_argparse_does(
    command: str, argv: list[str], before: list[str]
) -> None:
    flag = {"status": "--json", "reload": None}.get(command, "--no-wait")
    first = leading_socket([*before, command])
    assert first is not None
    quick = parse_words(argv, flag, addresses=command != "status", socket_path=first[0])
    if quick is None or (command != "status" and not quick[2]):
        return  # the full CLI's (a verb without names is its usage error)
    full = _argparse(command, argv, before)
    assert full is not None, argv
    flagged = full.json if command == "status" else getattr(full, "no_wait", False)  # type: ignore[attr-defined]
    assert quick == (flagged, full.socket, full.names), argv  # type: ignore[attr-defined]


ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "name": st.text(max_size=8),
            "instance": st.text(max_size=8),
            "state": st.sampled_from(["running", "waiting", "failed"]),
            "pid": st.none() | st.integers(1, 4_000_000),
            "done": st.booleans(),
        }
    ),
    max_size=4,
)


@given(ROWS)
@example([{"name": "a},{b", "instance": ",", "state": "running", "pid": None, "done": True}])
def test_result_rows_are_read_as_json_reads_them_or_left_to_it(
    rows: list[dict[str, object]],
) -> None:
    """The rows the quick path reads without json are the rows the daemon encoded; it
    declines only where a string holds an escape or JSON's punctuation."""
    rows = [{key: row[key] for key in ROW_FIELDS} for row in rows]  # as the daemon orders them
    raw = OK_PREFIX + msgspec.json.encode(rows) + b"}\n"
    read = plain_rows(raw)
    assert read is None or read == rows
    strings = [str(row[key]) for row in rows for key in ("name", "instance")]
    if b"\\" not in raw and not any(set(text) & set("{},:") for text in strings):
        assert read == rows  # names as corral's are: read without json
