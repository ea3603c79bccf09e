"""The wire protocol, bytes in and out: every malformed line is a ProtocolError, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.control.protocol import ProtocolError, decode_request, encode, error, ok


def test_well_formed_requests() -> None:
    req = decode_request(
        b'{"cmd": "start", "targets": [{"name": "a", "env": {"K": "v"}}], "wait": false}\n'
    )
    assert req.cmd == "start" and req.args["wait"] is False
    assert decode_request(b'{"cmd": "status", "id": 7}').args == {}


@pytest.mark.parametrize(
    ("line", "says"),
    [
        (b"nope", "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"cmd": 1}', "'cmd'"),
        (b'{"cmd": "fly"}', "unknown command"),
        (b'{"cmd": "status", "names": "a"}', "'names'"),
        (b'{"cmd": "start", "targets": []}', "non-empty"),
        (b'{"cmd": "start", "targets": [{"name": "a", "x": 1}]}', "only name, instance and env"),
        (b'{"cmd": "start", "targets": [{"name": "a", "env": {"K": 1}}]}', "'env'"),
        (b'{"cmd": "wait", "timeout": -1}', "'timeout'"),
        (b'{"cmd": "logs", "name": "a", "lines": true}', "'lines'"),
        (b'{"cmd": "ping", "extra": 1}', "unknown argument"),
        (b'{"cmd": "logs"}', "logs: missing argument"),
        (b'{"cmd": "emit", "env": {}}', "emit: missing argument"),
        (b'{"cmd": "emit", "event": "x", "env": {"A": 1}}', "'env'"),
        (b'{"cmd": "config_show"}', "config_show: missing argument"),
    ],
)
def test_malformed_requests_say_what_is_wrong(line: bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        decode_request(line)


@given(st.binary(max_size=300))
def test_garbage_bytes_never_raise_anything_but_protocol_error(line: bytes) -> None:
    try:
        decode_request(line)
    except ProtocolError:
        pass


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3)))  # fmt: skip
def test_any_json_value_is_answered(value: object) -> None:
    line = encode({"cmd": "start", "targets": value})
    try:
        decode_request(line)
    except ProtocolError:
        pass


def test_replies_are_one_line() -> None:
    assert encode(ok([1])) == b'{"ok":true,"result":[1]}\n'
    assert encode(error(3, "no such service: x")).count(b"\n") == 1


def test_every_accepted_argument_has_a_check() -> None:
    """An argument a command accepts but nothing checks once made the handler raise."""
    from corral.control.protocol import _CHECKS, COMMANDS

    assert set().union(*COMMANDS.values()) <= set(_CHECKS)
